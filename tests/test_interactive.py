"""Drive the real questionnaire in a pseudo-terminal, as a person would."""

from __future__ import annotations

import sys
from pathlib import Path

import pexpect
import pytest
import yaml

TIMEOUT = 30


def spawn(*args: str, cwd: Path, full: bool = False) -> pexpect.spawn:
    """mlopsctl at a terminal: a plain one (``TERM=dumb``), or with ``full`` a terminal that
    takes arrow keys; the user's cache is under ``cwd``."""
    env = {
        "TERM": "xterm-256color" if full else "dumb",
        "NO_COLOR": "1",
        "COLUMNS": "200",
        "PATH": "/usr/bin:/bin",
        "HOME": str(cwd),
        "XDG_CACHE_HOME": str(cwd / ".cache"),
        # prompt_toolkit asks the terminal where the cursor is; a pexpect terminal never says
        "PROMPT_TOOLKIT_NO_CPR": "1",
    }
    child = pexpect.spawn(
        sys.executable,
        ["-m", "mlopsctl", *args],
        cwd=str(cwd),
        encoding="utf-8",
        timeout=TIMEOUT,
        dimensions=(50, 200),
        env=env,
    )
    return child


def answer(child: pexpect.spawn, question: str, reply: str) -> None:
    child.expect_exact(question)
    child.expect_exact(">")
    child.sendline(reply)


def test_full_questionnaire_generates(tmp_path: Path) -> None:
    child = spawn("init", "churn-model", cwd=tmp_path)
    # the project name defaults to the directory name
    child.expect_exact("Project name")
    child.expect_exact("[churn-model]")
    child.sendline("")
    # choices are listed, numbered, with the default marked
    child.expect_exact("Model type")
    child.expect_exact("1. classification  (default)")
    child.expect_exact("2. regression")
    child.expect_exact(">")
    child.sendline("2")
    answer(child, "Model framework", "xgboost")
    answer(child, "Deployment target", "")
    answer(child, "Model server", "")
    answer(child, "Peak requests per second", "300")
    answer(child, "Latency SLA at p95 (ms)", "120")
    answer(child, "Data volume per run (GB)", "")
    answer(child, "Concurrent users", "")
    # a wrong answer is explained and asked again
    child.expect_exact("Governance level")
    child.expect_exact(">")
    child.sendline("9")
    child.expect_exact("choose a number from 1 to 3")
    child.sendline("production")
    answer(child, "Existing MLOps platforms", "mlflow, 8")
    answer(child, "Model size (GB)", "")
    answer(child, "Team size (people)", "7")
    answer(child, "Kubernetes cluster available?", "y")
    answer(child, "Cloud provider", "")
    answer(child, "GPUs available for serving?", "")
    answer(child, "MLOps maturity level", "")
    answer(child, "Regulations that apply", "gdpr")
    answer(child, "Is explainability mandated?", "n")
    answer(child, "CI platform", "")
    answer(child, "Short description", "")
    # a summary, then a confirmation before anything is written
    child.expect_exact("Summary for churn-model")
    child.expect_exact("Stack")
    child.expect_exact("Generate the repository in churn-model?")
    assert not (tmp_path / "churn-model").exists()
    child.sendline("y")
    child.expect_exact("generated")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    answers = yaml.safe_load((tmp_path / "churn-model" / "mlopsctl.yaml").read_text())
    assert answers["project_name"] == "churn-model"
    assert answers["model_type"] == "regression"
    assert answers["framework"] == "xgboost"
    assert answers["governance_level"] == "production"
    assert answers["existing_stack"] == ["mlflow", "wandb"]
    assert answers["team_size"] == 7
    assert answers["regulations"] == ["gdpr"]
    assert answers["scale_requirements"] == {"rps": 300, "latency_ms": 120}


def test_declining_confirmation_writes_nothing(tmp_path: Path) -> None:
    child = spawn("init", "demo", "--set", "project_name=demo", cwd=tmp_path)
    for _ in range(30):
        index = child.expect([r"\] $", r"Generate the repository in demo\?"])
        if index == 1:
            break
        child.sendline("")
    else:
        pytest.fail("never reached the confirmation")
    child.sendline("n")
    child.expect_exact("cancelled: nothing was written")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    assert not (tmp_path / "demo").exists()


def test_answers_given_are_not_asked_again(tmp_path: Path) -> None:
    child = spawn(
        "init", "x", "--set", "project_name=preset", "--set", "framework=lightgbm", cwd=tmp_path
    )
    child.expect_exact("Model type")
    seen = child.before + child.after
    child.sendline("")
    for _ in range(30):
        index = child.expect([r"\] $", r"Generate the repository in x\?"])
        seen += child.before
        if index == 1:
            break
        child.sendline("")
    child.sendline("n")
    child.expect(pexpect.EOF)
    assert "Project name" not in seen
    assert "Model framework" not in seen


def test_no_terminal_never_prompts(tmp_path: Path) -> None:
    import subprocess

    result = subprocess.run(
        [sys.executable, "-m", "mlopsctl", "init", "x"],
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert result.returncode == 2
    assert "missing required answers" in result.stderr
    assert "Project name" not in result.stdout
    assert not (tmp_path / "x").exists()
