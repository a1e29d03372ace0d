"""The top-level Makefile as the README's set-up uses it: each step says what it does (pip runs
quietly, so without that ``make demo`` is silent for a minute) and the end says where the command
is."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
VENV = Path(sys.prefix)  # the environment running the tests holds mlopsctl, as make install does


def make(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["make", "--no-print-directory", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )


def test_install_announces_each_step_before_it_runs(tmp_path: Path) -> None:
    # -n prints the recipe without running it; -B as on a fresh clone (no environment yet)
    proc = make("-n", "-B", "install", f"VENV={tmp_path / 'venv'}")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    steps = [i for i, line in enumerate(lines) if line.startswith("echo ")]
    work = [i for i, line in enumerate(lines) if " -m venv " in line or " -m pip " in line]
    assert len(work) == 3
    for i in work:  # the line before each slow command says what it does
        assert i - 1 in steps, lines[i - 1]
    assert all("--quiet" in lines[i] for i in work if " pip " in lines[i])
    assert "installing mlopsctl" in proc.stdout


def test_demo_says_each_step_and_where_the_command_is(tmp_path: Path) -> None:
    demo = tmp_path / "demo"
    # -o: the environment counts as installed whatever the age of pyproject.toml
    proc = make("-o", str(VENV / ".installed"), "demo", f"VENV={VENV}", f"DEMO={demo}")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    steps = [line for line in out.splitlines() if line.startswith("==> ")]
    assert steps[0] == f"==> generating {demo}/ with the embedded defaults"
    assert steps[1] == f"==> validating {demo}/"
    assert steps[2] == (
        f"==> done. mlopsctl is {VENV}/bin/mlopsctl; to put it on PATH: . {VENV}/bin/activate"
    )
    assert (demo / "mlopsctl.yaml").is_file()
    assert "ok:" in out  # validate's verdict on the demo
