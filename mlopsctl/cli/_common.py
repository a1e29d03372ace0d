"""Shared CLI pieces: answer options, reading answers, turning errors into exit codes."""

from __future__ import annotations

import io
import os
import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, TextIO, TypeVar

import typer

if TYPE_CHECKING:
    from rich.console import Console

    from mlopsctl.errors import OutputError

T = TypeVar("T")

AnswersOpt = Annotated[
    Path | None,
    typer.Option(
        "--answers",
        "-a",
        help="YAML answers file (for example a project's mlopsctl.yaml).",
        dir_okay=False,
    ),
]
SetOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--set",
        "-s",
        help="Set one answer, KEY=VALUE with a dotted key (scale_requirements.latency_ms=30); "
        "a list as a,b or [a, b]; choices in any case; repeatable; applied over --answers.",
        metavar="KEY=VALUE",
    ),
]
DefaultsOpt = Annotated[
    bool,
    typer.Option("--defaults", "-d", help="Take the default of every unanswered question."),
]
StrictOpt = Annotated[
    bool,
    typer.Option("--strict", help="Treat rule conflicts as errors (exit 1)."),
]


DirectoryArg = Annotated[
    Path, typer.Argument(help="Where to generate the repository (created if missing).")
]
ForceOpt = Annotated[
    bool, typer.Option("--force", help="Write into a non-empty directory (never deletes files).")
]
YesOpt = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread so that cleanup runs, and the exit code is the same
    (130), as for Ctrl-C; Typer turns an interrupt outside a command into 130 as well."""


def _on_sigterm(signum: int, frame: Any) -> NoReturn:
    from mlopsctl.interrupts import current

    current().terminated = True
    raise Terminated()


def colour(color: bool | None = None) -> dict[str, Any]:
    """The colour settings of a ``rich.console.Console``, in this order: ``--color`` (colour,
    even when not a terminal) and ``--no-color`` (no escape sequence at all); then ``NO_COLOR``
    set to any non-empty value (no escape sequence at all, bold and dim included, even with
    ``FORCE_COLOR``); then Rich's own reading of ``FORCE_COLOR`` (any non-empty value: colour
    when not a terminal) and ``TERM=dumb`` (no colour)."""
    if color is True:
        dumb = os.environ.get("TERM", "").strip().lower() in ("dumb", "unknown")
        return {"force_terminal": True, "color_system": "standard" if dumb else "auto"}
    if color is False or os.environ.get("NO_COLOR", "") != "":
        return {"color_system": None}
    return {}


def stderr(color: bool | None = None) -> Console:
    from rich.console import Console

    return Console(stderr=True, highlight=False, soft_wrap=True, **colour(color))


def stdout(color: bool | None = None) -> Console:
    from rich.console import Console

    return Console(highlight=False, soft_wrap=True, **colour(color))


def fail(message: str, hint: str | None, code: int) -> NoReturn:
    from rich.markup import escape

    from mlopsctl.cli._text import printable

    _said_why(code)

    err = stderr()  # a message can quote a file name: its control characters are escaped
    err.print(f"[bold red]error:[/] {escape(printable(message, keep=chr(10)))}")
    if hint:
        err.print(f"[bold]hint:[/] {escape(printable(hint, keep=chr(10)))}")
    raise typer.Exit(code)


# Set by the console entry point: the process is the command's, so signals that arrive once its
# output is in place may be held until it exits.
_owns_process = False
# Whether the reason for an exit 130 was printed; Typer exits 130 silently on a Ctrl-C that
# lands before a command's body runs.
_interrupt_explained = False


def _said_why(code: int) -> None:
    global _interrupt_explained
    if code == 130:
        _interrupt_explained = True


def _interrupted(what: str) -> NoReturn:
    from mlopsctl.errors import ExitCode

    _said_why(ExitCode.INTERRUPTED)
    stderr().print(f"interrupted: {what}", markup=False)
    raise typer.Exit(ExitCode.INTERRUPTED)


@contextmanager
def errors_to_exit_codes() -> Iterator[None]:
    """One place that turns exceptions into the documented exit codes."""
    from mlopsctl.errors import ExitCode, MlopsctlError, OutputError
    from mlopsctl.interrupts import TERMINATING, tracking

    previous = {sig: signal.signal(sig, _on_sigterm) for sig in TERMINATING}
    progress = None

    def on_disk() -> str:
        return (progress and progress.in_place) or "nothing was written"

    try:
        with tracking(keep_held=_owns_process) as progress:
            try:
                yield
            except (KeyboardInterrupt, Terminated):
                # An interrupt after the output was put in place says what is on disk.
                _interrupted(on_disk())
            if (progress.signals and progress.committed) or progress.swallowed:
                _interrupted(on_disk())
    except MlopsctlError as exc:
        if progress is not None and (progress.swallowed or progress.terminated):
            # the error may be the interrupt's
            _interrupted(on_disk())
        if isinstance(exc, OutputError):
            _output_failed(exc, on_disk())
        fail(exc.message, exc.hint, exc.exit_code)
    except (typer.Exit, typer.Abort, SystemExit):
        raise
    except Exception as exc:  # a bug: short message, no locals
        from mlopsctl.cli import interrupt_in_chain

        if interrupt_in_chain(exc) or (
            progress is not None and (progress.swallowed or progress.terminated)
        ):
            _interrupted(on_disk())
        fail(
            f"internal error: {type(exc).__name__}: {exc}",
            "this is a bug in mlopsctl; please report it with the command you ran",
            ExitCode.INTERNAL,
        )
    finally:
        if not (progress is not None and progress.committed and progress.keep_held):
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def interactive() -> bool:
    return sys.stdin.isatty()


class _Output(io.TextIOBase):
    """Standard output as the commands see it: a write that fails because the stream is closed,
    full or a closed pipe raises ``OutputError`` (exit 74 with a message on standard error)
    instead of an internal error. Everything else is the real stream's."""

    def __init__(self, stream: TextIO | None) -> None:
        self._stream = stream
        self._reason = "it is closed"

    def _fail(self, exc: OSError | ValueError | None) -> NoReturn:
        from mlopsctl.errors import OutputError

        self._stream = None  # nothing more goes there, the final flush included
        if isinstance(exc, OSError):
            self._reason = exc.strerror or str(exc)
        reason = self._reason
        raise OutputError(
            f"cannot write to standard output: {reason}",
            hint="send the output somewhere that can take it (a file with space, an open pipe)",
        ) from None

    def write(self, text: str) -> int:
        if self._stream is None:
            self._fail(None)
        try:
            return self._stream.write(text)
        except (OSError, ValueError) as exc:
            self._fail(exc)

    def flush(self) -> None:
        if self._stream is None:
            return
        try:
            self._stream.flush()
        except (OSError, ValueError) as exc:
            self._fail(exc)

    def isatty(self) -> bool:
        return self._stream is not None and self._stream.isatty()

    def fileno(self) -> int:
        if self._stream is None:
            raise io.UnsupportedOperation("standard output is closed")
        return self._stream.fileno()

    def writable(self) -> bool:
        return True

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def _output_failed(exc: OutputError, in_place: str) -> NoReturn:
    """The report could not be written: say so on standard error, with what is on disk."""
    try:
        stderr().print(f"error: {exc.message}; {in_place}", markup=False)
        if exc.hint:
            stderr().print(f"hint: {exc.hint}", markup=False)
    except (OSError, ValueError):
        pass  # standard error is gone too: the exit code says it
    raise typer.Exit(exc.exit_code)


