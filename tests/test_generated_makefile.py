"""The generated Makefile's targets depend on what they need: on a fresh project `make train`
installs first, and a target that needs a registered model says what to run instead of failing
inside MLflow. `make -n` shows what make would run without installing anything."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from mlopsctl.render import flags, generate
from tests.generated_cases import CASES

INSTALL = "-m pip install --quiet -r requirements.txt"


def _make(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "MAKE"))}
    return subprocess.run(
        ["make", "--no-print-directory", *args],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    design = CASES["lifecycle-production-xgboost-gdpr"].design()
    assert flags(design)["kubeflow"], "the case has the pipeline target"
    root = tmp_path_factory.mktemp("makefile") / "p"
    generate(design, root)
    return root


@pytest.mark.parametrize("target", ["train", "drift", "test", "pipeline"])
def test_python_targets_install_first_on_a_fresh_project(project: Path, target: str) -> None:
    run = _make(project, "-n", target)
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    installs = [i for i, line in enumerate(lines) if INSTALL in line]
    assert installs, run.stdout
    assert installs[0] < len(lines) - 1  # the install comes before the target's own command
    assert not (project / ".venv").exists()


def test_an_installed_project_runs_the_target_alone(project: Path, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    venv.mkdir()
    (venv / ".installed").touch()
    os.utime(project / "requirements.txt", (1, 1))  # older than the stamp
    run = _make(project, "-n", "train", f"VENV={venv}")
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines() == [f"{venv}/bin/python src/train.py"]
    # An edited requirements.txt installs again.
    (project / "requirements.txt").touch()
    run = _make(project, "-n", "train", f"VENV={venv}")
    assert INSTALL in run.stdout


@pytest.mark.parametrize("target", ["serve", "evaluate"])
def test_model_targets_say_to_train_first(project: Path, tmp_path: Path, target: str) -> None:
    venv = tmp_path / "venv"
    run = _make(project, target, f"VENV={venv}")
    assert run.returncode == 2
    assert 'No model is registered in the local store yet: run "make train" first.' in run.stderr
    assert not venv.exists()  # said before installing anything
    assert not (project / "mlruns.db").exists()


def test_validate_says_how_to_get_mlopsctl(project: Path, tmp_path: Path) -> None:
    make = shutil.which("make")
    assert make
    env = {"PATH": str(tmp_path), "HOME": str(tmp_path)}  # no mlopsctl on this PATH
    run = subprocess.run(
        [make, "--no-print-directory", "validate"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 2
    assert "mlopsctl is not on PATH" in run.stderr
    # mlopsctl is on no public index: the message names the source to set, never a pip pin.
    assert "MLOPSCTL_SPEC" in run.stderr and "sh ci/install-mlopsctl.sh" in run.stderr
    assert "mlopsctl==" not in run.stderr


def test_validate_runs_the_mlopsctl_the_install_script_installed(
    project: Path, tmp_path: Path
) -> None:
    """ci/install-mlopsctl.sh installs into .venv/mlopsctl; `make validate` runs that one even
    when no mlopsctl is on PATH."""
    venv_existed = (project / ".venv").exists()
    tool = project / ".venv" / "mlopsctl" / "bin" / "mlopsctl"
    tool.parent.mkdir(parents=True)
    tool.write_text('#!/bin/sh\necho "tool mlopsctl $*"\n')
    tool.chmod(0o755)
    try:
        env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
        run = subprocess.run(
            ["make", "--no-print-directory", "validate"],
            cwd=project,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        shutil.rmtree(project / ".venv" / ("mlopsctl" if venv_existed else ""))
    assert run.returncode == 0, run.stderr
    assert "tool mlopsctl validate ." in run.stdout
