"""``mlopsctl update``: re-run the rules on changed answers and regenerate with a 3-way merge."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from mlopsctl.cli._common import AnswersOpt, SetOpt, StrictOpt
from mlopsctl.cli._output import Format, FormatOpt

if TYPE_CHECKING:
    from rich.console import Console

    from mlopsctl.update import UpdatePlan


def register(app: typer.Typer) -> None:
    app.command("update")(update)


def update(
    directory: Annotated[
        Path,
        typer.Argument(
            help="The generated project: a git work tree with no uncommitted changes but to "
            "mlopsctl.yaml."
        ),
    ] = Path("."),
    answers: AnswersOpt = None,
    set_: SetOpt = None,
    strict: StrictOpt = False,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run",
            "-n",
            help="Show the decision diff and the file diff; write nothing. "
            "Exits 3 when the update would leave conflicts.",
        ),
    ] = False,
    format_: FormatOpt = Format.text,
) -> None:
    """Regenerate after the answers changed, keeping your edits.

    The answers come from mlopsctl.yaml, with --answers and --set on top. Files you did not
    edit are replaced by the new generation; files you edited are merged with git merge-file.
    Conflicts are marked inline with <<<<<<< ======= >>>>>>> and listed at the end (exit 3).
    Files of a component that is now off are removed unless you edited them. Edit
    mlopsctl.yaml and run update: your uncommitted edit is its input. Refuses to run with other
    uncommitted changes (exit 2). --format json prints a versioned report of every file on
    stdout (docs/update.md), and nothing else. mlopsctl check tells whether the project is
    behind the installed mlopsctl.
    """
    from mlopsctl.cli._common import errors_to_exit_codes

    with errors_to_exit_codes():
        from mlopsctl.api import update as run_update

        plan = run_update(directory, answers=answers, sets=set_, strict=strict, dry_run=dry_run)
        if format_ is Format.json:
            code = _report_json(plan, dry_run=dry_run)
        else:
            code = _report(plan, dry_run=dry_run)
    raise typer.Exit(code)


def _report_json(plan: UpdatePlan, *, dry_run: bool) -> int:
    """The versioned JSON document on stdout, the warnings on stderr; the exit code as the
    text report's (3 when conflicts are, or would be, left)."""
    import sys

    from mlopsctl.cli._common import stderr
    from mlopsctl.cli._text import printable
    from mlopsctl.reports import dumps, update_report

    code = 3 if plan.conflicts else 0
    for warning in plan.warnings:
        stderr().print(f"warning: {printable(warning)}", markup=False)
    sys.stdout.write(dumps(update_report(plan, dry_run=dry_run, exit_code=code)))
    return code


_LABELS = {
    "created": "created",
    "updated": "updated",
    "merged": "merged",
    "conflict": "CONFLICT",
    "removed": "removed",
    "renamed": "moved",
    "kept-edited": "kept",
    "kept-deleted": "absent",
    "kept-binary": "CONFLICT",
}


def _show(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(map(str, value)) + "]"
    return str(value)


def _escape(text: str, keep: str = "") -> str:
    """``text`` for rich markup, control characters escaped (see ``mlopsctl.cli._text``)."""
    from rich.markup import escape

    from mlopsctl.cli._text import printable

    return escape(printable(text, keep))


def _report(plan: UpdatePlan, *, dry_run: bool) -> int:
    from mlopsctl.cli._common import stderr, stdout

    escape = _escape

    out, err = stdout(), stderr()
    for warning in plan.warnings:
        err.print(f"[yellow]warning:[/] {escape(warning)}")
    if plan.answers_uncommitted:
        out.print("answers: mlopsctl.yaml with your uncommitted edit")
    _print_decisions(out, plan)
    if dry_run:
        diff = plan.file_diff()
        out.print("\n[bold]File changes[/]" + ("" if diff else ": none"))
        if diff:
            out.print(escape(diff, keep="\n\t"), end="", markup=True)
    verb = "would be" if dry_run else ""
    out.print()
    for change in plan.files:
        label = _LABELS[change.action]
        note = ""
        if change.action == "renamed":
            note = " (the generation moved it; your edits went along)"
        elif change.renamed_from and change.action != "kept-deleted":
            note = f" (moved from {change.renamed_from})"
        elif change.action == "kept-edited":
            note = " (edited by you; the component that generated it is off; delete it if unused)"
        elif change.action == "kept-deleted":
            note = " (deleted by you; stays deleted although the new generation changed it)"
        elif change.action == "kept-binary":
            note = " (not text, cannot merge: your version is kept; compare with .mlopsctl/base)"
        out.print(f"  {label:<9} {escape(change.path)}{escape(note)}")
    changed = len(plan.changed)
    if not plan.files and not plan.internal:
        out.print("already up to date: nothing to change")
    elif dry_run:
        out.print(f"dry run: {changed} files {verb} changed; nothing was written")
    else:
        out.print(f"[green]updated[/] {escape(str(plan.destination))}: {changed} files changed")
    if plan.conflicts:
        err.print(
            f"\n[bold red]{'would leave conflicts' if dry_run else 'conflicts'}[/] "
            f"in {len(plan.conflicts)} file{'s' if len(plan.conflicts) != 1 else ''}:"
        )
        for change in plan.conflicts:
            hunks = f"{change.conflicts} conflict{'s' if change.conflicts != 1 else ''}"
            err.print(f"  {escape(change.path)}: {hunks}")
        if not dry_run:
            err.print(f"[bold]hint:[/] {escape(_undo_hint(plan))}")
        return 3
    if not dry_run and changed:
        out.print("review with git diff, then commit")
    return 0


def _undo_hint(plan: UpdatePlan) -> str:
    """How to finish the update, and how to drop it; an uncommitted edit of mlopsctl.yaml (the
    update's input) is kept out of the undo."""
    from mlopsctl.layout import ANSWERS_FILE

    undo = "git checkout -- . && git clean -fd"
    if plan.answers_uncommitted:
        rewritten = any(f.path == ANSWERS_FILE and f.changes_disk for f in plan.files)
        kept = "your edit and the answers this update set" if rewritten else "your edit"
        undo = (
            f"git checkout -- . ':(exclude){ANSWERS_FILE}' && git clean -fd "
            f"(keeps {ANSWERS_FILE} uncommitted, with {kept})"
        )
    return (
        "resolve the <<<<<<< / ======= / >>>>>>> markers and commit; "
        f"to undo the whole update instead: {undo}"
    )


def _print_decisions(out: Console, plan: UpdatePlan) -> None:
    escape = _escape

    versions = [
        f"{name} {old or '?'} -> {new}" for name, (old, new) in plan.versions.items() if old != new
    ]
    if not plan.decisions and not versions:
        out.print("[bold]Decision changes[/]: none")
        return
    out.print("[bold]Decision changes[/]")
    for line in versions:
        out.print(f"  {escape(line)}")
    for d in plan.decisions:
        if d.section == "rules":
            text = f"rule {d.key} {'now fires' if d.new == 'fires' else 'no longer fires'}"
        elif d.section in {"governance", "warnings"}:
            text = f"{d.section}: {'+' if d.new else '-'} {d.key}"
        else:
            text = f"{d.section}.{d.key}: {_show(d.old)} -> {_show(d.new)}"
        out.print(f"  {escape(text)}")
