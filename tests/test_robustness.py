"""Generation and output under conditions a demanding user meets: two runs into one destination,
a destination inside mlopsctl itself, a standard output that is closed or full."""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mlopsctl.errors import DestinationError, ExitCode
from mlopsctl.render import generate, template_dir
from mlopsctl.rules.engine import evaluate
from tests.conftest import make_requirements

MLOPSCTL = [sys.executable, "-m", "mlopsctl"]


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def _waiting_for_lock(pid: int) -> bool:
    """Whether process ``pid`` waits for a flock: Linux lists each waiter in /proc/locks as
    ``N: -> FLOCK  ADVISORY  WRITE PID MAJ:MIN:INODE START END`` (another process's wait, a
    test on the other worker, say, is not this one's)."""
    with open("/proc/locks", encoding="ascii") as locks:
        for line in locks:
            fields = line.split()
            if len(fields) > 5 and fields[1:3] == ["->", "FLOCK"] and fields[5] == str(pid):
                return True
    return False


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    out = tmp_path_factory.mktemp("ref") / "p"
    proc = subprocess.run(
        [*MLOPSCTL, "init", str(out), "--defaults"], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr
    return _tree(out)


@pytest.mark.parametrize("kind", ["missing", "empty"])
def test_a_run_that_waited_for_another_into_the_same_destination_writes_nothing(
    kind: str, tmp_path: Path, reference: dict[str, bytes]
) -> None:
    dest = tmp_path / "p"
    if kind == "empty":
        dest.mkdir()
    fd = os.open(tmp_path, os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX)  # as a first run holds it while it generates
    try:
        child = subprocess.Popen(
            [*MLOPSCTL, "init", str(dest), "--defaults"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + 60
        while not _waiting_for_lock(child.pid):
            assert child.poll() is None, "the second run did not wait for the first"
            assert time.monotonic() < deadline, "the second run never waited for the lock"
            time.sleep(0.02)
        # the first run now puts its tree in place
        for rel, data in reference.items():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            (dest / rel).write_bytes(data)
        first = _tree(dest)
    finally:
        os.close(fd)
    _, err = child.communicate(timeout=60)
    assert child.returncode == ExitCode.USAGE, err
    assert "another mlopsctl run generated into" in err
    assert "this run wrote nothing" in err
    assert _tree(dest) == first
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".mlopsctl-")]


@pytest.mark.parametrize("kind", ["missing", "empty", "force"])
def test_two_runs_racing_into_one_destination_leave_one_whole_tree(
    kind: str, tmp_path: Path, reference: dict[str, bytes]
) -> None:
    for attempt in range(3):
        dest = tmp_path / f"p{attempt}"
        if kind != "missing":
            dest.mkdir()
        cmd = [*MLOPSCTL, "init", str(dest), "--defaults", "--set", "project_name=p"]
        if kind == "force":
            cmd.append("--force")
        runs = [
            subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for _ in range(2)
        ]
        codes = sorted(run.wait(timeout=120) for run in runs)
        for run in runs:
            assert run.stdout is not None and run.stderr is not None
            run.stdout.close()
            run.stderr.close()
        assert codes == ([0, 0] if kind == "force" else [0, ExitCode.USAGE])
        assert _tree(dest) == reference


@pytest.mark.parametrize("where", ["inside", "itself", "around"])
def test_generating_into_mlopsctl_s_own_template_is_refused(where: str) -> None:
    own = template_dir()
    dest = {"inside": own / "generated", "itself": own, "around": own.parent}[where]
    before = sorted(p.relative_to(own.parent).as_posix() for p in own.parent.rglob("*"))
    with pytest.raises(DestinationError, match="mlopsctl's own template"):
        generate(evaluate(make_requirements()), dest, force=True)
    after = sorted(p.relative_to(own.parent).as_posix() for p in own.parent.rglob("*"))
    assert after == before


def _shell(command: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    exe = " ".join(MLOPSCTL)
    return subprocess.run(
        ["bash", "-c", command.replace("mlopsctl", exe, 1)],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


@pytest.mark.parametrize(
    ("command", "reason"),
    [
        ("mlopsctl assess --defaults --format json > /dev/full", "No space left on device"),
        ("mlopsctl rules list >&-", "it is closed"),
        ("mlopsctl --help > /dev/full", "No space left on device"),
        ("mlopsctl --help >&-", "it is closed"),
        ("mlopsctl --version > /dev/full", "No space left on device"),
        ("mlopsctl --version >&-", "it is closed"),
    ],
)
def test_a_closed_or_full_standard_output_is_explained(
    command: str, reason: str, tmp_path: Path
) -> None:
    proc = _shell(command, tmp_path)
    assert proc.returncode == ExitCode.OUTPUT, proc.stderr
    assert f"cannot write to standard output: {reason}" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert "internal error" not in proc.stderr


def test_init_with_a_closed_standard_output_says_the_files_are_in_place(tmp_path: Path) -> None:
    proc = _shell("mlopsctl init p --defaults >&-", tmp_path)
    assert proc.returncode == ExitCode.OUTPUT, proc.stderr
    assert "cannot write to standard output: it is closed" in proc.stderr
    assert f"generated files are all in place in {tmp_path / 'p'}" in proc.stderr
    assert (tmp_path / "p" / "mlopsctl.yaml").is_file()


def test_a_description_that_looks_like_a_template_lands_verbatim_and_validates(
    tmp_path: Path,
) -> None:
    description = '{{ evil }} and {% if x %}y{% endif %} "quoted" ünï'
    dest = tmp_path / "p"
    proc = subprocess.run(
        [*MLOPSCTL, "init", str(dest), "--defaults", "--set", f"description={description}"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    design = json.loads((dest / ".mlopsctl" / "design.json").read_text(encoding="utf-8"))
    assert design["requirements"]["description"] == description
    checked = subprocess.run(
        [*MLOPSCTL, "validate", str(dest), "--format", "json"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert checked.returncode == 0, checked.stdout
    # a marker the answers did not put there is still reported, in the same file
    manifest = dest / "k8s" / "inferenceservice.yaml"
    text = manifest.read_text(encoding="utf-8")
    marked = text.replace("  annotations:\n", '  annotations:\n    note: "{{ leftover }}"\n', 1)
    assert marked != text
    manifest.write_text(marked, encoding="utf-8")
    checked = subprocess.run(
        [*MLOPSCTL, "validate", str(dest), "--format", "json"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert checked.returncode == 1
    findings = json.loads(checked.stdout)["findings"]
    assert [(f["check"], f["path"]) for f in findings] == [("MLV002", "k8s/inferenceservice.yaml")]
    assert "{{ leftover }}" in findings[0]["message"]
