"""``mlopsctl design`` (tier 2) and ``mlopsctl lifecycle`` (tier 3): ``init`` at a tier floor.
Typer reads each command's options from its signature, hence two signatures."""

from __future__ import annotations

from pathlib import Path

import typer

from mlopsctl.cli._common import (
    AnswersOpt,
    DefaultsOpt,
    DirectoryArg,
    ForceOpt,
    SetOpt,
    StrictOpt,
    YesOpt,
)


def register(app: typer.Typer) -> None:
    app.command("design")(design)
    app.command("lifecycle")(lifecycle)


def design(
    directory: DirectoryArg = Path("."),
    answers: AnswersOpt = None,
    set_: SetOpt = None,
    defaults: DefaultsOpt = False,
    strict: StrictOpt = False,
    force: ForceOpt = False,
    yes: YesOpt = False,
) -> None:
    """Generate the production pipeline (tier 2): tracking, registry, deployment, monitoring, CI."""
    from mlopsctl.cli.init import run_generation

    run_generation(
        directory, answers, set_, defaults, strict=strict, force=force, yes=yes, floor="T2"
    )


def lifecycle(
    directory: DirectoryArg = Path("."),
    answers: AnswersOpt = None,
    set_: SetOpt = None,
    defaults: DefaultsOpt = False,
    strict: StrictOpt = False,
    force: ForceOpt = False,
    yes: YesOpt = False,
) -> None:
    """Generate the full lifecycle (tier 3): tier 2 plus governance, progressive rollout with
    rollback, shadow deployment, automated retraining, runbooks and cost notes."""
    from mlopsctl.cli.init import run_generation

    run_generation(
        directory, answers, set_, defaults, strict=strict, force=force, yes=yes, floor="T3"
    )
