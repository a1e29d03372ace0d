"""``mlopsctl init``: ask (or read) the requirements, show the decision, generate the repository."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TextIO

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
from mlopsctl.cli._output import Format, FormatOpt

if TYPE_CHECKING:
    from rich.console import Console

    from mlopsctl.design import StackDesign
    from mlopsctl.requirements import Requirements

DryRunOpt = Annotated[
    bool,
    typer.Option(
        "--dry-run",
        "-n",
        help="Show the decisions and the files that would be written; write nothing (the "
        "directory is not created).",
    ),
]


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
    dry_run: DryRunOpt = False,
    format_: FormatOpt = Format.text,
) -> None:
    """Answer the questionnaire and generate a repository at the tier the rules choose.

    At a terminal the summary and a confirmation come before anything is written (--yes skips
    the confirmation). Afterwards init prints what was decided and the next commands.
    --format json prints a versioned report of the files written on stdout, and nothing else
    there (docs/update.md)."""
    if format_ is Format.json:
        import sys
        from contextlib import redirect_stdout

        report_to = sys.stdout
        with redirect_stdout(sys.stderr):  # questions, summary and messages: not the report
            run_generation(
                directory,
                answers,
                set_,
                defaults,
                strict=strict,
                force=force,
                yes=yes,
                dry_run=dry_run,
                report_to=report_to,
            )
        return
    run_generation(
        directory, answers, set_, defaults, strict=strict, force=force, yes=yes, dry_run=dry_run
    )


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
    dry_run: bool = False,
    report_to: TextIO | None = None,
) -> None:
    """Collect the answers (asking at a terminal), decide, confirm, generate; ``floor`` raises
    the tier to at least that one (``design``, ``lifecycle``). ``dry_run``: show what would be
    written, write nothing. ``report_to``: the stream that gets the JSON report (``--format
    json``); the text goes to stdout otherwise."""
    from mlopsctl.cli._answers import collect_requirements
    from mlopsctl.cli._common import errors_to_exit_codes, interactive

    with errors_to_exit_codes():
        ask = interactive() and not defaults
        name = _name_from(directory)
        req = collect_requirements(
            answers, sets, defaults, project_name=name, ask=ask, destination=directory, force=force
        )
        confirm = interactive() and not yes and not dry_run
        options = _Options(strict, force, confirm, floor, dry_run, report_to)
        _generate(req, directory, options)


def _name_from(directory: Path) -> str | None:
    import re

    name = directory.absolute().name.lower()
    return name if re.fullmatch(r"[a-z]([-a-z0-9]{0,34}[a-z0-9])?", name) else None


class _Options:
    """How to generate: the command's options, and whether to ask before writing. (A plain
    class: a dataclass costs every command line a millisecond to build.)"""

    __slots__ = ("confirm", "dry_run", "floor", "force", "report_to", "strict")

    def __init__(
        self,
        strict: bool,
        force: bool,
        confirm: bool,
        floor: str | None,
        dry_run: bool,
        report_to: TextIO | None,  # the JSON report's stream (--format json), else None
    ) -> None:
        self.strict, self.force, self.confirm, self.floor = strict, force, confirm, floor
        self.dry_run, self.report_to = dry_run, report_to


def _generate(req: Requirements, directory: Path, options: _Options) -> None:
    """Assess, show the design and ask before writing when ``confirm``, generate, report."""
    from mlopsctl.api import assess, generate
    from mlopsctl.cli._common import stderr, stdout
    from mlopsctl.cli._report import print_summary

    design = assess(req, strict=options.strict, tier_floor=options.floor)
    out = stdout()
    if options.dry_run:
        _dry_run(design, directory, options)
        return
    if options.confirm:
        print_summary(out, design)
        if not _confirm(f"Generate the repository in {directory}?"):
            stderr().print("cancelled: nothing was written")
            raise typer.Exit(0)
    existing = _existing_files(directory) if options.force else frozenset()
    result = generate(design, directory, force=options.force)
    from mlopsctl import _resume

    _resume.discard(directory)  # the answers saved for resuming are now in mlopsctl.yaml
    if options.report_to is not None:
        from mlopsctl.reports import dumps, init_report

        report = init_report(
            design, result.destination, result.files, existing=existing, dry_run=False
        )
        options.report_to.write(dumps(report))
    out.print(
        f"[green]generated[/] {len(result.files)} files in {_markup(str(result.destination))} "
        f"(tier {design.tier}, serving {design.stack.serving})"
    )
    for warning in design.warnings:
        stderr().print(f"[yellow]warning:[/] {_markup(warning)}")
    _next_steps(out, design, directory, result.destination)


def _markup(text: str) -> str:
    from rich.markup import escape

    from mlopsctl.cli._text import printable

    return escape(printable(text))


def _confirm(question: str) -> bool:
    """Ask, default yes. Ctrl-C or Ctrl-D ends the command as an interrupt (exit 130, nothing
    written), never as click's "Aborted!" (exit 1)."""
    import click

    try:
        return click.confirm(question, default=True)
    except click.exceptions.Abort:
        click.echo()  # the prompt's line stays unfinished otherwise
        raise KeyboardInterrupt from None


