"""Interrupts around writes.

SIGINT, SIGTERM, SIGHUP (the terminal closed) and SIGQUIT are held while output is moved into
place or put back, so none of them ever cuts it in half; SIGHUP and SIGQUIT are handled as
SIGTERM is. Only SIGKILL cannot be held: ``update`` keeps a journal for that case.
Once the output is in place, the command's ``Progress`` says so: an interrupt that
arrives afterwards, however late, is reported with what is on disk, never as "nothing was
written".
"""

from __future__ import annotations

import fcntl
import os
import shutil
import signal
import stat
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any

# Signals that end a command; the command line turns every one but SIGINT into ``Terminated``.
TERMINATING: tuple[signal.Signals, ...] = (signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)
HELD: tuple[signal.Signals, ...] = (signal.SIGINT, *TERMINATING)


class Progress:
    """What one command has put in place, and the signals held while it did."""

    def __init__(self, *, keep_held: bool = False) -> None:
        self.signals: list[int] = []
        self.in_place: str | None = None
        self.swallowed = False  # a KeyboardInterrupt some library caught (see ``tracking``)
        # A terminating signal was raised into the command: a library may turn the exception
        # into one of its own (pydantic-core's SchemaError keeps only its text).
        self.terminated = False
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
    """Hold the signals of ``HELD`` for the duration; they are recorded in ``progress.signals`` and
    the caller acts on them afterwards. Outside the main thread Python delivers no signals, so
    there is nothing to hold."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def hold(signum: int, frame: Any) -> None:
        progress.signals.append(signum)

    previous = {sig: signal.signal(sig, hold) for sig in HELD}
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
    """A temporary directory that no signal leaves behind: it is created and removed with the
    signals of ``HELD`` held, and a signal held meanwhile is acted on once it is gone (or, on
    creation, once the caller's cleanup is armed).

    The directory is locked (``flock``) for as long as it is in use; the kernel drops the lock
    when the process dies, so one that SIGKILL left behind is told from one in use by
    ``stale_scratch_dirs``."""
    guard = Progress()
    with held(guard):
        tmp = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
        fd = os.open(tmp, os.O_RDONLY | os.O_DIRECTORY)
        fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        redeliver(guard)
        yield tmp
    finally:
        cleanup = Progress()
        with held(cleanup):
            shutil.rmtree(tmp, ignore_errors=True)
            os.close(fd)
        redeliver(cleanup)


@contextmanager
def stale_scratch_dirs(prefix: str, parent: Path) -> Iterator[list[Path]]:
    """The directories ``scratch_dir(prefix, parent)`` made whose process is gone: this user's
    own, private (as ``mkdtemp`` makes them), and not locked. They stay locked by this process
    until the block ends, so no other run takes them meanwhile."""
    found: list[Path] = []
    fds: list[int] = []
    try:
        try:
            names = sorted(os.listdir(parent))
        except OSError:
            names = []
        for name in names:
            if not name.startswith(prefix):
                continue
            path = parent / name
            try:
                st = path.lstat()
                if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid() or st.st_mode & 0o077:
                    continue
                fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
            except OSError:
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)  # in use by a running command
                continue
            fds.append(fd)
            found.append(path)
        yield found
    finally:
        for fd in fds:
            os.close(fd)
