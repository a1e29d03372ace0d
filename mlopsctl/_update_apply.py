"""Update applying: the plan written into the project, all or nothing (``mlopsctl._write.swap``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mlopsctl import _write
from mlopsctl.errors import GenerationError, Interrupted
from mlopsctl.interrupts import current, held, redeliver

if TYPE_CHECKING:
    from mlopsctl._update_plan import UpdatePlan


def apply_update(plan: UpdatePlan) -> None:
    """Write the plan into the project, all or nothing."""
    writes: dict[str, bytes | None] = {f.path: f.after for f in plan.changed}
    writes.update(plan.internal)
    if not writes:
        return
    progress = current()
    try:
        with held(progress):
            _write.swap(plan.destination, writes, modes=plan.modes, journal=True, recheck=True)
            progress.commit(in_place(plan))
    except OSError as exc:
        raise GenerationError(
            f"writing the update into {plan.destination} failed: {exc.strerror or exc}; "
            "every file was put back as it was",
            hint="check free disk space and permissions, then run mlopsctl update again",
        ) from None
    finally:
        redeliver(progress)
    if progress.signals:
        raise Interrupted(
            f"interrupted while the update was being written; that step was completed, so "
            f"{progress.in_place}",
            hint=next_step(plan),
        )


def conflict_note(plan: UpdatePlan) -> str:
    """Which files the update left with conflict markers (or could not merge), or ""."""
    marked = [f.path for f in plan.conflicts if f.action == "conflict"]
    unmerged = [f.path for f in plan.conflicts if f.action == "kept-binary"]
    parts = []
    if marked:
        parts.append("conflict markers left in " + ", ".join(marked))
    if unmerged:
        parts.append("not merged (not text, your version kept) " + ", ".join(unmerged))
    return "; ".join(parts)


def in_place(plan: UpdatePlan) -> str:
    """What is on disk once the update is written, conflicted files named."""
    what = f"the update is in place: {len(plan.changed)} files changed in {plan.destination}"
    note = conflict_note(plan)
    return f"{what}; {note}" if note else what


def next_step(plan: UpdatePlan) -> str:
    if plan.conflicts:
        return (
            "resolve the <<<<<<< / ======= / >>>>>>> markers in the files named, "
            "review with git diff, then commit"
        )
    return "review with git diff, then commit"
