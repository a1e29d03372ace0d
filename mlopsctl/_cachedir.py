"""The user cache directory mlopsctl keeps compiled templates and check results in.

``$XDG_CACHE_HOME/mlopsctl/<name>`` (``~/.cache`` without it), made private on first use. What is
stored there is trusted on read, so a directory another user could write to is refused: it must be
a real directory (not a symlink), owned by the user running mlopsctl and not writable by group or
others. (Whoever can write to the directories above it can at most remove it or put a directory of
their own, or a symlink, in its place, and those are refused.) ``MLOPSCTL_NO_CACHE=1`` turns
every cache off.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path


def private_cache_dir(name: str) -> Path | None:
    """The cache directory ``name``, created with mode 0700 when missing; None when caching is
    off or the directory is not the user's own and private."""
    if os.environ.get("MLOPSCTL_NO_CACHE"):
        return None
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    top = Path(base) / "mlopsctl"
    directory = top / name
    try:
        if not directory.is_dir():
            top.parent.mkdir(parents=True, exist_ok=True)
            top.mkdir(mode=0o700, exist_ok=True)
            directory.mkdir(mode=0o700, exist_ok=True)
        if not _private(directory):
            return None
    except (OSError, RuntimeError):  # RuntimeError: no home directory to expand
        return None
    return directory


def _private(path: Path) -> bool:
    """``path`` is a directory of this user's that nobody else can write to (another user could
    plant an entry there, or swap the directory for one of theirs)."""
    st = path.lstat()
    return (
        stat.S_ISDIR(st.st_mode)
        and st.st_uid == os.getuid()
        and not st.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
    )
