"""Hostile files under ``mlopsctl validate``: every reader is bounded.

Each case is a small repository with one crafted file and its expected outcome: exit 1 with an
MLV001 finding naming the file and the limit (or a note for files that are not YAML/JSON), never
exit 70, never a hang or memory exhaustion. The CLI runs in a subprocess with a time limit and
an address-space limit, so a regression fails instead of hanging the suite.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from mlopsctl.checks._repo import MAX_DEPTH, MAX_FILE_BYTES, MAX_VALUES

TIMEOUT_S = 30
MEMORY_BYTES = 1536 * 1024 * 1024


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_BYTES, MEMORY_BYTES))


def _validate(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mlopsctl", "validate", str(root), "--format", "json"],
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
        preexec_fn=_limit_memory,
        env={**os.environ, "MLOPSCTL_NO_CACHE": "1"},
    )


def _laughs(levels: int) -> str:
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, levels):
        refs = ", ".join([f"*a{i - 1}"] * 9)
        lines.append(f"a{i}: &a{i} [{refs}]")
    return "\n".join(lines) + "\n"


def _merge_bomb(levels: int) -> str:
    lines = ["m0: &m0 {k0: 1, k1: 2, k2: 3, k3: 4, k4: 5, k5: 6, k6: 7, k7: 8}"]
    for i in range(1, levels):
        refs = ", ".join([f"*m{i - 1}"] * 9)
        lines.append(f"m{i}: &m{i} {{<<: [{refs}], own{i}: x}}")
    return "\n".join(lines) + "\n"


def _write(name: str, text: str) -> Callable[[Path], None]:
    def make(root: Path) -> None:
        (root / name).write_text(text, encoding="utf-8")

    return make


def _symlink(name: str, target: str) -> Callable[[Path], None]:
    def make(root: Path) -> None:
        (root / name).symlink_to(target)

    return make


def _fifo(name: str) -> Callable[[Path], None]:
    def make(root: Path) -> None:
        os.mkfifo(root / name)

    return make


def _oversized(root: Path) -> None:
    with open(root / "big.json", "wb") as out:
        out.write(b'{"a": "' + b"x" * MAX_FILE_BYTES + b'"}')


DEEP = 5000
# (case id, how to make the file, file the finding names, words the message contains)
CASES: list[tuple[str, Callable[[Path], None], str, str]] = [
    ("billion-laughs", _write("bomb.yaml", _laughs(9)), "bomb.yaml", "aliases expanded"),
    ("merge-key-bomb", _write("merge.yaml", _merge_bomb(9)), "merge.yaml", "aliases expanded"),
    ("recursive-alias", _write("cycle.yaml", "a: &a [*a]\n"), "cycle.yaml", "a cycle"),
    ("recursive-merge", _write("m.yaml", "a: &a {<<: *a}\n"), "m.yaml", "a cycle"),
    ("deep-yaml", _write("deep.yaml", "a: " + "[" * 980 + "]" * 980 + "\n"), "deep.yaml", "levels"),
    ("deep-json", _write("deep.json", "[" * DEEP + "]" * DEEP), "deep.json", "levels"),
    (
        "deep-json-under-the-decoder-limit",
        _write(
            "d.json",
            '{"kind": "Deployment", "apiVersion": "apps/v1", "spec": '
            + "[" * 500
            + '"{{ x }}"'
            + "]" * 500
            + "}",
        ),
        "d.json",
        "levels",
    ),
    ("int-5000-digits-yaml", _write("int.yaml", "a: " + "1" * 5000 + "\n"), "int.yaml", "integer"),
    (
        "int-5000-digits-json",
        _write("int.json", '{"a": ' + "1" * 5000 + "}"),
        "int.json",
        "integer",
    ),
    ("hex-int-yaml", _write("hex.yaml", "a: 0x" + "f" * 5000 + "\n"), "hex.yaml", "integer"),
    (
        "base-60-int-yaml",
        _write("sexa.yaml", "a: " + "1:" * 200_000 + "1\n"),
        "sexa.yaml",
        "integer",
    ),
    ("dev-zero-symlink", _symlink("zero.yaml", "/dev/zero"), "zero.yaml", "outside the repository"),
    ("symlink-outside", _symlink("passwd.yaml", "/etc/passwd"), "passwd.yaml", "outside"),
    ("fifo", _fifo("pipe.yaml"), "pipe.yaml", "FIFO"),
    ("oversized-file", _oversized, "big.json", "MiB"),
]


@pytest.mark.parametrize(
    ("make", "rel", "words"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_hostile_file_gets_a_finding(
    make: Callable[[Path], None], rel: str, words: str, tmp_path: Path
) -> None:
    root = tmp_path / "repo"
    root.mkdir()
    (root / "ok.yaml").write_text("a: 1\n", encoding="utf-8")
    make(root)
    proc = _validate(root)
    assert proc.returncode == 1, proc.stderr
    report = json.loads(proc.stdout)
    found = [f for f in report["findings"] if f["check"] == "MLV001" and f["path"] == rel]
    assert found, report["findings"]
    assert words in found[0]["message"], found[0]["message"]
    assert not [f for f in report["findings"] if f["path"] == "ok.yaml"]


@pytest.mark.parametrize(
    "make",
    [_symlink("notes.md", "/dev/zero"), _symlink("notes.md", "/etc/passwd"), _fifo("notes.md")],
    ids=["dev-zero", "outside", "fifo"],
)
def test_other_files_not_read_get_a_note(make: Callable[[Path], None], tmp_path: Path) -> None:
    root = tmp_path / "repo"
    root.mkdir()
    (root / "ok.yaml").write_text("a: 1\n", encoding="utf-8")
    make(root)
    proc = _validate(root)
    assert proc.returncode == 0, proc.stderr
    notes = json.loads(proc.stdout)["notes"]
    assert any(n["check"] == "MLV001" and "notes.md" in n["message"] for n in notes), notes


def test_promtool_rule_file_outside_the_repository_is_not_read(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    root.mkdir()
    (root / "alerts.test.yaml").write_text("rule_files: [/dev/zero]\ntests: []\n", "utf-8")
    proc = _validate(root)
    assert proc.returncode in {0, 1}, proc.stderr
    report = json.loads(proc.stdout)
    if any(
        n["check"] == "MLV105" and "promtool is not on PATH" in n["message"]
        for n in report["notes"]
    ):
        return  # promtool absent: nothing reads the rule files
    assert any(f["check"] == "MLV105" and "/dev/zero" in f["message"] for f in report["findings"])


def test_many_markers_stay_linear(tmp_path: Path) -> None:
    """Line numbers of many findings are looked up without rescanning the file each time."""
    root = tmp_path / "repo"
    root.mkdir()
    (root / "a.md").write_text("{{ x }}\n" * 50_000 + "<<<<<<< a\n=======\n>>>>>>> b\n" * 20_000)
    (root / "b.txt").write_text("{%a " * 200_000)
    report = _validate(root)
    assert report.returncode == 1, report.stderr


def test_limits_are_documented() -> None:
    docs = (Path(__file__).parent.parent / "docs" / "checks.md").read_text("utf-8")
    assert f"{MAX_DEPTH} levels" in docs and f"{MAX_VALUES:,}" in docs
    assert "outside the repository" in docs and "FIFO" in docs
