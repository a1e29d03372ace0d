"""Rules in words: conditions and outcomes as text, one rule as a Markdown explanation, and the
whole catalog (sizing rules included) as the rule reference ``docs/rules.md``. ``rules list``,
``rules explain`` and the docs share these.
"""

from __future__ import annotations

import json
from typing import Any

from mlopsctl.rules.model import Condition, Leaf, Rule, SizingRule, load_catalog, load_sizing_rules

AnyRule = Rule | SizingRule

_OPS = {
    "eq": "=",
    "ne": "!=",
    "lt": "<",
    "le": "<=",
    "gt": ">",
    "ge": ">=",
    "in": "in",
    "not_in": "not in",
    "contains": "contains",
}

CATEGORY_TITLES = {
    "stack": "Stack selection",
    "deployment": "Deployment pattern",
    "serving": "Serving",
    "maturity": "Maturity and tier",
    "governance": "Governance",
    "monitoring": "Monitoring",
    "alerting": "Alerting",
    "rollout": "Rollout",
    "abort": "Abort conditions",
    "sizing": "Sizing",
}


def all_rules() -> tuple[AnyRule, ...]:
    """The condition rules, then the sizing rules."""
    return (*load_catalog(), *load_sizing_rules())


def _value(value: Any) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def condition_text(cond: Condition | Leaf) -> str:
    """A condition as one line, e.g. ``kubernetes = true and deployment_target in [online]``."""
    if isinstance(cond, Leaf):
        if cond.op == "is_set":
            return f"{cond.field} is {'set' if cond.operand('is_set') else 'empty'}"
        return f"{cond.field} {_OPS[cond.op]} {_value(cond.operand(cond.op))}"
    if cond.all is not None:
        if not cond.all:
            return "always"
        parts = [_nested(c) for c in cond.all]
        return " and ".join(parts)
    if cond.any is not None:
        return " or ".join(_nested(c) for c in cond.any)
    assert cond.not_ is not None
    return f"not ({condition_text(cond.not_)})"


def _nested(cond: Condition | Leaf) -> str:
    text = condition_text(cond)
    if isinstance(cond, Condition) and (cond.any is not None or (cond.all and len(cond.all) > 1)):
        return f"({text})"
    return text


def outcome_lines(rule: Rule) -> list[str]:
    """What the rule decides, one item per line."""
    then = rule.then
    lines: list[str] = []
    if then.abort:
        lines.append("aborts: the requirements are refused (exit code 4)")
    for key, choice in then.set.items():
        lines.append(f"`{key}` = `{choice}`")
    if then.tier:
        lines.append(f"tier at least `{then.tier}`")
    for key, value in then.thresholds.items():
        lines.append(f"threshold `{key}` = `{value:g}`")
    if then.rollout_steps is not None:
        lines.append("rollout steps " + " -> ".join(f"{s} %" for s in then.rollout_steps))
    for item in then.require:
        lines.append(f"requires `{item}`")
    for alert in then.alerts:
        lines.append(f"alert `{alert.name}` ({alert.priority}, {alert.notify}): {alert.signal}")
    if then.warn:
        lines.append(f"warns: {' '.join(then.warn.split())}")
    return lines


def _example(example: dict[str, Any]) -> str:
    return json.dumps(example, sort_keys=True) if example else "{} (the defaults)"


def _heading(rule: Rule | SizingRule, heading: str) -> list[str]:
    """The lines every explanation of a rule starts with: id and name, summary, what it decides."""
    return [
        f"{heading} {rule.id} {rule.name}",
        "",
        f"{rule.summary}",
        "",
        f"Category: {rule.category}. Decides: {rule.capability}.",
        "",
    ]


