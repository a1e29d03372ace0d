"""``--set`` through the command line: lists and choices as users type them, and a typo refused
with the nearest spelling before any question is asked."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pexpect
from typer.testing import CliRunner

from mlopsctl.cli.app import app

runner = CliRunner()


def test_lists_and_any_case_reach_the_design() -> None:
    result = runner.invoke(
        app,
        [
            "assess",
            "--defaults",
            "--format",
            "json",
            "--set",
            "framework=SKLearn",
            "--set",
            "deployment_target=Batch",
            "--set",
            "existing_stack=mlflow, Kubeflow",
            "--set",
            "regulations=gdpr",
            "--set",
            "description=scores, ranks",
        ],
    )
    assert result.exit_code == 0, result.stderr
    req = json.loads(result.stdout)["requirements"]
    assert req["framework"] == "sklearn"
    assert req["deployment_target"] == "batch"
    assert req["existing_stack"] == ["kubeflow", "mlflow"]
    assert req["regulations"] == ["gdpr"]
    assert req["description"] == "scores, ranks"


def test_typos_exit_2_with_did_you_mean_and_nothing_written(tmp_path: Path) -> None:
    dest = tmp_path / "p"
    result = runner.invoke(
        app,
        ["init", str(dest), "--defaults", "--set", "rps=100", "--set", "framework=xgbost"],
    )
    assert result.exit_code == 2
    assert "--set: rps: unknown key; did you mean scale_requirements.rps?" in result.stderr
    assert "--set: framework: 'xgbost' is not allowed; did you mean xgboost?" in result.stderr
    assert not dest.exists()


def test_a_bad_set_is_refused_before_the_first_question(tmp_path: Path) -> None:
    child = pexpect.spawn(
        sys.executable,
        ["-m", "mlopsctl", "init", "p", "--set", "rps=100"],
        cwd=str(tmp_path),
        encoding="utf-8",
        timeout=60,
        dimensions=(40, 160),
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "TERM": "dumb", "NO_COLOR": "1"},
    )
    out = str(child.read())
    child.close()
    assert child.exitstatus == 2, out
    assert "did you mean scale_requirements.rps?" in out
    assert "Project name" not in out  # no question was asked
    assert not (tmp_path / "p").exists()
