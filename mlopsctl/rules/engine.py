"""Evaluate the rule catalog against ``Requirements`` and assemble a ``StackDesign``.

Evaluation runs in two steps. First the rules that set a tier floor fire on the answers and the
command's ``tier_floor`` (``design`` asks for T2, ``lifecycle`` for T3) and fix the design's tier
(the highest floor). Then every rule fires on the answers plus that derived ``tier``, so a rule
for tier 3 fires under ``lifecycle`` as it does for answers that reach tier 3 by themselves.

Two fired rules that set one capability (or threshold, or alert) differently are a conflict,
reported in the design, unless one of them names the other in ``overrides``; under ``strict`` a
conflict is an error. Any fired abort rule stops the evaluation.
"""

from __future__ import annotations

import typing
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from mlopsctl.design import (
    Alert,
    Alternative,
    Conflict,
    Decision,
    ReferenceOut,
    Stack,
    StackDesign,
    Thresholds,
)
from mlopsctl.errors import CatalogError, RuleAbort, RuleConflictError, UsageError
from mlopsctl.requirements import Requirements
from mlopsctl.rules.components import components
from mlopsctl.rules.model import (
    DERIVED_FIELDS,
    INPUT_FIELDS,
    Condition,
    Leaf,
    Rule,
    Tier,
    load_catalog,
)
from mlopsctl.rules.quickstart import quickstart
from mlopsctl.rules.sizing import derive_sizing, weights_read_gb_per_s

TIER_ORDER = {"T1": 1, "T2": 2, "T3": 3}

# Traffic steps of each rollout when the deciding rule names none.
DEFAULT_ROLLOUT_STEPS: dict[str, list[int]] = {
    "canary": [10, 100],
    "progressive": [5, 25, 50, 100],
    "ab": [50, 100],
    "shadow": [0, 100],
    "recreate": [100],
    "none": [],
}


@dataclass(frozen=True)
class Facts:
    """What conditions read: the answers, the command's inputs and the facts derived so far."""

    req: Requirements
    derived: dict[str, Any] = field(default_factory=dict)
    tier_floor: Tier | None = None


def check_tier_floor(tier_floor: str | None) -> Tier | None:
    """``tier_floor`` when it names a tier; ``UsageError`` otherwise."""
    if tier_floor is None:
        return None
    for tier in typing.get_args(Tier):
        if tier_floor == tier:
            return tier  # type: ignore[no-any-return]
    raise UsageError(
        f"tier floor {tier_floor!r} is not a tier", hint="use one of " + ", ".join(TIER_ORDER)
    )


def field_value(facts: Facts | Requirements, path: str) -> Any:
    if isinstance(facts, Requirements):
        facts = Facts(facts)
    if path in INPUT_FIELDS:
        return facts.tier_floor
    if path in DERIVED_FIELDS:
        if path not in facts.derived:
            raise CatalogError(f"{path} is not derived yet; a tier rule cannot read it")
        return facts.derived[path]
    node: Any = facts.req
    for part in path.split("."):
        node = getattr(node, part)
    return node


def _leaf(facts: Facts, leaf: Leaf) -> bool:
    value = field_value(facts, leaf.field)
    op, operand = leaf.op, leaf.operand(leaf.op)
    if op == "is_set":
        present = value is not None and value != []
        return bool(present is operand)
    if value is None:
        return False
    if op == "eq":
        return bool(value == operand)
    if op == "ne":
        return bool(value != operand)
    if op == "in":
        return value in operand
    if op == "not_in":
        return value not in operand
    if op == "contains":
        return isinstance(value, list) and operand in value
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise CatalogError(f"{leaf.field} is not a number; {op} needs one")
    result: bool = {
        "lt": value < operand,
        "le": value <= operand,
        "gt": value > operand,
        "ge": value >= operand,
    }[op]
    return result


def matches(facts: Facts | Requirements, cond: Condition | Leaf) -> bool:
    if isinstance(facts, Requirements):
        facts = derive_facts(facts)
    if isinstance(cond, Leaf):
        return _leaf(facts, cond)
    if cond.all is not None:
        return all(matches(facts, c) for c in cond.all)
    if cond.any is not None:
        return any(matches(facts, c) for c in cond.any)
    assert cond.not_ is not None
    return not matches(facts, cond.not_)


def _tier_of(
    req: Requirements, catalog: tuple[Rule, ...], tier_floor: Tier | None = None
) -> tuple[str, list[Rule]]:
    bare = Facts(req, tier_floor=tier_floor)
    floors = [r for r in catalog if r.then.tier and matches(bare, r.when)]
    tier = "T1"
    for rule in floors:
        assert rule.then.tier is not None
        if TIER_ORDER[rule.then.tier] > TIER_ORDER[tier]:
            tier = rule.then.tier
    return tier, [r for r in floors if r.then.tier == tier]


def derive_facts(
    req: Requirements, catalog: tuple[Rule, ...] | None = None, *, tier_floor: str | None = None
) -> Facts:
    floor = check_tier_floor(tier_floor)
    tier, _ = _tier_of(req, catalog or load_catalog(), floor)
    return Facts(req, _derived(req, tier), floor)


