"""Shared CLI pieces: answer options, reading answers, turning errors into exit codes."""

from __future__ import annotations

import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, TypeVar

import typer

if TYPE_CHECKING:
    from rich.console import Console

    from mlopsctl.requirements import Requirements

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
        "repeatable; applied over --answers.",
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


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread so that cleanup runs, and the exit code is the same
    (130), as for Ctrl-C; Typer turns an interrupt outside a command into 130 as well."""


def _on_sigterm(signum: int, frame: Any) -> NoReturn:
    raise Terminated()


def stderr() -> Console:
    from rich.console import Console

    return Console(stderr=True, highlight=False, soft_wrap=True)


def stdout() -> Console:
    from rich.console import Console

    return Console(highlight=False, soft_wrap=True)


def fail(message: str, hint: str | None, code: int) -> NoReturn:
    from rich.markup import escape

    err = stderr()
    err.print(f"[bold red]error:[/] {escape(message)}")
    if hint:
        err.print(f"[bold]hint:[/] {escape(hint)}")
    raise typer.Exit(code)


@contextmanager
def errors_to_exit_codes() -> Iterator[None]:
    """One place that turns exceptions into the documented exit codes."""
    from mlopsctl.errors import ExitCode, MlopsctlError

    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        yield
    except MlopsctlError as exc:
        fail(exc.message, exc.hint, exc.exit_code)
    except (KeyboardInterrupt, Terminated):
        stderr().print("interrupted: nothing was written")
        raise typer.Exit(ExitCode.INTERRUPTED) from None
    except (typer.Exit, typer.Abort, SystemExit):
        raise
    except Exception as exc:  # a bug: short message, no locals
        fail(
            f"internal error: {type(exc).__name__}: {exc}",
            "this is a bug in mlopsctl; please report it with the command you ran",
            ExitCode.INTERNAL,
        )
    finally:
        signal.signal(signal.SIGTERM, previous)


def interactive() -> bool:
    return sys.stdin.isatty()


def collect_requirements(
    answers: Path | None,
    sets: list[str] | None,
    defaults: bool,
    *,
    project_name: str | None = None,
    ask: bool = False,
) -> Requirements:
    """Read answers from the file, --set and defaults; ask for the rest when ``ask``."""
    from mlopsctl.answers import (
        AnswerSet,
        apply_sets,
        build_requirements,
        fill_defaults,
        load_answers_file,
    )

    answer_set = AnswerSet()
    if answers is not None:
        load_answers_file(answers, answer_set)
    apply_sets(answer_set, sets or [])
    if ask and not defaults:
        from mlopsctl.cli._prompt import ask_questions

        ask_questions(answer_set, project_name=project_name)
    if defaults:
        fill_defaults(answer_set, project_name)
    return build_requirements(answer_set, use_defaults=defaults or ask)


def run_app(app: Callable[..., Any]) -> None:
    """The console entry point: SIGTERM behaves as Ctrl-C from the first moment on."""
    signal.signal(signal.SIGTERM, _on_sigterm)
    app()
