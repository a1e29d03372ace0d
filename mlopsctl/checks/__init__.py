"""``mlopsctl validate``: an offline linter for MLOps repositories.

Each check is a data file in ``catalog/`` (id, name, rationale, remediation, references, the
predicate that evaluates it and its parameters); the predicates live in ``syntax``, ``schemas``,
``policy``, ``consistency`` and ``sync``. ``validate()`` returns a ``Report``; it prints nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from mlopsctl.checks._model import CheckSpec, Finding, Note, Report, load_catalog

__all__ = ["CheckSpec", "Finding", "Note", "Report", "catalog", "validate"]


def catalog() -> tuple[CheckSpec, ...]:
    """Every check, sorted by id."""
    return load_catalog()


def validate(
    root: Path | str,
    *,
    select: Iterable[str] | None = None,
    ignore: Iterable[str] | None = None,
    crd_files: Iterable[Path | str] = (),
    exclude: Iterable[str] = (),
) -> Report:
    """Check the repository at ``root``. Raises ``UsageError`` for a missing directory, an
    unknown check id or an unreadable ``--crd`` file."""
    from mlopsctl.checks._engine import run
    from mlopsctl.checks.kubernetes import load_user_crds
    from mlopsctl.errors import UsageError

    path = Path(root)
    if not path.is_dir():
        raise UsageError(f"{path} is not a directory", hint="give the repository's root directory")
    crds = [Path(p) for p in crd_files]
    for crd in crds:
        if not crd.is_file():
            raise UsageError(f"--crd {crd}: no such file")
    load_user_crds(crds)  # a bad CRD file is a usage error before anything runs
    return run(path, select=select, ignore=ignore, crd_files=crds, exclude=list(exclude))