def _derived(req: Requirements, tier: str) -> dict[str, Any]:
    """The facts conditions may read besides the answers (``DERIVED_FIELDS``)."""
    return {"tier": tier, **_from_answers(req)}


def _from_answers(req: Requirements) -> dict[str, Any]:
    """The derived facts computed from the answers alone (``DERIVED_INPUTS``)."""
    return {"weights_read_gb_per_s": weights_read_gb_per_s(req)}


def answer_facts(req: Requirements) -> Facts:
    """The answers and the facts derived from them alone: no tier (the rules derive it)."""
    return Facts(req, _from_answers(req))


def fired_rules(
    req: Requirements, catalog: tuple[Rule, ...] | None = None, *, tier_floor: str | None = None
) -> list[Rule]:
    catalog = catalog or load_catalog()
    facts = derive_facts(req, catalog, tier_floor=tier_floor)
    return [r for r in catalog if matches(facts, r.when)]


def refs(rule: Rule) -> list[ReferenceOut]:
    return [
        ReferenceOut(title=r.title, url=r.url, accessed=r.accessed.isoformat())
        for r in rule.references
    ]


def _decision(rule: Rule, capability: str, choice: Any) -> Decision:
    return Decision(
        rule=rule.id,
        capability=capability,
        choice=choice,
        reason=" ".join(rule.rationale.split()),
        references=refs(rule),
    )


def abort_message(aborts: list[Rule]) -> RuleAbort:
    """One error naming every fired abort rule and what to change for each."""
    first = aborts[0]
    message = f"{first.name}: {first.summary}"
    hint = " ".join(first.remediation.split())
    for other in aborts[1:]:
        message += f"\n  also {other.id} {other.name}: {other.summary}"
        hint += f"\n  for {other.id}: " + " ".join(other.remediation.split())
    return RuleAbort(first.id, message, hint)


def evaluate(
    req: Requirements,
    *,
    strict: bool = False,
    catalog: tuple[Rule, ...] | None = None,
    tier_floor: str | None = None,
) -> StackDesign:
    """Run every rule and build the design.

    ``tier_floor`` is the least tier the command asks for (``T2`` for ``design``, ``T3`` for
    ``lifecycle``); the catalog's command rules (MAT005, MAT006) read it, so the design's tier is
    at least the floor and every rule that reads the tier sees the floored one.

    Raises ``RuleAbort`` when an abort rule fires and, under ``strict``, ``RuleConflictError``
    when two rules set one choice differently.
    """
    catalog = catalog or load_catalog()
    floor = check_tier_floor(tier_floor)
    tier, tier_rules = _tier_of(req, catalog, floor)
    facts = Facts(req, _derived(req, tier), floor)
    fired = [r for r in catalog if matches(facts, r.when)]
    aborts = [r for r in fired if r.then.abort]
    if aborts:
        raise abort_message(aborts)

    decisions: list[Decision] = []
    alternatives: list[Alternative] = []
    conflicts: list[Conflict] = []

    # Stack choices, per capability.
    proposals: dict[str, list[tuple[Rule, str]]] = defaultdict(list)
    for rule in fired:
        for capability, choice in rule.then.set.items():
            proposals[capability].append((rule, choice))
    chosen: dict[str, str] = {}
    deciding: dict[str, Rule] = {}
    for capability in Stack.model_fields:
        props = proposals.get(capability, [])
        winners = _drop_overridden(props, capability, alternatives)
        if not winners:
            raise CatalogError(f"no rule decides {capability!r} for these requirements")
        values = {choice for _, choice in winners}
        if len(values) > 1:
            rule, choice = winners[0]
            conflicts.append(
                Conflict(
                    capability=capability,
                    choices={r.id: c for r, c in winners},
                    resolved_to=choice,
                    message=f"rules {', '.join(r.id for r, _ in winners)} set {capability} to "
                    f"{', '.join(sorted(values))}; neither overrides the other (kept {choice} "
                    f"from {rule.id} for this report)",
                )
            )
            winners = [(rule, choice)]
        chosen[capability] = winners[0][1]
        deciding[capability] = winners[0][0]
        for rule, choice in winners:
            decisions.append(_decision(rule, capability, choice))
            for alt in rule.alternatives:
                if alt.choice != choice:
                    alternatives.append(
                        Alternative(
                            capability=capability,
                            choice=alt.choice,
                            proposed_by=rule.id,
                            overridden_by=rule.id,
                            reason=" ".join(alt.why_not.split()),
                        )
                    )

    for rule in tier_rules:
        decisions.append(_decision(rule, "tier", tier))

    # Thresholds: one value per key, overrides as for stack choices.
    threshold_values, threshold_rule = _merge_thresholds(fired, conflicts)
    for key, rule in threshold_rule.items():
        decisions.append(_decision(rule, f"thresholds.{key}", threshold_values[key]))

    # Alerts: one definition per name.
    alerts = _merge_alerts(fired, conflicts)

    if conflicts and strict:
        raise RuleConflictError(
            "rule conflicts: " + "; ".join(c.message for c in conflicts),
            hint="add `overrides` to the rule that should win, or change the answers; "
            "without --strict the conflict is reported as a warning",
        )

    # Governance controls accumulate; each names the rules that require it.
    required_by: dict[str, list[Rule]] = defaultdict(list)
    for rule in fired:
        for item in rule.then.require:
            required_by[item].append(rule)
    for item in sorted(required_by):
        for rule in required_by[item]:
            decisions.append(_decision(rule, "governance", item))

    stack = Stack(**chosen)
    rollout_rule = deciding["rollout"]
    if rollout_rule.then.rollout_steps is not None:
        rollout_steps = list(rollout_rule.then.rollout_steps)
    else:
        rollout_steps = list(DEFAULT_ROLLOUT_STEPS.get(stack.rollout, [100]))
    sizing, sizing_decisions, derived_thresholds = derive_sizing(req, stack, rollout_steps)
    decisions.extend(sizing_decisions)
    for key, value in derived_thresholds.items():
        threshold_values.setdefault(key, value)  # a rule's threshold wins over the formula's
    try:
        thresholds = Thresholds.model_validate(threshold_values)
    except ValidationError as exc:  # pydantic names each missing threshold
        raise CatalogError(f"the catalog leaves thresholds undecided: {exc}") from None

    warnings = [f"{r.id}: {' '.join((r.then.warn or '').split())}" for r in fired if r.then.warn]
    warnings += [f"conflict: {c.message}" for c in conflicts]
    governance = sorted(required_by)
    return StackDesign(
        tier=tier,
        tier_floor=floor,
        stack=stack,
        decisions=decisions,
        thresholds=thresholds,
        sizing=sizing,
        governance=governance,
        alerts=alerts,
        quickstart=quickstart(req, stack, governance),
        warnings=warnings,
        conflicts=conflicts,
        alternatives=alternatives,
        fired_rules=[r.id for r in fired],
        components=components(req, stack, tier, governance, sizing),
        requirements=req,
    )


