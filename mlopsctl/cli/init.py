"""``mlopsctl init``: ask (or read) the requirements, show the decision, generate the repository."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

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

if TYPE_CHECKING:
    from mlopsctl.requirements import Requirements


def register(app: typer.Typer) -> None:
    app.command("init")(init)


def init(
    directory: DirectoryArg = Path("."),
    answers: AnswersOpt = None,
    set_: SetOpt = None,
    defaults: DefaultsOpt = False,
    strict: StrictOpt = False,
    force: ForceOpt = False,
    yes: YesOpt = False,
) -> None:
    """Answer the questionnaire and generate a repository at the tier the rules choose."""
    run_generation(directory, answers, set_, defaults, strict=strict, force=force, yes=yes)


def run_generation(
    directory: Path,
    answers: Path | None,
    sets: list[str] | None,
    defaults: bool,
    *,
    strict: bool,
    force: bool,
    yes: bool,
    floor: str | None = None,
) -> None:
    """Collect the answers (asking at a terminal), decide, confirm, generate; ``floor`` raises
    the tier to at least that one (``design``, ``lifecycle``)."""
    from mlopsctl.cli._common import collect_requirements, errors_to_exit_codes, interactive

    with errors_to_exit_codes():
        ask = interactive() and not defaults
        name = _name_from(directory)
        req = collect_requirements(
            answers, sets, defaults, project_name=name, ask=ask, destination=directory, force=force
        )
        _generate(req, directory, strict=strict, force=force, confirm=ask and not yes, floor=floor)


def _name_from(directory: Path) -> str | None:
    import re

    name = directory.absolute().name.lower()
    return name if re.fullmatch(r"[a-z]([-a-z0-9]{0,34}[a-z0-9])?", name) else None


def _generate(
    req: Requirements,
    directory: Path,
    *,
    strict: bool,
    force: bool,
    confirm: bool,
    floor: str | None,
) -> None:
    """Assess, show the design and ask before writing when ``confirm``, generate, report."""
    from mlopsctl.api import assess, generate
    from mlopsctl.cli._common import stderr, stdout
    from mlopsctl.cli._report import print_summary

    design = assess(req, strict=strict, tier_floor=floor)
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
