"""Colour at a real terminal: ``NO_COLOR`` (any non-empty value) means no escape sequence at all,
``--color``/``--no-color`` win over the environment, ``FORCE_COLOR`` colours a pipe and
``TERM=dumb`` gets no colour."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pexpect
import pytest

FIXTURES = Path(__file__).parent / "fixtures" / "checks"
BAD = str(FIXTURES / "MLV201" / "fail")  # a finding, so validate prints coloured text
ESC = "\x1b"


def _env(**extra: str) -> dict[str, str]:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "TERM": "xterm-256color"}
    env.update(extra)
    return env


def at_terminal(*args: str, cwd: Path, **env: str) -> str:
    """Everything ``mlopsctl ARGS`` writes to a pseudo-terminal (standard output and error)."""
    child = pexpect.spawn(
        sys.executable,
        ["-m", "mlopsctl", *args],
        cwd=str(cwd),
        encoding="utf-8",
        timeout=120,
        dimensions=(40, 120),
        env=_env(**env),
    )
    out = child.read()
    child.close()
    return str(out)


TERMINAL_COMMANDS = [
    ("validate", BAD),
    ("rules", "list"),
    ("checks", "list"),
    ("assess", "--defaults"),
    ("init", "p", "--defaults", "--yes"),
    ("doctor",),
]


@pytest.mark.parametrize("args", TERMINAL_COMMANDS, ids=lambda a: "-".join(a[:2]).split("/")[0])
def test_no_color_means_no_escape_sequence_at_a_terminal(
    args: tuple[str, ...], tmp_path: Path
) -> None:
    coloured = at_terminal(*args, cwd=tmp_path)
    if args[0] == "init":  # the second run would find a non-empty destination
        args = ("init", "q", *args[2:])
    plain = at_terminal(*args, cwd=tmp_path, NO_COLOR="1")
    assert ESC in coloured  # the terminal does get colour or bold without NO_COLOR
    assert ESC not in plain, plain[:400]
    assert plain.strip()


def test_no_color_beats_force_color_and_an_empty_one_is_unset(tmp_path: Path) -> None:
    assert ESC not in at_terminal("validate", BAD, cwd=tmp_path, NO_COLOR="1", FORCE_COLOR="1")
    assert ESC in at_terminal("validate", BAD, cwd=tmp_path, NO_COLOR="")


def test_the_flags_win_over_the_environment(tmp_path: Path) -> None:
    assert ESC in at_terminal("validate", BAD, "--color", cwd=tmp_path, NO_COLOR="1")
    assert ESC not in at_terminal("validate", BAD, "--no-color", cwd=tmp_path)


def test_dumb_terminal_gets_no_colour_unless_asked(tmp_path: Path) -> None:
    assert "\x1b[3" not in at_terminal("validate", BAD, cwd=tmp_path, TERM="dumb")
    assert "\x1b[31" in at_terminal("validate", BAD, "--color", cwd=tmp_path, TERM="dumb")


def test_force_color_colours_a_pipe(tmp_path: Path) -> None:
    def piped(**env: str) -> str:
        proc = subprocess.run(
            [sys.executable, "-m", "mlopsctl", "validate", BAD],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            env=_env(**env),
            check=False,
            timeout=120,
        )
        assert proc.returncode == 1, proc.stderr
        return proc.stdout

    assert ESC not in piped()
    assert ESC in piped(FORCE_COLOR="1")
