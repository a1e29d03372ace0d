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
            changed, dest = len(plan.changed), plan.destination
            progress.commit(f"the update is in place: {changed} files changed in {dest}")
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
            hint="review with git diff, then commit",
        )