def _overrides(a: Rule, b: Rule) -> bool:
    return b.id in a.overrides


def _merge_thresholds(
    fired: list[Rule], conflicts: list[Conflict]
) -> tuple[dict[str, float], dict[str, Rule]]:
    setters: dict[str, list[Rule]] = defaultdict(list)
    for rule in fired:
        for key in rule.then.thresholds:
            setters[key].append(rule)
    values: dict[str, float] = {}
    owner: dict[str, Rule] = {}
    for key, rules in setters.items():
        kept = [r for r in rules if not any(_overrides(o, r) for o in rules if o is not r)]
        distinct = {r.then.thresholds[key] for r in kept}
        if len(distinct) > 1:
            conflicts.append(
                Conflict(
                    capability=f"thresholds.{key}",
                    choices={r.id: f"{r.then.thresholds[key]:g}" for r in kept},
                    resolved_to=f"{kept[0].then.thresholds[key]:g}",
                    message=f"rules {', '.join(r.id for r in kept)} set threshold {key} "
                    "differently; neither overrides the other",
                )
            )
        values[key] = kept[0].then.thresholds[key]
        owner[key] = kept[0]
    return values, owner


def _merge_alerts(fired: list[Rule], conflicts: list[Conflict]) -> list[Alert]:
    by_name: dict[str, list[tuple[Rule, Alert]]] = defaultdict(list)
    for rule in fired:
        for spec in rule.then.alerts:
            by_name[spec.name].append((rule, Alert(rule=rule.id, **spec.model_dump())))
    out: list[Alert] = []
    for name, entries in by_name.items():
        kept = [
            (r, a)
            for r, a in entries
            if not any(_overrides(o, r) for o, _ in entries if o is not r)
        ]
        distinct = {a.model_dump_json(exclude={"rule"}) for _, a in kept}
        if len(distinct) > 1:
            conflicts.append(
                Conflict(
                    capability=f"alerts.{name}",
                    choices={r.id: f"{a.priority}/{a.notify}" for r, a in kept},
                    resolved_to=f"{kept[0][1].priority}/{kept[0][1].notify}",
                    message=f"rules {', '.join(r.id for r, _ in kept)} define alert {name} "
                    "differently; neither overrides the other",
                )
            )
        out.append(kept[0][1])
    return sorted(out, key=lambda a: (a.priority, a.name))


def _drop_overridden(
    props: list[tuple[Rule, str]],
    capability: str,
    alternatives: list[Alternative],
) -> list[tuple[Rule, str]]:
    """Drop the proposals that another fired rule setting the same capability overrides."""
    kept = []
    for rule, choice in props:
        overrider = next(
            ((other, c) for other, c in props if other is not rule and _overrides(other, rule)),
            None,
        )
        if overrider is None:
            kept.append((rule, choice))
        elif overrider[1] != choice:
            alternatives.append(
                Alternative(
                    capability=capability,
                    choice=choice,
                    proposed_by=rule.id,
                    overridden_by=overrider[0].id,
                    reason=None,
                )
            )
    return kept