def _existing_files(directory: Path) -> frozenset[str]:
    """The files already in ``directory`` (``--force`` writes over those of a generated name)."""
    import os

    found: set[str] = set()
    root = directory.absolute()
    if not root.is_dir() or root.is_symlink():
        return frozenset()
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d != ".git"]
        rel = Path(dirpath).relative_to(root)
        found.update((rel / name).as_posix() for name in filenames)
    return frozenset(found)


def _dry_run(design: StackDesign, directory: Path, options: _Options) -> None:
    """The decisions and the list of files, nothing written: the destination is checked as
    generation checks it and the project rendered in the system's temporary directory."""
    from mlopsctl._init_plan import preview
    from mlopsctl.cli._common import stdout
    from mlopsctl.cli._report import print_summary

    destination, files, existing = preview(design, directory, force=options.force)
    if options.report_to is not None:
        from mlopsctl.reports import dumps, init_report

        report = init_report(design, destination, files, existing=existing, dry_run=True)
        options.report_to.write(dumps(report))
    out = stdout()
    print_summary(out, design)
    out.print(f"\n[bold]Files[/] that would be written in {_markup(str(destination))}")
    for rel in files:
        note = " (exists: --force writes over it)" if rel in existing else ""
        out.print(f"  {_markup(rel)}{note}")
    out.print(f"dry run: {len(files)} files would be written; nothing was written")


def _next_steps(out: Console, design: StackDesign, directory: Path, destination: Path) -> None:
    from mlopsctl.cli._report import print_next_steps

    print_next_steps(out, design, next_commands(directory, destination))


def next_commands(directory: Path, destination: Path) -> list[tuple[str, str]]:
    """(command, what it does) for a project just generated at ``destination``: change into
    it, commit it (update needs a commit to merge against), install and train, check."""
    import shlex

    steps: list[tuple[str, str]] = []
    if destination.resolve() != Path.cwd().resolve():
        shown = directory if not directory.is_absolute() else destination
        steps.append((f"cd {shlex.quote(str(shown))}", ""))
    commit = 'git commit -m "Generate project with mlopsctl"'
    if _in_git_work_tree(destination):
        steps.append((f"git add . && {commit}", ""))
    else:
        steps.append((f"git init && git add -A && {commit}", ""))
    targets = makefile_targets(destination / "Makefile")
    said = {
        "install": "install",
        "train": "train and register the model",
        "test": "its tests",
        "validate": "mlopsctl validate",
    }
    for group in (("install", "train"), ("test", "validate")):
        present = [t for t in group if t in targets]
        if present:
            steps.append(("make " + " ".join(present), ", ".join(said[t] for t in present)))
    others = [t for t in targets if t not in said]
    if others:
        steps.append(("", "also: " + ", ".join(f"make {t}" for t in others) + " (README.md)"))
    return steps


def makefile_targets(makefile: Path) -> dict[str, str]:
    """The documented targets of a generated Makefile (a ``## text`` line above each) -> text."""
    import re
    from itertools import pairwise

    try:
        lines = makefile.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return {}
    targets: dict[str, str] = {}
    for doc, line in pairwise(lines):
        match = re.match(r"([A-Za-z][\w-]*):", line)
        if doc.startswith("## ") and match:
            targets[match.group(1)] = doc.removeprefix("## ").strip()
    return targets


def _in_git_work_tree(path: Path) -> bool:
    from mlopsctl._git import run
    from mlopsctl.errors import MlopsctlError

    try:
        proc = run(["rev-parse", "--is-inside-work-tree"], path, check=False)
    except MlopsctlError:
        return False
    return proc.returncode == 0 and proc.stdout.strip() == b"true"
