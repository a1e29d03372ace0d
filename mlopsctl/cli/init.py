"""``mlopsctl init``: ask (or read) the requirements, show the decision, generate the repository."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mlopsctl.cli._common import AnswersOpt, DefaultsOpt, SetOpt, StrictOpt


def register(app: typer.Typer) -> None:
    app.command("init")(init)


def init(
    directory: Annotated[
        Path, typer.Argument(help="Where to generate the repository (created if missing).")
    ] = Path("."),
    answers: AnswersOpt = None,
    set_: SetOpt = None,
    defaults: DefaultsOpt = False,
    strict: StrictOpt = False,
    force: Annotated[
        bool,
        typer.Option("--force", help="Write into a non-empty directory (never deletes files)."),
    ] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Answer the questionnaire and generate a repository at the tier the rules choose."""
    from mlopsctl.cli._common import collect_requirements, errors_to_exit_codes, interactive

    with errors_to_exit_codes():
        ask = interactive() and not defaults
        name = _name_from(directory)
        req = collect_requirements(answers, set_, defaults, project_name=name, ask=ask)
        _generate(req, directory, strict=strict, force=force, confirm=ask and not yes)


def _name_from(directory: Path) -> str | None:
    import re

    name = directory.absolute().name.lower()
    return name if re.fullmatch(r"[a-z]([-a-z0-9]{0,34}[a-z0-9])?", name) else None


def _generate(req: object, directory: Path, *, strict: bool, force: bool, confirm: bool) -> None:
    from mlopsctl.cli._common import stderr, stdout
    from mlopsctl.cli._report import print_summary
    from mlopsctl.render import generate
    from mlopsctl.requirements import Requirements
    from mlopsctl.rules.engine import evaluate

    assert isinstance(req, Requirements)
    design = evaluate(req, strict=strict)
    out = stdout()
    if confirm:
        print_summary(out, design)
        if not typer.confirm(f"Generate the repository in {directory}?", default=True):
            stderr().print("cancelled: nothing was written")
            raise typer.Exit(0)
    result = generate(design, directory, force=force)
    out.print(
        f"[green]generated[/] {len(result.files)} files in {result.destination} "
        f"(tier {design.tier}, serving {design.stack.serving})"
    )
    for warning in design.warnings:
        stderr().print(f"[yellow]warning:[/] {warning}")
