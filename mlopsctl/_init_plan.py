"""``init --dry-run``: the files a generation would write, worked out without writing.

The destination gets the checks ``mlopsctl.render.generate`` makes before it writes (a symbolic
link, a file, a non-empty directory without ``--force``, a generated path through a link), so
that a dry run refuses what the real run refuses; the project is rendered in the system's
temporary directory, and the destination is not created.
"""

from __future__ import annotations

import os
from pathlib import Path

from mlopsctl.design import StackDesign
from mlopsctl.errors import DestinationError


def preview(
    design: StackDesign, destination: Path, *, force: bool
) -> tuple[Path, list[str], frozenset[str]]:
    """(the destination as generation resolves it, every file it would write, those of them
    that exist already and ``--force`` would write over)."""
    from mlopsctl import _write, render

    dest = render._resolve_destination(destination)
    render._refuse_own_template(dest)
    if dest.is_symlink():
        raise DestinationError(
            f"{dest} is a symbolic link",
            hint=f"give the directory it points to ({dest.resolve()}) instead",
        )
    if dest.exists() and not dest.is_dir():
        raise DestinationError(f"{dest} exists and is not a directory")
    if not dest.exists():
        _write._anchor(dest)  # a parent that is a file is refused as generation refuses it
    non_empty = dest.is_dir() and any(dest.iterdir())
    if non_empty and not force:
        raise DestinationError(
            f"{dest} is not empty",
            hint="choose a new directory, or pass --force to write the generated files into it "
            "(other files are left alone; mlopsctl update is the way to regenerate a project)",
        )
    with _write.workdir() as work:
        files = render.render_tree(design, work / "out")
    existing: frozenset[str] = frozenset()
    if non_empty:
        _write.check_targets(dest, files)
        existing = frozenset(rel for rel in files if os.path.lexists(dest / rel))
    return dest, sorted(files), existing
