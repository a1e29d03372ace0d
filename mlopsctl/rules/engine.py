"""Evaluate the rule catalog against ``Requirements`` and assemble a ``StackDesign``.

Two fired rules that set one capability differently are a conflict, reported in the design, unless
one of them names the other in ``overrides``. Under ``strict`` a conflict is an error.
"""

from __future__ import annotations

from collections import defaultdict
from functools import lru_cache
from typing import Any

from mlopsctl.design import (
    Alternative,
    Conflict,
    Decision,
    ReferenceOut,
    Sizing,
    Stack,
    StackDesign,
    Thresholds,
)
from mlopsctl.errors import CatalogError, RuleAbort, RuleConflictError
from mlopsctl.requirements import Requirements, ScaleRequirements
from mlopsctl.rules.model import Condition, Leaf, Rule, load_catalog

_TIER_ORDER = {"T1": 1, "T2": 2, "T3": 3}


@lru_cache(maxsize=1)
def known_fields() -> frozenset[str]:
    fields = set(Requirements.model_fields) - {"scale_requirements"}
    fields |= {f"scale_requirements.{name}" for name in ScaleRequirements.model_fields}
    return frozenset(fields)


def field_value(req: Requirements, path: str) -> Any:
    node: Any = req
    for part in path.split("."):
        node = getattr(node, part)
    return node


def _leaf(req: Requirements, leaf: Leaf) -> bool:
    value = field_value(req, leaf.field)
    op, operand = leaf.op, leaf.operand(leaf.op)
    if op == "is_set":
        present = value is not None and value != []
        return present is operand
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
    return {
        "lt": value < operand,
        "le": value <= operand,
        "gt": value > operand,
        "ge": value >= operand,
    }[op]


def matches(req: Requirements, cond: Condition | Leaf) -> bool:
    if isinstance(cond, Leaf):
        return _leaf(req, cond)
    if cond.all is not None:
        return all(matches(req, c) for c in cond.all)
    if cond.any is not None:
        return any(matches(req, c) for c in cond.any)
    assert cond.not_ is not None
    return not matches(req, cond.not_)


def fired_rules(req: Requirements, catalog: tuple[Rule, ...] | None = None) -> list[Rule]:
    return [r for r in (catalog or load_catalog()) if matches(req, r.when)]


def _refs(rule: Rule) -> list[ReferenceOut]:
    return [
        ReferenceOut(title=r.title, url=r.url, accessed=r.accessed.isoformat())
        for r in rule.references
    ]


