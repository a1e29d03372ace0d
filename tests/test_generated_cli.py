"""`mlopsctl design` and `mlopsctl lifecycle`: the command sets the tier floor of the repository."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mlopsctl.cli.app import app
from mlopsctl.errors import UsageError
from mlopsctl.render import flags
from mlopsctl.rules.engine import evaluate
from tests.conftest import make_requirements

runner = CliRunner()


def _state(root: Path) -> dict[str, str]:
    data: dict[str, str] = json.loads((root / ".mlopsctl" / "state.json").read_text())
    return data


def test_design_generates_at_least_tier_two(tmp_path: Path) -> None:
    result = runner.invoke(app, ["design", str(tmp_path / "p"), "--defaults"])
    assert result.exit_code == 0, result.output
    state = _state(tmp_path / "p")
    assert state["tier"] in {"T2", "T3"}
    assert not (tmp_path / "p" / "docs" / "model-card.md").exists()


def test_lifecycle_generates_tier_three_with_governance(tmp_path: Path) -> None:
    result = runner.invoke(
        app,
        ["lifecycle", str(tmp_path / "p"), "--defaults", "--set", "governance_level=production"],
    )
    assert result.exit_code == 0, result.output
    root = tmp_path / "p"
    assert _state(root)["tier"] == "T3"
    assert _state(root)["command"] == "lifecycle"
    for rel in (
        "docs/model-card.md",
        "docs/lineage.md",
        "governance/approvals.yaml",
        "docs/runbooks/rollback.md",
        "CHANGELOG.md",
        "docs/cost.md",
        "src/rollout.py",
        "k8s/shadow-inferenceservice.yaml",
    ):
        assert (root / rel).is_file(), rel
    design = json.loads((root / ".mlopsctl" / "design.json").read_text())
    assert design["tier"] == "T3" and design["tier_floor"] == "T3"
    assert evaluate(make_requirements(project_name="p", governance_level="production")).tier == "T2"
    (command,) = [d for d in design["decisions"] if d["capability"] == "tier"]
    assert (command["rule"], command["choice"]) == ("MAT006", "T3")


def test_lifecycle_records_the_rollout_its_files_carry(tmp_path: Path) -> None:
    """The tier-3 rules fire under `lifecycle`: the design records the progressive rollout (and
    the shadow deployment) that the generated files implement."""
    root = tmp_path / "p"
    result = runner.invoke(app, ["lifecycle", str(root), "--defaults"])
    assert result.exit_code == 0, result.output
    design = json.loads((root / ".mlopsctl" / "design.json").read_text())
    assert design["stack"]["rollout"] == "progressive"
    assert {"ROL002", "ROL007", "GOV008"} <= set(design["fired_rules"])
    assert "shadow-deployment" in design["governance"]
    project = json.loads((root / "config" / "project.json").read_text())
    assert project["rollout_steps"] == design["sizing"]["rollout_steps"] == [5, 25, 50, 100]
    assert (root / "src" / "rollout.py").is_file()
    assert (root / "src" / "shadow_compare.py").is_file()


def test_lifecycle_gives_the_fraud_example_the_tier_three_rollout() -> None:
    """The specification's fraud example: `lifecycle` rolls out as the rules' own tier 3 does."""
    answers = {
        "project_name": "fraud-detection",
        "framework": "xgboost",
        "governance_level": "production",
        "scale_requirements": {"rps": 500, "latency_ms": 150},
    }
    rules_t3 = evaluate(make_requirements(**answers, maturity_level=2))
    assert rules_t3.tier == "T3" and rules_t3.tier_floor is None
    lifecycle = evaluate(make_requirements(**answers), tier_floor="T3")
    assert lifecycle.sizing.rollout_steps == rules_t3.sizing.rollout_steps == [5, 25, 50, 100]
    assert lifecycle.stack.rollout == "progressive"
    assert lifecycle.sizing.canary_percent == 5


def test_flags_are_the_recorded_design() -> None:
    """Every switch the templates read is a field of the design; a tier-3 design without a
    progressive rollout generates none."""
    design = evaluate(
        make_requirements(maturity_level=2, governance_level="production", model_type="ranking")
    )
    assert design.tier == "T3" and design.stack.rollout == "ab"
    assert flags(design) == design.components.model_dump()
    assert not flags(design)["progressive"]  # tier 3 alone no longer implies it
    assert flags(design)["canary"] and design.sizing.canary_percent == 50  # the A/B split
    assert flags(design)["shadow"] == ("shadow-deployment" in design.governance)
    lifecycle = evaluate(make_requirements(), tier_floor="T3")
    assert flags(lifecycle)["progressive"] and lifecycle.stack.rollout == "progressive"
    assert flags(lifecycle)["shadow"] and "shadow-deployment" in lifecycle.governance
    for name in ("model_card", "audit_log", "rollback_runbook"):
        assert flags(lifecycle)[name]


def test_invalid_answer_exits_2_and_writes_nothing(tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["lifecycle", str(tmp_path / "p"), "--defaults", "--set", "framework=caffe"]
    )
    assert result.exit_code == 2
    assert "framework" in result.output
    assert not (tmp_path / "p").exists()


def test_tier_floor_never_lowers_the_rules_tier() -> None:
    assert evaluate(make_requirements(maturity_level=0)).tier == "T3"
    kept = evaluate(make_requirements(maturity_level=0), tier_floor="T2")
    assert (kept.tier, kept.tier_floor) == ("T3", "T2")
    assert "MAT005" in kept.fired_rules
    raised = evaluate(make_requirements(), tier_floor="T3")
    assert (raised.tier, raised.tier_floor) == ("T3", "T3")
    assert {d.rule for d in raised.decisions if d.capability == "tier"} == {"MAT006"}


def test_an_unknown_tier_floor_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="T4"):
        evaluate(make_requirements(), tier_floor="T4")


def test_lifecycle_project_validates_and_updates_at_its_tier(tmp_path: Path) -> None:
    """validate and update regenerate from mlopsctl.yaml and keep the command's tier floor."""
    root = tmp_path / "p"
    result = runner.invoke(app, ["lifecycle", str(root), "--defaults"])
    assert result.exit_code == 0, result.output
    assert _state(root)["tier_floor"] == "T3"
    checked = runner.invoke(app, ["validate", str(root)])
    assert checked.exit_code == 0, checked.output


def test_templates_read_every_component_and_nothing_else() -> None:
    """Each flag a template reads (in a file's content or name) is a field of the design, and
    each field is read by some template."""
    import re

    from mlopsctl.design import Components
    from mlopsctl.render import template_dir

    read: set[str] = set()
    for path in template_dir().rglob("*"):
        text = str(path.relative_to(template_dir()))
        if path.is_file():
            text += path.read_text(encoding="utf-8", errors="replace")
        read |= set(re.findall(r"\bflags\.([a-z0-9_]+)", text))
    assert read == set(Components.model_fields)