def run_app(app: Callable[..., Any]) -> NoReturn:
    """The console entry point: SIGTERM behaves as Ctrl-C from the first moment on, and once a
    command has put its output in place, later signals wait for it to finish its report.

    The process ends without the interpreter's finalization: that phase puts the default signal
    handlers back, so a Ctrl-C landing in it would kill a process whose work is complete and
    report it as interrupted. Every file is closed by then; the standard streams are flushed."""
    from mlopsctl.errors import ExitCode, OutputError

    global _owns_process
    _owns_process = True
    from mlopsctl.interrupts import TERMINATING

    for sig in TERMINATING:  # SIGHUP and SIGQUIT end a command as SIGTERM does
        signal.signal(sig, _on_sigterm)
    out = _Output(sys.stdout)
    sys.stdout = out
    code: int = 0
    try:
        app()
    except OutputError as exc:  # Typer's own output (help, usage) outside a command
        code = exc.exit_code
        with suppress(OSError, ValueError):
            sys.stderr.write(f"error: {exc.message}\n")
    except KeyboardInterrupt:  # before a command began: Typer builds its command line first
        code = 130
    except Exception as exc:
        from mlopsctl.cli import interrupt_in_chain

        if not interrupt_in_chain(exc):
            raise
        code = 130
    except SystemExit as exc:
        if isinstance(exc.code, int):
            code = exc.code
        elif exc.code is not None:
            print(exc.code, file=sys.stderr)
            code = 1
    if code == 130 and not _interrupt_explained:
        stderr().print("interrupted: nothing was written")
    try:
        out.flush()
    except OutputError as exc:
        code = code or ExitCode.OUTPUT
        with suppress(OSError, ValueError):
            sys.stderr.write(f"error: {exc.message}\n")
    with suppress(OSError, ValueError, AttributeError):
        sys.stderr.flush()
    os._exit(code)
