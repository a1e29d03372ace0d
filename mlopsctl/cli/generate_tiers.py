"""``mlopsctl design`` (tier 2) and ``mlopsctl lifecycle`` (tier 3): generate at a tier floor."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mlopsctl.cli._common import AnswersOpt, DefaultsOpt, SetOpt, StrictOpt

DirectoryArg = Annotated[
    Path, typer.Argument(help="Where to generate the repository (created if missing).")
]
ForceOpt = Annotated[
    bool, typer.Option("--force", help="Write into a non-empty directory (never deletes files).")
]
YesOpt = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]


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
    _run("T2", directory, answers, set_, defaults, strict, force, yes)


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
    _run("T3", directory, answers, set_, defaults, strict, force, yes)


def _run(
    floor: str,
    directory: Path,
    answers: Path | None,
    sets: list[str] | None,
    defaults: bool,
    strict: bool,
    force: bool,
    yes: bool,
) -> None:
    from mlopsctl.cli._common import (
        collect_requirements,
        errors_to_exit_codes,
        interactive,
        stderr,
        stdout,
    )
    from mlopsctl.cli.init import _name_from

    with errors_to_exit_codes():
        from mlopsctl.cli._report import print_summary
        from mlopsctl.render import at_tier, generate
        from mlopsctl.rules.engine import evaluate

        ask = interactive() and not defaults
        req = collect_requirements(
            answers, sets, defaults, project_name=_name_from(directory), ask=ask
        )
        stack_design = at_tier(evaluate(req, strict=strict), floor)
        out = stdout()
        if ask and not yes:
            print_summary(out, stack_design)
            if not typer.confirm(f"Generate the repository in {directory}?", default=True):
                stderr().print("cancelled: nothing was written")
                raise typer.Exit(0)
        result = generate(stack_design, directory, force=force)
        out.print(
            f"[green]generated[/] {len(result.files)} files in {result.destination} "
            f"(tier {stack_design.tier}, serving {stack_design.stack.serving})"
        )
        for warning in stack_design.warnings:
            stderr().print(f"[yellow]warning:[/] {warning}")
