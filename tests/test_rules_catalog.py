"""The rule catalog: every file is valid, every example fires or not as it says, the catalog is
conflict-free over valid requirements, and a conflicting pair of rules is reported."""

from __future__ import annotations

import datetime as dt
import json
import typing
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlopsctl.api import load_requirements
from mlopsctl.errors import CatalogError, RuleAbort, RuleConflictError
from mlopsctl.requirements import Requirements
from mlopsctl.rules.engine import derive_facts, evaluate, matches
from mlopsctl.rules.model import CATALOG_DIR, STACK_CHOICES, Rule, load_catalog

CATALOG = load_catalog()
DESIGN_VALIDATOR = jsonschema.Draft202012Validator(
    json.loads((Path(__file__).parents[1] / "docs/schemas/design.schema.json").read_text())
)
EXAMPLES = [
    (rule, kind, i, example)
    for rule in CATALOG
    for kind in ("fires", "does_not_fire")
    for i, example in enumerate(getattr(rule.examples, kind))
]


@pytest.mark.parametrize(
    ("rule", "kind", "index", "example"),
    EXAMPLES,
    ids=[f"{r.id}-{k}-{i}" for r, k, i, _ in EXAMPLES],
)
def test_rule_example(rule: Rule, kind: str, index: int, example: dict[str, Any]) -> None:
    answers = dict(example)
    floor = answers.pop("tier_floor", None)  # the command's input, beside the answers
    req = load_requirements(answers, defaults=True)
    fired = matches(derive_facts(req, tier_floor=floor), rule.when)
    assert fired is (kind == "fires"), f"{rule.id} example {kind}[{index}]: {example}"


@pytest.mark.parametrize("rule", CATALOG, ids=[r.id for r in CATALOG])
def test_rule_is_complete(rule: Rule) -> None:
    assert rule.examples.fires, "every rule has an example that fires"
    if not rule.unconditional:
        assert rule.examples.does_not_fire, "a conditional rule needs a does_not_fire example"
    assert rule.references
    for ref in rule.references:
        assert ref.url.startswith("https://")
        assert dt.date(2025, 1, 1) <= ref.accessed <= dt.date.today()
    assert rule.rationale.strip() and rule.remediation.strip()


def test_a_conditional_rule_without_negative_example_is_rejected() -> None:
    data = yaml.safe_load(
        (CATALOG_DIR / "SRV003-latency-under-100ms-suggests-compression.yaml").read_text(
            encoding="utf-8"
        )
    )
    del data["examples"]["does_not_fire"]
    with pytest.raises(ValueError, match="does_not_fire"):
        Rule.model_validate(data)


def test_every_rule_file_is_named_after_its_id() -> None:
    for path in CATALOG_DIR.glob("*.yaml"):
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        assert path.name == f"{data['id']}-{data['name']}.yaml"


def test_the_catalog_covers_the_decisions_of_the_specification() -> None:
    ids = {r.id for r in CATALOG}
    # one abort rule per abort condition, rollout patterns, every existing stack value
    assert {"ABT001", "ABT002", "ABT003", "ABT004", "ABT005"} <= ids
    rollouts = {r.then.set.get("rollout") for r in CATALOG}
    assert {"canary", "progressive", "ab", "shadow"} <= rollouts
    existing = {
        leaf["contains"]
        for r in CATALOG
        for leaf in _leaves(r.model_dump(by_alias=True)["when"])
        if leaf.get("field") == "existing_stack" and leaf.get("contains")
    }
    assert existing == set(
        typing.get_args(Requirements.model_fields["existing_stack"].annotation.__args__[0])
    )


def _leaves(node: Any) -> list[dict[str, Any]]:
    if isinstance(node, dict):
        if "field" in node:
            return [node]
        return [leaf for v in node.values() if v is not None for leaf in _leaves(v)]
    if isinstance(node, list):
        return [leaf for v in node for leaf in _leaves(v)]
    return []


def _choices(name: str) -> tuple[Any, ...]:
    return typing.get_args(Requirements.model_fields[name].annotation)


