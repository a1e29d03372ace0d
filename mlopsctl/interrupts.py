"""Interrupts around writes.

SIGINT and SIGTERM are held while output is moved into place or put back, so neither is ever cut
in half. Once the output is in place, the command's ``Progress`` says so: an interrupt that
arrives afterwards, however late, is reported with what is on disk, never as "nothing was
written".
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any


class Progress:
    """What one command has put in place, and the signals held while it did."""

    def __init__(self, *, keep_held: bool = False) -> None:
        self.signals: list[int] = []
        self.in_place: str | None = None
        self.swallowed = False  # a KeyboardInterrupt some library caught (see ``tracking``)
        # Keep holding once the output is in place: a process that only has a report left to
        # print finishes it rather than dying between the move and its exit.
        self.keep_held = keep_held

    @property
    def committed(self) -> bool:
        return self.in_place is not None

    def commit(self, what: str) -> None:
        """Record that the output is complete on disk; ``what`` says what and where."""
        self.in_place = what


_current: ContextVar[Progress | None] = ContextVar("mlopsctl_progress", default=None)


def current() -> Progress:
    """The running command's progress, or a fresh one when no command tracks it."""
    return _current.get() or Progress()


@contextmanager
def tracking(*, keep_held: bool = False) -> Iterator[Progress]:
    """Make a new ``Progress`` the current one for the duration of a command.

    Compiled code that calls back into Python can swallow a Ctrl-C: pydantic-core building a
    validator hands the KeyboardInterrupt to ``sys.unraisablehook`` ("Exception ignored in")
    and carries on with a wrong result, such as a rule file that no longer matches its own
    schema. Such an interrupt is recorded in ``progress.swallowed`` (and not printed), so that
    the command ends as interrupted rather than with whatever error followed."""
    progress = Progress(keep_held=keep_held)
    token = _current.set(progress)
    previous_hook = sys.unraisablehook

    def hook(unraisable: Any) -> None:
        if unraisable.exc_type is not None and issubclass(unraisable.exc_type, KeyboardInterrupt):
            progress.swallowed = True
            return
        previous_hook(unraisable)

    sys.unraisablehook = hook
    try:
        yield progress
    finally:
        sys.unraisablehook = previous_hook
        _current.reset(token)


@contextmanager
def held(progress: Progress) -> Iterator[None]:
    """Hold SIGINT and SIGTERM for the duration; they are recorded in ``progress.signals`` and
    the caller acts on them afterwards. Outside the main thread Python delivers no signals, so
    there is nothing to hold."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def hold(signum: int, frame: Any) -> None:
        progress.signals.append(signum)

    previous = {sig: signal.signal(sig, hold) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        if not (progress.committed and progress.keep_held):
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def redeliver(progress: Progress) -> None:
    """Act on a held signal now, unless the output is already in place."""
    if progress.signals and not progress.committed:
        sig = progress.signals[0]
        progress.signals.clear()
        signal.raise_signal(sig)


@contextmanager
def scratch_dir(prefix: str, parent: str | os.PathLike[str] | None = None) -> Iterator[Path]:
    """A temporary directory that no signal leaves behind: it is created and removed with
    SIGINT and SIGTERM held, and a signal held meanwhile is acted on once it is gone (or, on
    creation, once the caller's cleanup is armed)."""
    guard = Progress()
    with held(guard):
        tmp = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    try:
        redeliver(guard)
        yield tmp
    finally:
        cleanup = Progress()
        with held(cleanup):
            shutil.rmtree(tmp, ignore_errors=True)
        redeliver(cleanup)
