"""Every git call mlopsctl makes, with nothing of the repository's own configuration that could
run a program.

A repository handed to ``validate`` or ``update`` is untrusted: its ``.git/config`` and
``.gitattributes`` can name programs that git would run on its behalf. Each call here turns off

- hooks (``core.hooksPath=/dev/null``): ``git status`` refreshes the index and would run
  ``post-index-change``;
- the file system monitor (``core.fsmonitor``), run by every command that reads the work tree;
- pagers (``--no-pager``, ``GIT_PAGER``) and editors, ssh and askpass programs;
- filter drivers (``filter.<name>.clean``/``smudge``/``process``): ``git status`` runs the clean
  filter of every file whose stat data changed, so each driver the configuration defines is
  overridden with an empty command and made optional;
- external diff, textconv and merge drivers (``diff.external``, ``diff.<name>.command``,
  ``diff.<name>.textconv``, ``merge.<name>.driver``), and submodules, whose own configuration
  would be read in turn.

Overrides go through ``GIT_CONFIG_COUNT``/``GIT_CONFIG_KEY_n``/``GIT_CONFIG_VALUE_n``, which
take any key (a driver name may hold characters ``-c`` cannot), and they win over every
configuration file. Built-in conversions (``core.autocrlf``, ``text``/``eol`` attributes) run no
program and stay on, so git's view of a checkout is the user's.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from mlopsctl.errors import MlopsctlError, UsageError


class GitUnavailable(UsageError):
    """git is not installed or cannot run."""


# Configuration that could run a program, set to values that run none.
SAFE_CONFIG: tuple[tuple[str, str], ...] = (
    ("core.hooksPath", os.devnull),
    ("core.fsmonitor", "false"),
    ("core.untrackedCache", "false"),
    ("core.pager", "cat"),
    ("core.editor", "false"),
    ("core.sshCommand", "false"),
    ("core.askPass", ""),
    ("credential.helper", ""),
    ("diff.external", ""),
    ("submodule.recurse", "false"),
    ("status.submoduleSummary", "false"),
    ("diff.ignoreSubmodules", "all"),
    ("protocol.allow", "never"),
    ("core.quotepath", "off"),
    ("merge.conflictStyle", "merge"),
)

# The variables of a driver that name a program.
_DRIVER_PROGRAMS = {
    "filter": ("clean", "smudge", "process"),
    "diff": ("command", "textconv"),
    "merge": ("driver",),
}

# Environment variables that name a program or change which repository git works on.
_DROPPED_ENV = (
    "GIT_EXTERNAL_DIFF",
    "GIT_PAGER",
    "PAGER",
    "GIT_EDITOR",
    "GIT_SSH",
    "GIT_SSH_COMMAND",
    "GIT_ASKPASS",
    "SSH_ASKPASS",
    "GIT_CONFIG_PARAMETERS",
    "GIT_CONFIG_COUNT",
)


def executable() -> str:
    exe = shutil.which("git")
    if exe is None:
        raise GitUnavailable(
            "mlopsctl needs git, which is not installed or not on PATH",
            hint="install git; update merges your edits with git merge-file",
        )
    return exe


def _config_env(overrides: list[tuple[str, str]]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _DROPPED_ENV}
    for key in [k for k in env if k.startswith(("GIT_CONFIG_KEY_", "GIT_CONFIG_VALUE_"))]:
        del env[key]
    env.update(
        {
            "GIT_TERMINAL_PROMPT": "0",
            "GIT_PAGER": "cat",
            "GIT_OPTIONAL_LOCKS": "0",  # reading commands leave the index alone
            "LC_ALL": "C",
            "GIT_CONFIG_COUNT": str(len(overrides)),
        }
    )
    for i, (key, value) in enumerate(overrides):
        env[f"GIT_CONFIG_KEY_{i}"] = key
        env[f"GIT_CONFIG_VALUE_{i}"] = value
    return env


def _driver_overrides(cwd: Path, timeout: float) -> list[tuple[str, str]]:
    """Empty programs for every filter, diff and merge driver the configuration seen from ``cwd``
    defines (reading configuration runs nothing)."""
    try:
        proc = subprocess.run(
            [executable(), "--no-pager", "config", "--null", "--list"],
            cwd=cwd,
            capture_output=True,
            env=_config_env(list(SAFE_CONFIG)),
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise GitUnavailable(
            f"git config did not finish within {timeout:g} seconds in {cwd}",
            hint="check the repository with git status, then run the command again",
        ) from None
    names: set[tuple[str, str]] = set()
    for entry in proc.stdout.split(b"\0"):
        key = entry.split(b"\n", 1)[0].decode("utf-8", "surrogateescape")
        section, _, rest = key.partition(".")
        name, _, _variable = rest.rpartition(".")
        if section.lower() in _DRIVER_PROGRAMS and name:
            names.add((section.lower(), name))
    out: list[tuple[str, str]] = []
    for section, name in sorted(names):
        out.extend((f"{section}.{name}.{var}", "") for var in _DRIVER_PROGRAMS[section])
        if section == "filter":
            out.append((f"filter.{name}.required", "false"))
    return out


def run(
    args: list[str],
    cwd: Path,
    *,
    check: bool = True,
    ok: tuple[int, ...] = (0,),
    timeout: float = 120,
) -> subprocess.CompletedProcess[bytes]:
    """``git ARGS`` in ``cwd`` with the safe configuration; raises ``MlopsctlError`` for an exit
    code outside ``ok`` when ``check``."""
    overrides = [*SAFE_CONFIG, *_driver_overrides(cwd, timeout)]
    try:
        proc = subprocess.run(
            [executable(), "--no-pager", *args],
            cwd=cwd,
            capture_output=True,
            env=_config_env(overrides),
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise GitUnavailable(
            f"git {args[0]} did not finish within {timeout:g} seconds in {cwd}",
            hint="check the repository with git status, then run the command again",
        ) from None
    if check and proc.returncode not in ok:
        message = proc.stderr.decode("utf-8", "replace").strip()
        raise MlopsctlError(f"git {args[0]} failed (exit {proc.returncode}): {message}")
    return proc
