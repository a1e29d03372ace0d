"""`mlopsctl design` and `mlopsctl lifecycle`: the command sets the tier floor of the repository."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from mlopsctl.cli.app import app
from mlopsctl.render import at_tier
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
    assert design["tier"] == "T3"
    rules_tier = evaluate(make_requirements(project_name="p", governance_level="production")).tier
    (command,) = [d for d in design["decisions"] if d["rule"] == "COMMAND"]
    assert command["choice"] == "T3"
    assert rules_tier in {"T1", "T2", "T3"}


def test_invalid_answer_exits_2_and_writes_nothing(tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["lifecycle", str(tmp_path / "p"), "--defaults", "--set", "framework=caffe"]
    )
    assert result.exit_code == 2
    assert "framework" in result.output
    assert not (tmp_path / "p").exists()


def test_tier_floor_never_lowers_the_rules_tier() -> None:
    design = evaluate(make_requirements(maturity_level=0))
    assert design.tier == "T3"
    kept = at_tier(design, "T2")
    assert kept.tier == "T3"
    assert kept.decisions[-1].rule == "COMMAND" and kept.decisions[-1].choice == "T2"
    raised = at_tier(evaluate(make_requirements()), "T3")
    assert raised.tier == "T3"
    assert raised.decisions[-1].rule == "COMMAND"


def test_lifecycle_project_validates_and_updates_at_its_tier(tmp_path: Path) -> None:
    """validate and update regenerate from mlopsctl.yaml and keep the command's tier floor."""
    root = tmp_path / "p"
    result = runner.invoke(app, ["lifecycle", str(root), "--defaults"])
    assert result.exit_code == 0, result.output
    assert _state(root)["tier_floor"] == "T3"
    checked = runner.invoke(app, ["validate", str(root)])
    assert checked.exit_code == 0, checked.output
