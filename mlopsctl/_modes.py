"""The one rule for the mode of every file mlopsctl writes (rendered files, ``.mlopsctl/`` and
files ``update`` replaces): ``0o644``, or ``0o755`` for an executable file.

Git records nothing but the executable bit, so a mode is reduced to it and the umask plays no
part: two generations of the same answers carry the same modes wherever they ran, and a fresh
clone has the modes generation wrote. A file is executable when its template is (for generated
files and their pristine copies), or when the user's file is (for a file ``update`` replaces).
"""

from __future__ import annotations

import os
import stat

REGULAR = 0o644
EXECUTABLE = 0o755


def file_mode(executable: bool) -> int:
    """The mode of a written file."""
    return EXECUTABLE if executable else REGULAR


def mode_like(st_mode: int) -> int:
    """The mode of a file written in place of (or from) one with ``st_mode``."""
    return file_mode(bool(stat.S_IMODE(st_mode) & 0o111))


def apply(path: str | os.PathLike[str]) -> None:
    """Give an existing file the mode the rule says (its own executable bit kept)."""
    os.chmod(path, mode_like(os.lstat(path).st_mode))