def evaluate(
    req: Requirements, *, strict: bool = False, catalog: tuple[Rule, ...] | None = None
) -> StackDesign:
    """Run every rule and build the design. Raises ``RuleAbort`` when an abort rule fires."""
    from mlopsctl.sizing import derive_sizing

    fired = fired_rules(req, catalog)
    aborts = [r for r in fired if r.then.abort]
    if aborts:
        first = aborts[0]
        message = first.summary
        if len(aborts) > 1:
            message += " (also: " + "; ".join(f"{r.id} {r.summary}" for r in aborts[1:]) + ")"
        raise RuleAbort(first.id, message, first.remediation)

    by_id = {r.id: r for r in fired}
    decisions: list[Decision] = []
    alternatives: list[Alternative] = []
    conflicts: list[Conflict] = []

    # Stack choices, per capability.
    proposals: dict[str, list[tuple[Rule, str]]] = defaultdict(list)
    for rule in fired:
        for capability, choice in rule.then.set.items():
            proposals[capability].append((rule, choice))
    chosen: dict[str, str] = {}
    for capability in Stack.model_fields:
        props = proposals.get(capability, [])
        winners = _drop_overridden(props, by_id, capability, alternatives)
        if not winners:
            raise CatalogError(f"no rule decides {capability!r} for these requirements")
        values = {choice for _, choice in winners}
        if len(values) > 1:
            rule, choice = winners[0]
            conflict = Conflict(
                capability=capability,
                choices={r.id: c for r, c in winners},
                resolved_to=choice,
                message=f"rules {', '.join(r.id for r, _ in winners)} set {capability} to "
                f"{', '.join(sorted(values))}; kept {choice} from {rule.id}",
            )
            conflicts.append(conflict)
            winners = [(rule, choice)]
        chosen[capability] = winners[0][1]
        for rule, choice in winners:
            decisions.append(
                Decision(
                    rule=rule.id,
                    capability=capability,
                    choice=choice,
                    reason=rule.rationale.strip(),
                    references=_refs(rule),
                )
            )
    if conflicts and strict:
        raise RuleConflictError(
            "rule conflicts: " + "; ".join(c.message for c in conflicts),
            hint="run without --strict to keep the first rule's choice, or change the answers",
        )

    # Tier: the highest floor any fired rule sets.
    tier_rules = [r for r in fired if r.then.tier]
    tier = "T1"
    for rule in tier_rules:
        assert rule.then.tier is not None
        if _TIER_ORDER[rule.then.tier] > _TIER_ORDER[tier]:
            tier = rule.then.tier
    for rule in tier_rules:
        if rule.then.tier == tier:
            decisions.append(
                Decision(
                    rule=rule.id,
                    capability="tier",
                    choice=tier,
                    reason=rule.rationale.strip(),
                    references=_refs(rule),
                )
            )

    # Thresholds.
    threshold_values: dict[str, float] = {}
    threshold_rule: dict[str, Rule] = {}
    for rule in fired:
        for key, value in rule.then.thresholds.items():
            if key in threshold_values and threshold_values[key] != value:
                if rule.id in threshold_rule[key].overrides:
                    continue
                if threshold_rule[key].id not in rule.overrides:
                    conflicts.append(
                        Conflict(
                            capability=key,
                            choices={threshold_rule[key].id: str(threshold_values[key]),
                                     rule.id: str(value)},
                            resolved_to=str(threshold_values[key]),
                            message=f"rules {threshold_rule[key].id} and {rule.id} set {key} "
                            "differently",
                        )
                    )
                    continue
            threshold_values[key] = value
            threshold_rule[key] = rule
    for key, rule in threshold_rule.items():
        decisions.append(
            Decision(
                rule=rule.id,
                capability=f"thresholds.{key}",
                choice=threshold_values[key],
                reason=rule.rationale.strip(),
                references=_refs(rule),
            )
        )

    steps_rules = [r for r in fired if r.then.rollout_steps]
    rollout_steps = list(steps_rules[-1].then.rollout_steps or []) if steps_rules else []
    stack = Stack(**chosen)
    sizing, sizing_decisions, latency_alert = derive_sizing(req, stack, rollout_steps, threshold_values)
    decisions.extend(sizing_decisions)
    threshold_values.setdefault("latency_p95_alert_ms", latency_alert)
    try:
        thresholds = Thresholds(**threshold_values)  # type: ignore[arg-type]
    except Exception as exc:  # pydantic names each missing threshold
        raise CatalogError(f"the catalog leaves thresholds undecided: {exc}") from None

    governance = sorted({item for r in fired for item in r.then.require})
    warnings = [f"{r.id}: {r.then.warn}" for r in fired if r.then.warn]
    warnings += [f"conflict: {c.message}" for c in conflicts]
    return StackDesign(
        tier=tier,  # type: ignore[arg-type]
        stack=stack,
        decisions=decisions,
        thresholds=thresholds,
        sizing=sizing,
        governance=governance,
        warnings=warnings,
        conflicts=conflicts,
        alternatives=alternatives,
        fired_rules=[r.id for r in fired],
        requirements=req,
    )


def _drop_overridden(
    props: list[tuple[Rule, str]],
    by_id: dict[str, Rule],
    capability: str,
    alternatives: list[Alternative],
) -> list[tuple[Rule, str]]:
    setters = {rule.id for rule, _ in props}
    kept = []
    for rule, choice in props:
        overrider = next(
            (
                other
                for other, _ in props
                if rule.id in other.overrides and other.id in setters and other.id != rule.id
            ),
            None,
        )
        if overrider is None:
            kept.append((rule, choice))
        else:
            overriding_choice = overrider.then.set[capability]
            if overriding_choice != choice:
                alternatives.append(
                    Alternative(
                        capability=capability,
                        choice=choice,
                        proposed_by=rule.id,
                        overridden_by=overrider.id,
                    )
                )
    del by_id
    return kept