requirements_strategy = st.builds(
    dict,
    model_type=st.sampled_from(_choices("model_type")),
    framework=st.sampled_from(_choices("framework")),
    model_server=st.sampled_from(_choices("model_server")),
    deployment_target=st.sampled_from(_choices("deployment_target")),
    governance_level=st.sampled_from(_choices("governance_level")),
    existing_stack=st.lists(
        st.sampled_from(typing.get_args(_choices("existing_stack")[0])), unique=True, max_size=3
    ),
    model_size_gb=st.sampled_from([0.05, 0.5, 1.0, 1.01, 8.0]),
    team_size=st.integers(1, 30),
    kubernetes=st.booleans(),
    cloud=st.sampled_from(_choices("cloud")),
    gpu=st.booleans(),
    maturity_level=st.sampled_from([0, 1, 2]),
    regulations=st.lists(
        st.sampled_from(typing.get_args(_choices("regulations")[0])), unique=True, max_size=2
    ),
    explainability_required=st.booleans(),
    scale_requirements=st.fixed_dictionaries(
        {},
        optional={
            "rps": st.sampled_from([1.0, 50.0, 1000.0, 1001.0, 20000.0]),
            "latency_ms": st.sampled_from([10.0, 49.0, 50.0, 99.0, 100.0, 499.0, 500.0, 5000.0]),
            "data_volume_gb": st.sampled_from([1.0, 99.0, 100.0, 5000.0]),
            "concurrent_users": st.integers(0, 100_000),
        },
    ).filter(bool),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(requirements_strategy)
def test_no_conflicts_over_valid_requirements(answers: dict[str, Any]) -> None:
    req = Requirements.model_validate(answers)
    try:
        design = evaluate(req, strict=True)
    except RuleAbort:
        return
    assert design.conflicts == []
    # every capability is decided with a known choice, and the tier-reading rules agree
    for capability, choice in design.stack.model_dump().items():
        assert choice in STACK_CHOICES[capability]
    if design.stack.orchestration == "kubeflow" and "EXS002" not in design.fired_rules:
        assert design.tier in {"T2", "T3"} and req.team_size >= 5 and req.kubernetes
    if design.stack.rollout in {"canary", "progressive", "ab"}:
        assert design.sizing.rollout_steps[0] == design.sizing.canary_percent
    if design.components.online:
        assert design.thresholds.latency_p95_alert_ms == pytest.approx(
            1.5 * design.sizing.latency_target_ms
        )
        assert design.sizing.max_replicas is not None and design.sizing.startup_seconds
    else:  # nothing serves online: no latency alert, no replicas, no startup probe
        assert design.thresholds.latency_p95_alert_ms is None
        assert design.sizing.max_replicas is None and design.sizing.startup_seconds is None


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(requirements_strategy)
def test_every_design_validates_against_the_published_schema(answers: dict[str, Any]) -> None:
    try:
        design = evaluate(Requirements.model_validate(answers))
    except RuleAbort:
        return
    DESIGN_VALIDATOR.validate(design.json_dict())


def _conflicting_catalog(tmp_path: Path) -> tuple[Rule, ...]:
    for path in CATALOG_DIR.glob("*.yaml"):
        (tmp_path / path.name).write_bytes(path.read_bytes())
    data = yaml.safe_load((CATALOG_DIR / "SRV001-kserve-on-kubernetes.yaml").read_text())
    data.update(
        id="SRV099",
        name="seldon-on-kubernetes",
        summary="Serve with Seldon on Kubernetes.",
        then={"set": {"serving": "seldon"}},
        alternatives=[],
    )
    (tmp_path / "SRV099-seldon-on-kubernetes.yaml").write_text(yaml.safe_dump(data))
    return load_catalog(tmp_path)


def test_a_conflicting_pair_is_reported(tmp_path: Path) -> None:
    catalog = _conflicting_catalog(tmp_path)
    req = load_requirements({}, defaults=True)
    design = evaluate(req, catalog=catalog)
    assert len(design.conflicts) == 1
    conflict = design.conflicts[0]
    assert conflict.capability == "serving"
    assert conflict.choices == {"SRV001": "kserve", "SRV099": "seldon"}
    assert any(w.startswith("conflict:") for w in design.warnings)
    with pytest.raises(RuleConflictError) as info:
        evaluate(req, strict=True, catalog=catalog)
    assert info.value.exit_code == 1
    assert "SRV001" in info.value.message and "SRV099" in info.value.message


def test_overrides_resolve_a_conflict(tmp_path: Path) -> None:
    catalog = _conflicting_catalog(tmp_path)
    path = tmp_path / "SRV099-seldon-on-kubernetes.yaml"
    data = yaml.safe_load(path.read_text())
    data["overrides"] = ["SRV001"]
    path.write_text(yaml.safe_dump(data))
    load_catalog.cache_clear()
    catalog = load_catalog(tmp_path)
    design = evaluate(load_requirements({}, defaults=True), strict=True, catalog=catalog)
    assert design.stack.serving == "seldon"
    assert any(a.choice == "kserve" and a.overridden_by == "SRV099" for a in design.alternatives)


def test_a_threshold_conflict_is_reported(tmp_path: Path) -> None:
    for path in CATALOG_DIR.glob("*.yaml"):
        (tmp_path / path.name).write_bytes(path.read_bytes())
    data = yaml.safe_load(
        (CATALOG_DIR / "SRV003-latency-under-100ms-suggests-compression.yaml").read_text()
    )
    data.update(id="MON099", name="stricter-psi", then={"thresholds": {"psi_retrain": 0.3}})
    (tmp_path / "MON099-stricter-psi.yaml").write_text(yaml.safe_dump(data))
    catalog = load_catalog(tmp_path)
    req = load_requirements({"scale_requirements": {"latency_ms": 80}}, defaults=True)
    with pytest.raises(RuleConflictError, match="psi_retrain"):
        evaluate(req, strict=True, catalog=catalog)


def test_unknown_field_or_choice_is_a_catalog_error(tmp_path: Path) -> None:
    data = yaml.safe_load((CATALOG_DIR / "SRV001-kserve-on-kubernetes.yaml").read_text())
    data["when"] = {"all": [{"field": "gpus", "eq": True}]}
    (tmp_path / "SRV001-kserve-on-kubernetes.yaml").write_text(yaml.safe_dump(data))
    with pytest.raises(CatalogError, match="gpus"):
        load_catalog(tmp_path)
    data = yaml.safe_load((CATALOG_DIR / "SRV001-kserve-on-kubernetes.yaml").read_text())
    data["then"] = {"set": {"serving": "flask"}}
    (tmp_path / "SRV001-kserve-on-kubernetes.yaml").write_text(yaml.safe_dump(data))
    load_catalog.cache_clear()
    with pytest.raises(CatalogError, match="flask"):
        load_catalog(tmp_path)


def test_a_tier_rule_cannot_read_the_tier() -> None:
    data = yaml.safe_load(
        (CATALOG_DIR / "MAT001-maturity-one-focuses-on-monitoring.yaml").read_text()
    )
    data["when"]["all"].append({"field": "tier", "eq": "T2"})
    with pytest.raises(ValueError, match="tier"):
        Rule.model_validate(data)


def test_several_aborts_are_all_named() -> None:
    req = load_requirements(
        {"deployment_target": "edge", "framework": "custom", "explainability_required": True},
        defaults=True,
    )
    with pytest.raises(RuleAbort) as info:
        evaluate(req)
    assert info.value.rule_id == "ABT002"
    assert "ABT004" in info.value.message
    assert info.value.exit_code == 4


def test_rule_reference_lists_every_rule() -> None:
    text = (Path(__file__).parents[1] / "docs" / "rules.md").read_text(encoding="utf-8")
    for rule in CATALOG:
        assert f"### {rule.id} {rule.name}" in text
