"""The engine's mechanics on tiny catalogs: overrides, conflicts, aborts, catalog checks."""

from __future__ import annotations

from pathlib import Path
from textwrap import dedent

import pytest

from mlopsctl.errors import CatalogError, RuleAbort, RuleConflictError
from mlopsctl.rules.engine import evaluate
from mlopsctl.rules.model import CATALOG_DIR, load_catalog
from tests.conftest import make_requirements


def catalog_with(tmp_path: Path, *extra: str) -> Path:
    """The real catalog plus extra rule files."""
    for path in CATALOG_DIR.glob("*.yaml"):
        (tmp_path / path.name).write_text(path.read_text())
    for text in extra:
        body = dedent(text)
        rule_id = body.split("id:", 1)[1].split()[0]
        (tmp_path / f"{rule_id}-extra.yaml").write_text(body)
    load_catalog.cache_clear()
    return tmp_path


RULE = """\
id: {id}
name: {name}
category: serving
capability: serving
summary: test rule {id}
when:
  all:
    - field: framework
      eq: xgboost
then:
  {then}
{overrides}
rationale: because
remediation: change framework
references:
  - title: t
    url: https://example.org
    accessed: 2025-10-25
examples:
  fires:
    - {{framework: xgboost}}
  does_not_fire:
    - {{framework: sklearn}}
"""


def rule(id: str, then: str, overrides: str = "") -> str:
    return RULE.format(id=id, name=f"rule-{id.lower()}", then=then, overrides=overrides)


def test_two_rules_setting_one_choice_differently_are_a_conflict(tmp_path: Path) -> None:
    directory = catalog_with(tmp_path, rule("TST001", "set: {serving: triton}"))
    catalog = load_catalog(directory)
    req = make_requirements(framework="xgboost")
    design = evaluate(req, catalog=catalog)
    assert [c.capability for c in design.conflicts] == ["serving"]
    assert set(design.conflicts[0].choices) == {"SRV001", "TST001"}
    assert any("conflict" in w for w in design.warnings)
    with pytest.raises(RuleConflictError):
        evaluate(req, strict=True, catalog=catalog)
    # rules that do not fire cause no conflict
    assert evaluate(make_requirements(framework="sklearn"), catalog=catalog).conflicts == []


def test_override_is_not_a_conflict_and_records_the_alternative(tmp_path: Path) -> None:
    directory = catalog_with(
        tmp_path, rule("TST002", "set: {serving: triton}", "overrides: [SRV001]")
    )
    design = evaluate(make_requirements(framework="xgboost"), catalog=load_catalog(directory))
    assert design.conflicts == []
    assert design.stack.serving == "triton"
    assert [
        (a.choice, a.proposed_by, a.overridden_by)
        for a in design.alternatives
        if a.capability == "serving"
    ] == [("kserve", "SRV001", "TST002")]


def test_abort_names_rule_and_remedy(tmp_path: Path) -> None:
    directory = catalog_with(tmp_path, rule("TST003", "abort: true"))
    with pytest.raises(RuleAbort) as exc:
        evaluate(make_requirements(framework="xgboost"), catalog=load_catalog(directory))
    assert exc.value.rule_id == "TST003"
    assert exc.value.exit_code == 4
    assert exc.value.hint == "change framework"


def test_unknown_field_in_condition_rejected(tmp_path: Path) -> None:
    bad = rule("TST004", "set: {serving: triton}").replace("field: framework", "field: colour")
    with pytest.raises(CatalogError, match="unknown field 'colour'"):
        load_catalog(catalog_with(tmp_path, bad))


def test_unknown_choice_rejected(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="unknown choice 'magic'"):
        load_catalog(catalog_with(tmp_path, rule("TST005", "set: {serving: magic}")))


def test_override_of_unknown_rule_rejected(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="overrides unknown rule"):
        load_catalog(
            catalog_with(tmp_path, rule("TST006", "set: {serving: triton}", "overrides: [ZZZ999]"))
        )


def test_conditional_rule_needs_negative_example(tmp_path: Path) -> None:
    text = rule("TST007", "set: {serving: triton}").replace(
        "  does_not_fire:\n    - {framework: sklearn}\n", ""
    )
    with pytest.raises(CatalogError, match="does_not_fire"):
        load_catalog(catalog_with(tmp_path, text))


def test_condition_language_has_no_eval(tmp_path: Path) -> None:
    text = rule("TST008", "set: {serving: triton}").replace(
        "    - field: framework\n      eq: xgboost",
        "    - field: framework\n      expr: __import__('os')",
    )
    with pytest.raises(CatalogError):
        load_catalog(catalog_with(tmp_path, text))


def test_the_rules_package_has_no_import_cycle() -> None:
    """Modules of mlopsctl.rules import each other in one direction only (function-level
    imports included): the model knows nothing of the engine that evaluates it."""
    import ast
    from graphlib import CycleError, TopologicalSorter

    root = Path(__file__).parents[1] / "mlopsctl" / "rules"
    graph: dict[str, set[str]] = {}
    for path in root.glob("*.py"):
        name = f"mlopsctl.rules.{path.stem}"
        deps: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module:
                deps.add(node.module)
                deps |= {f"{node.module}.{alias.name}" for alias in node.names}
            elif isinstance(node, ast.Import):
                deps |= {alias.name for alias in node.names}
        graph[name] = {d for d in deps if d.startswith("mlopsctl.rules.")}
    graph.pop("mlopsctl.rules.__init__", None)
    modules = set(graph)
    try:
        tuple(TopologicalSorter({m: graph[m] & modules for m in modules}).static_order())
    except CycleError as exc:
        raise AssertionError(f"import cycle: {exc.args[1]}") from None
    assert "mlopsctl.rules.engine" not in graph["mlopsctl.rules.model"]
