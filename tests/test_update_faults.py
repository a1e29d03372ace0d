"""Failures and signals while ``mlopsctl update`` works: the project is left exactly as it was, or,
when the signal came while the update was being written, with the whole update in place, and no
temporary files anywhere.

The answer change creates, updates, merges (the README carries a user edit) and removes files.
"""

from __future__ import annotations

import errno
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import mlopsctl.update as update_module
from mlopsctl.cli._common import _on_sigterm
from mlopsctl.cli.app import app
from mlopsctl.errors import GenerationError, Interrupted
from tests.test_faults import (
    Injector,
    injected,
    interrupted_while_python_starts,
    raising,
    signalling,
)
from tests.test_hostile import snapshot
from tests.test_update import PROJECT, append, commit, git, make_project

CHANGE = ["--set", "governance_level=production", "--set", "kubernetes=false"]


def state(root: Path) -> dict[str, Any]:
    """Every entry with type, mode and bytes, but git's own directory (git status may refresh
    its index)."""
    return {k: v for k, v in snapshot(root).items() if k.split("/")[0] != ".git"}


def leftovers(*dirs: Path) -> list[str]:
    return sorted(p.name for d in dirs for p in d.iterdir() if p.name.startswith(".mlopsctl-"))


def restore(project: Path) -> None:
    git(project, "reset", "-q", "--hard")
    git(project, "clean", "-q", "-fd")


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    project = make_project(tmp_path_factory.mktemp("pristine") / PROJECT)
    append(project / "README.md", "Our own note, kept across updates.")
    commit(project, "Note")
    return project


@pytest.fixture
def private_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The system temporary directory, private to the test, to see what is left in it."""
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    return tmp


@pytest.fixture
def project(pristine: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(pristine, tmp_path / "work" / PROJECT, symlinks=True))


@pytest.fixture(scope="module")
def expected(pristine: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The project after the update, done without faults."""
    project = Path(shutil.copytree(pristine, tmp_path_factory.mktemp("ref") / PROJECT))
    result = CliRunner().invoke(app, ["update", str(project), *CHANGE])
    assert result.exit_code == 0, result.output
    after = state(project)
    before = state(pristine)
    created = set(after) - set(before)
    removed = set(before) - set(after)
    changed = {k for k in set(before) & set(after) if before[k] != after[k]}
    assert created and removed and "README.md" in changed  # every kind of write is exercised
    return after


@pytest.fixture(scope="module")
def writes(pristine: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[int, int]:
    """(write calls before the update is applied, write calls in all)."""
    project = Path(shutil.copytree(pristine, tmp_path_factory.mktemp("count") / PROJECT))
    counter = Injector(10**9, lambda name: None)
    plan = update_module.plan_update(project, sets=CHANGE[1::2])
    with injected(counter):
        update_module.apply_update(plan)
    applying = counter.calls
    restore(project)
    counter = Injector(10**9, lambda name: None)
    with injected(counter):
        result = CliRunner().invoke(app, ["update", str(project), *CHANGE])
    assert result.exit_code == 0, result.output
    return counter.calls - applying, counter.calls


@pytest.fixture
def sigterm_as_in_the_cli() -> Iterator[None]:
    """SIGTERM raises as the command line makes it do (by default it ends the process)."""
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    yield
    signal.signal(signal.SIGTERM, previous)


# ---- Applying: every single write ----


def test_a_failure_at_every_write_of_applying_puts_everything_back(
    project: Path, expected: dict[str, Any], private_tmp: Path
) -> None:
    before = state(project)
    plan = update_module.plan_update(project, sets=CHANGE[1::2])
    n = 0
    while True:
        n += 1
        with injected(Injector(n, raising(errno.ENOSPC))) as inj:
            try:
                update_module.apply_update(plan)
            except GenerationError as exc:
                assert inj.fired
                assert "No space left on device" in exc.message and "put back" in exc.message
            else:
                assert not inj.fired, n
        if not inj.fired:
            break
        assert state(project) == before, n
        assert leftovers(project.parent, private_tmp) == []
    assert n > 50  # the injection reached every write of a real update
    assert state(project) == expected


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
@pytest.mark.usefixtures("sigterm_as_in_the_cli")
def test_a_signal_at_every_write_of_applying_leaves_all_or_nothing(
    sig: int, project: Path, expected: dict[str, Any], private_tmp: Path
) -> None:
    before = state(project)
    plan = update_module.plan_update(project, sets=CHANGE[1::2])
    outcomes = {"untouched": 0, "complete": 0}
    n = 0
    while True:
        n += 1
        with injected(Injector(n, signalling(sig))) as inj:
            try:
                update_module.apply_update(plan)
            except KeyboardInterrupt:  # SIGINT, or SIGTERM as the command line raises it
                assert state(project) == before, n
                outcomes["untouched"] += 1
            except Interrupted as exc:
                assert "the update is in place" in exc.message
                assert state(project) == expected, n
                outcomes["complete"] += 1
        assert leftovers(project.parent, private_tmp) == []
        if not inj.fired:
            break
        restore(project)
    # Applying is one held section: a signal during it is acted on once the update is in place.
    assert outcomes == {"untouched": 0, "complete": n - 1}
    assert n > 50
    assert state(project) == expected


# ---- Working out the update, through the command line ----


def _spread(count: int, upto: int) -> list[int]:
    return sorted({1 + (upto - 1) * i // (count - 1) for i in range(count)})


@pytest.mark.slow
@pytest.mark.parametrize("fault", ["ENOSPC", "EACCES", "SIGINT"])
def test_faults_while_the_update_is_worked_out_write_nothing(
    fault: str,
    project: Path,
    writes: tuple[int, int],
    private_tmp: Path,
) -> None:
    before = state(project)
    planning, _ = writes
    action = signalling(signal.SIGINT) if fault == "SIGINT" else raising(getattr(errno, fault))
    for n in _spread(6, planning):
        with injected(Injector(n, action)) as inj:
            result = CliRunner().invoke(app, ["update", str(project), *CHANGE])
        assert inj.fired
        if result.exit_code == 0:
            # A failed mkdir of a directory that exists is no failure (pathlib's exist_ok).
            assert fault != "SIGINT"
            restore(project)
            continue
        assert result.exit_code in (2, 130), (n, result.output)
        assert "Traceback" not in result.output and "internal error" not in result.output
        assert "nothing was written" in result.output, (n, result.output)
        assert state(project) == before, n
        assert leftovers(project.parent, private_tmp) == []


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signals_at_random_moments_of_a_real_update(
    sig: int, project: Path, expected: dict[str, Any], tmp_path: Path
) -> None:
    before = state(project)
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    cmd = [sys.executable, "-m", "mlopsctl", "update", str(project), *CHANGE]
    env = {**os.environ, "TMPDIR": str(tmp)}
    seen = set()
    for delay in (0.1, 0.3, 0.5, 0.7, 0.9, 1.1, 1.4):
        proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True, env=env)
        time.sleep(delay)
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=120)
        assert leftovers(project.parent, tmp) == []
        after = state(project)
        if proc.returncode == 0:
            assert after == expected
            seen.add("finished")
        elif proc.returncode == 130 and "the update is in place" in err:
            assert after == expected
            seen.add("in place")
        elif interrupted_while_python_starts(proc.returncode, err, sig):
            assert after == before, err
            seen.add("nothing")
        else:
            assert proc.returncode == 130, err
            assert "interrupted: nothing was written" in err
            assert "Traceback" not in err
            assert after == before, err
            seen.add("nothing")
        restore(project)
    assert "nothing" in seen
