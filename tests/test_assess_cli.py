"""``mlopsctl assess`` and ``mlopsctl rules`` through Typer's CliRunner, one test per exit code."""

from __future__ import annotations

import errno
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from typer.testing import CliRunner

from mlopsctl.cli.app import app
from mlopsctl.rules import engine
from mlopsctl.rules.model import CATALOG_DIR, load_catalog

SCHEMA = json.loads(
    (Path(__file__).parents[1] / "docs" / "schemas" / "design.schema.json").read_text()
)


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def workdir(tmp_path: Path) -> Iterator[Path]:
    old = Path.cwd()
    os.chdir(tmp_path)
    try:
        yield tmp_path
    finally:
        os.chdir(old)


def _files(path: Path) -> list[str]:
    return sorted(str(p.relative_to(path)) for p in path.rglob("*"))


def test_json_output_is_valid_against_the_published_schema(
    runner: CliRunner, workdir: Path
) -> None:
    result = runner.invoke(app, ["assess", "--defaults", "--format", "json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    jsonschema.Draft202012Validator(SCHEMA).validate(data)
    assert data["schema_version"] == 1
    assert data["tier"] == "T2"
    assert set(data["stack"]) >= {
        "tracking",
        "registry",
        "serving",
        "deployment_pattern",
        "rollout",
        "orchestration",
        "monitoring",
        "drift_detection",
        "retraining",
        "model_optimization",
        "autoscaling",
    }
    assert set(data["thresholds"]) >= {
        "psi_monitor",
        "psi_investigate",
        "psi_retrain",
        "ks_pvalue",
        "accuracy_drop_investigate",
        "accuracy_drop_retrain",
        "latency_p95_alert_ms",
        "error_rate_alert",
        "error_rate_page",
    }
    assert {"rule", "capability", "choice", "reason", "references"} <= set(data["decisions"][0])
    assert [a["priority"] for a in data["alerts"]] == sorted(a["priority"] for a in data["alerts"])
    assert _files(workdir) == [], "assess writes nothing by default"


def test_yaml_output_matches_json(runner: CliRunner, workdir: Path) -> None:
    args = ["assess", "--defaults", "--set", "governance_level=production"]
    as_json = json.loads(runner.invoke(app, [*args, "--format", "json"]).stdout)
    result = runner.invoke(app, [*args, "--format", "yaml"])
    assert result.exit_code == 0
    assert yaml.safe_load(result.stdout) == as_json
    assert as_json["stack"]["rollout"] == "canary"


def test_text_report_explains_the_decision(runner: CliRunner, workdir: Path) -> None:
    result = runner.invoke(app, ["assess", "--defaults", "--set", "existing_stack=[sagemaker]"])
    assert result.exit_code == 0, result.output
    out = result.stdout
    # No measurement: the threshold only a measured capacity sets is shown as absent.
    assert "none: not measured" in out
    for part in (
        "Recommended stack",
        "Why",
        "sources:",
        "Rejected alternatives",
        "Sizing",
        "Assumptions",
        "Alerts",
        "Quick-start checklist",
        "Minimal configuration",
        "tracking URI",
        "artifact store",
        "deploy",
        "EXS004",
    ):
        assert part in out, part
    assert "1.5 x latency_target_ms" in out  # formulas are shown


def test_output_file_is_written(runner: CliRunner, workdir: Path) -> None:
    result = runner.invoke(app, ["assess", "--defaults", "-f", "json", "-o", "design.json"])
    assert result.exit_code == 0
    assert result.stdout == ""
    data = json.loads((workdir / "design.json").read_text())
    jsonschema.Draft202012Validator(SCHEMA).validate(data)
    assert _files(workdir) == ["design.json"]


def test_output_replaces_what_is_there_by_the_mode_rule(runner: CliRunner, workdir: Path) -> None:
    args = ["assess", "--defaults", "-f", "json", "-o"]
    assert runner.invoke(app, [*args, "new.json"]).exit_code == 0
    assert (workdir / "new.json").stat().st_mode & 0o777 == 0o644
    (workdir / "tool.json").write_text("old")
    (workdir / "tool.json").chmod(0o700)
    assert runner.invoke(app, [*args, "tool.json"]).exit_code == 0
    assert (workdir / "tool.json").stat().st_mode & 0o777 == 0o755
    assert json.loads((workdir / "tool.json").read_text())["stack"]
    (workdir / "kept.txt").write_text("not the report")
    (workdir / "link.json").symlink_to("kept.txt")
    assert runner.invoke(app, [*args, "link.json"]).exit_code == 0
    assert not (workdir / "link.json").is_symlink(), "the link is replaced, not written through"
    assert (workdir / "kept.txt").read_text() == "not the report"
    assert (workdir / "link.json").stat().st_mode & 0o777 == 0o644
    assert _files(workdir) == ["kept.txt", "link.json", "new.json", "tool.json"]


def test_a_failed_output_write_keeps_the_original_and_is_explained(
    runner: CliRunner, workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (workdir / "design.json").write_text("the original")
    real = os.replace

    def full_disk(src: Any, dst: Any) -> None:
        aside = "old" in (Path(src).parent.name, Path(dst).parent.name)  # the original kept
        if Path(dst).name == "design.json" and not aside:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real(src, dst)

    monkeypatch.setattr(os, "replace", full_disk)
    result = runner.invoke(app, ["assess", "--defaults", "-f", "json", "-o", "design.json"])
    assert result.exit_code == 2, result.output
    assert "design.json" in result.stderr and "free some disk space" in result.stderr
    assert (workdir / "design.json").read_text() == "the original"
    assert _files(workdir) == ["design.json"]


def test_answers_from_a_project_directory(runner: CliRunner, workdir: Path) -> None:
    project = workdir / "proj"
    project.mkdir()
    (project / "mlopsctl.yaml").write_text(
        "project_name: fraud\nmodel_type: classification\nframework: xgboost\n"
        "deployment_target: batch\nscale_requirements:\n  data_volume_gb: 500\n"
        "governance_level: staging\n"
    )
    result = runner.invoke(app, ["assess", "--project", str(project), "-f", "json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["requirements"]["project_name"] == "fraud"
    assert data["stack"]["batch_engine"] == "spark"
    # run inside the project: its mlopsctl.yaml is read without flags, --set applies on top
    os.chdir(project)
    result = runner.invoke(app, ["assess", "-f", "json", "--set", "deployment_target=online"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["stack"]["serving"] == "kserve"


def test_invalid_answers_exit_2(runner: CliRunner, workdir: Path) -> None:
    result = runner.invoke(app, ["assess", "--defaults", "--set", "team_size=many"])
    assert result.exit_code == 2
    assert "team_size" in result.stderr
    result = runner.invoke(app, ["assess", "--set", "project_name=x"])
    assert result.exit_code == 2
    assert "missing required answers" in result.stderr
    result = runner.invoke(app, ["assess", "--project", str(workdir)])
    assert result.exit_code == 2
    assert "mlopsctl.yaml" in result.stderr


def test_abort_exits_4_naming_the_rule_and_the_fix(runner: CliRunner, workdir: Path) -> None:
    result = runner.invoke(
        app,
        [
            "assess",
            "--defaults",
            "--set",
            "framework=keras",
            "--set",
            "model_server=torchserve",
            "-f",
            "json",
            "-o",
            "design.json",
        ],
    )
    assert result.exit_code == 4
    assert "ABT001" in result.stderr
    assert "hint:" in result.stderr and "model_server" in result.stderr
    assert result.stdout == ""
    assert _files(workdir) == [], "nothing is written on abort"


def test_conflicts_exit_1_under_strict(
    runner: CliRunner,
    workdir: Path,
    tmp_path_factory: pytest.TempPathFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    catalog_dir = tmp_path_factory.mktemp("catalog")
    for path in CATALOG_DIR.glob("*.yaml"):
        (catalog_dir / path.name).write_bytes(path.read_bytes())
    data = yaml.safe_load((CATALOG_DIR / "SRV001-kserve-on-kubernetes.yaml").read_text())
    data.update(
        id="SRV099", name="seldon-too", then={"set": {"serving": "seldon"}}, alternatives=[]
    )
    (catalog_dir / "SRV099-seldon-too.yaml").write_text(yaml.safe_dump(data))
    conflicting = load_catalog(catalog_dir)
    monkeypatch.setattr(engine, "load_catalog", lambda: conflicting)

    result = runner.invoke(app, ["assess", "--defaults", "-f", "json"])
    assert result.exit_code == 0
    assert json.loads(result.stdout)["conflicts"][0]["capability"] == "serving"
    result = runner.invoke(app, ["assess", "--defaults", "--strict"])
    assert result.exit_code == 1
    assert "SRV001" in result.stderr and "SRV099" in result.stderr


def test_rules_list(runner: CliRunner) -> None:
    result = runner.invoke(app, ["rules", "list"])
    assert result.exit_code == 0
    for rule in load_catalog():
        assert rule.id in result.stdout
    result = runner.invoke(app, ["rules", "list", "--category", "abort", "--format", "json"])
    assert result.exit_code == 0
    ids = [r["id"] for r in json.loads(result.stdout)]
    assert ids and all(i.startswith("ABT") for i in ids)
    result = runner.invoke(app, ["rules", "list", "--category", "nope"])
    assert result.exit_code == 2


def test_rules_explain(runner: CliRunner) -> None:
    result = runner.invoke(app, ["rules", "explain", "srv004"])
    assert result.exit_code == 0
    out = result.stdout
    for section in (
        "# SRV004 high-rps-enables-autoscaling",
        "## When it fires",
        "scale_requirements.rps > 1000",
        "## What it decides",
        "`autoscaling` = `hpa`",
        "## Why",
        "## Remediation",
        "## References",
        "accessed",
        "## Examples",
        "Does not fire",
    ):
        assert section in out, section
    by_name = runner.invoke(app, ["rules", "explain", "high-rps-enables-autoscaling"])
    assert by_name.stdout == out
    result = runner.invoke(app, ["rules", "explain", "XYZ999"])
    assert result.exit_code == 2
    assert "rules list" in result.stderr


def test_rules_list_and_explain_show_the_sizing_rules(runner: CliRunner) -> None:
    from mlopsctl.rules.model import load_sizing_rules

    result = runner.invoke(app, ["rules", "list", "--category", "sizing", "--format", "json"])
    assert result.exit_code == 0
    listed = json.loads(result.stdout)
    assert [r["id"] for r in listed] == [r.id for r in load_sizing_rules()]
    assert all(r["formula"] and r["references"] for r in listed)
    result = runner.invoke(app, ["rules", "explain", "SIZ005"])
    assert result.exit_code == 0
    for section in (
        "# SIZ005 replicas-for-the-peak",
        "Decides: sizing.max_replicas",
        "## Formula",
        "## Why",
        "## Remediation",
        "## References",
        "accessed",
    ):
        assert section in result.stdout, section
    assert runner.invoke(app, ["rules", "explain", "replicas-for-the-peak"]).stdout == result.stdout


def test_text_report_to_a_file_has_no_colour_codes(runner: CliRunner, workdir: Path) -> None:
    result = runner.invoke(app, ["assess", "--defaults", "-o", "report.txt"])
    assert result.exit_code == 0
    text = (workdir / "report.txt").read_text()
    assert "Recommended stack for mlops-demo" in text
    assert "\x1b[" not in text


def test_schema_rejects_a_broken_design(runner: CliRunner, workdir: Path) -> None:
    data = json.loads(runner.invoke(app, ["assess", "--defaults", "-f", "json"]).stdout)
    validator = jsonschema.Draft202012Validator(SCHEMA)
    for broken in (
        {k: v for k, v in data.items() if k != "stack"},
        {**data, "schema_version": 2},
        {**data, "tier": "T4"},
        {**data, "thresholds": {**data["thresholds"], "psi_retrain": "high"}},
    ):
        assert not validator.is_valid(broken)


def test_help_loads_neither_the_catalog_nor_the_engine() -> None:
    import subprocess
    import sys

    code = (
        "import sys, mlopsctl.cli.app; "
        "print(sorted(m for m in sys.modules if m.startswith(('mlopsctl.rules', 'copier', "
        "'mlopsctl.sizing', 'jsonschema'))))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True
    ).stdout
    assert out.strip() == "[]"
