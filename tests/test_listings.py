"""``rules list`` and ``checks list`` never cut an id or a name, piped or at a terminal of any
width: piped, one tab-separated line per entry; at a terminal, a table or stacked rows."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pexpect
import pytest

from mlopsctl.checks import catalog
from mlopsctl.rules.describe import all_rules


def _entries(command: str) -> list[tuple[str, str, str]]:
    if command == "rules":
        return [(r.id, r.name, r.category) for r in all_rules()]
    return [(c.id, c.name, c.category) for c in catalog()]


def _env(columns: int) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "COLUMNS": str(columns),
        "TERM": "xterm-256color",
        "NO_COLOR": "1",
    }


@pytest.mark.parametrize("columns", [80, 40])
@pytest.mark.parametrize("command", ["rules", "checks"])
def test_piped_list_is_one_tab_separated_line_per_entry(
    command: str, columns: int, tmp_path: Path
) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "mlopsctl", command, "list"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=_env(columns),
        check=True,
        timeout=60,
    )
    rows = [line.split("\t") for line in proc.stdout.splitlines()]
    assert all(len(row) == 4 for row in rows), proc.stdout[:400]
    assert [tuple(row[:3]) for row in rows] == _entries(command)
    assert "…" not in proc.stdout
    assert all(row[3].strip() for row in rows)  # the summary or title, whole


@pytest.mark.parametrize("columns", [160, 80, 40])
@pytest.mark.parametrize("command", ["rules", "checks"])
def test_list_at_a_terminal_keeps_every_id_and_name_whole(
    command: str, columns: int, tmp_path: Path
) -> None:
    child = pexpect.spawn(
        sys.executable,
        ["-m", "mlopsctl", command, "list"],
        cwd=str(tmp_path),
        encoding="utf-8",
        timeout=60,
        dimensions=(50, columns),
        env={k: v for k, v in _env(columns).items() if k != "COLUMNS"},
    )
    out = str(child.read())
    child.close()
    assert child.exitstatus == 0, out[-400:]
    assert "…" not in out
    lines = out.splitlines()
    for entry_id, name, category in _entries(command):
        # the id, name and category of an entry are whole, on one line of their own
        assert any(
            line.split()[:1] == [entry_id] and name in line.split() and category in line
            for line in lines
            if line.split()
        ), (entry_id, name)
