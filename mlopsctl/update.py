"""Regenerate a project after its answers changed, without losing a user edit.

Three versions of every generated file take part:

- base: what mlopsctl generated last time. Generation stores a pristine copy of every generated
  artifact under ``.mlopsctl/base/`` (committed with the project, so it survives a fresh clone and
  an mlopsctl upgrade) and records each file's SHA-256 in ``.mlopsctl/state.json``.
- theirs: the new generation, rendered from the new answers into a temporary directory.
- ours: the files as the user has them.

Each file is merged with ``git merge-file``; renames between base and theirs are found with
``git diff --no-index -M``. Nothing is written until every file merged; the result is swapped in
with the originals kept aside and put back if anything fails, and a journal beside the project
lets the next run undo a swap that SIGKILL cut short. ``.mlopsctl/`` is read (and every path
proven to stay inside the project) by ``mlopsctl.layout``; git runs through ``mlopsctl._git``.
``docs/update.md`` explains why.

Planning lives in ``mlopsctl._update_plan``, applying in ``mlopsctl._update_apply``, the
journaled swap and its recovery in ``mlopsctl._write``; this module is their public face.
"""

from __future__ import annotations

from pathlib import Path

from mlopsctl._update_apply import apply_update
from mlopsctl._update_plan import (
    Action,
    DecisionChange,
    DirtyRepository,
    FileChange,
    NotAGitRepository,
    UpdatePlan,
    decision_diff,
    merge_file,
    plan_update,
)
from mlopsctl._write import HalfWrittenUpdate
from mlopsctl.layout import BaseSnapshotError

__all__ = [
    "Action",
    "BaseSnapshotError",
    "DecisionChange",
    "DirtyRepository",
    "FileChange",
    "HalfWrittenUpdate",
    "NotAGitRepository",
    "UpdatePlan",
    "apply_update",
    "decision_diff",
    "merge_file",
    "plan_update",
    "update",
]


def update(
    destination: Path,
    *,
    answers: Path | None = None,
    sets: list[str] | None = None,
    strict: bool = False,
    dry_run: bool = False,
) -> UpdatePlan:
    """Plan the update and, unless ``dry_run``, apply it. Conflicts are in ``plan.conflicts``."""
    plan = plan_update(destination, answers=answers, sets=sets, strict=strict, dry_run=dry_run)
    if not dry_run:
        apply_update(plan)
    return plan