def rule_markdown(rule: Rule, *, heading: str = "#") -> str:
    """One rule explained in fixed sections, like ``ruff rule``."""
    h2 = heading + "#"
    out = [
        *_heading(rule, heading),
        f"{h2} When it fires",
        "",
        condition_text(rule.when),
        "",
        f"{h2} What it decides",
        "",
        *[f"- {line}" for line in outcome_lines(rule)],
        "",
    ]
    if rule.overrides:
        out += [f"Takes precedence over: {', '.join(rule.overrides)}.", ""]
    out += [f"{h2} Why", "", " ".join(rule.rationale.split()), ""]
    if rule.alternatives:
        out += [f"{h2} Alternatives considered", ""]
        out += [f"- `{a.choice}`: {' '.join(a.why_not.split())}" for a in rule.alternatives]
        out.append("")
    out += [f"{h2} Remediation", "", " ".join(rule.remediation.split()), ""]
    out += [f"{h2} References", ""]
    out += [f"- [{r.title}]({r.url}) (accessed {r.accessed.isoformat()})" for r in rule.references]
    out += ["", f"{h2} Examples", "", "Fires (over the defaults):", ""]
    out += [f"- `{_example(e)}`" for e in rule.examples.fires]
    if rule.examples.does_not_fire:
        out += ["", "Does not fire:", ""]
        out += [f"- `{_example(e)}`" for e in rule.examples.does_not_fire]
    return "\n".join(out) + "\n"


def sizing_rule_markdown(rule: SizingRule, *, heading: str = "#") -> str:
    """One sizing rule explained in the sections of ``rule_markdown`` that apply to a formula."""
    h2 = heading + "#"
    out = [
        *_heading(rule, heading),
        f"{h2} Formula",
        "",
        " ".join(rule.formula.split()),
        "",
        "Every design states it with its own numbers (`assess` shows the sizing table).",
        "",
        f"{h2} Why",
        "",
        " ".join(rule.rationale.split()),
        "",
        f"{h2} Remediation",
        "",
        " ".join(rule.remediation.split()),
        "",
        f"{h2} References",
        "",
    ]
    out += [f"- [{r.title}]({r.url}) (accessed {r.accessed.isoformat()})" for r in rule.references]
    return "\n".join(out) + "\n"


def explain_markdown(rule: AnyRule, *, heading: str = "#") -> str:
    if isinstance(rule, SizingRule):
        return sizing_rule_markdown(rule, heading=heading)
    return rule_markdown(rule, heading=heading)


def find_rule(key: str, catalog: tuple[AnyRule, ...] | None = None) -> AnyRule | None:
    """A rule (sizing rules included) by id (case-insensitive) or by name."""
    for rule in catalog or all_rules():
        if key.upper() == rule.id or key.lower() == rule.name:
            return rule
    return None


def rules_reference_md() -> str:
    """The generated rule reference, ``docs/rules.md``."""
    catalog = all_rules()
    out = [
        "# Rule reference",
        "",
        "Generated from `mlopsctl/rules/catalog/` by `make docs`; do not edit by hand.",
        "`mlopsctl rules explain ID` prints the same explanation for one rule.",
        "",
        "Conditions read the answers (see [questions.md](questions.md)), the command's",
        "`tier_floor` (`T2` under `mlopsctl design`, `T3` under `mlopsctl lifecycle`, unset under",
        "`init` and `assess`) and the derived `tier`, the highest tier floor set by the rules that",
        "set one, and `weights_read_gb_per_s`, the memory bandwidth one prediction needs to read",
        "the model's weights within the latency target (`model_size_gb` / the target in seconds:",
        "`latency_ms`, else 200 ms online and hybrid, 50 ms edge and embedded; none for batch).",
        "Examples are answers laid over the defaults (`tier_floor` is the command's).",
        "When two rules set one choice differently, one must name the other in its `overrides`;",
        "otherwise the design reports a conflict (`--strict` exits 1). The sizing rules (`SIZ`)",
        "decide a number each by a formula over the answers and the stack.",
        "",
        "| id | name | category | summary |",
        "| --- | --- | --- | --- |",
    ]
    for rule in catalog:
        anchor = f"{rule.id}-{rule.name}".lower()
        out.append(f"| [{rule.id}](#{anchor}) | {rule.name} | {rule.category} | {rule.summary} |")
    out.append("")
    for category, title in CATEGORY_TITLES.items():
        rules = [r for r in catalog if r.category == category]
        if not rules:
            continue
        out += [f"## {title}", ""]
        for rule in rules:
            out.append(explain_markdown(rule, heading="###"))
    return "\n".join(out).rstrip("\n") + "\n"


def design_schema_json() -> str:
    """The published JSON Schema of ``assess --format json``."""
    from mlopsctl.design import design_json_schema

    return json.dumps(design_json_schema(), indent=2, sort_keys=True) + "\n"
