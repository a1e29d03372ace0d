"""``mlopsctl validate [DIR]``: lint a generated or hand-edited MLOps repository."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from mlopsctl.checks import Report


class Format(StrEnum):
    text = "text"
    json = "json"
    sarif = "sarif"


def register(app: typer.Typer) -> None:
    app.command(
        "validate",
        help="Check a repository offline: syntax, schemas (Kubernetes, KServe, Grafana, "
        "Prometheus, CI, KFP), security and governance policies, cross-file consistency, and "
        "whether generated files still match mlopsctl.yaml. Exit 0 clean, 1 findings, 2 usage.",
    )(validate_cli)


def validate_cli(
    directory: Annotated[
        Path,
        typer.Argument(help="Repository root to check.", file_okay=False),
    ] = Path("."),
    output_format: Annotated[
        Format, typer.Option("--format", "-f", help="Output format.")
    ] = Format.text,
    select: Annotated[
        list[str] | None,
        typer.Option(
            "--select",
            help="Run only these checks (id, name or id prefix such as MLV2); repeatable or "
            "comma-separated.",
        ),
    ] = None,
    ignore: Annotated[
        list[str] | None,
        typer.Option("--ignore", help="Skip these checks (id, name or prefix); repeatable."),
    ] = None,
    crd: Annotated[
        list[Path] | None,
        typer.Option(
            "--crd",
            help="A CustomResourceDefinition (kubectl get crd NAME -o yaml) to check custom "
            "resources against; repeatable.",
            dir_okay=False,
        ),
    ] = None,
    exclude: Annotated[
        list[str] | None,
        typer.Option("--exclude", help="Skip paths matching this glob (relative); repeatable."),
    ] = None,
    list_checks: Annotated[
        bool, typer.Option("--list-checks", help="List every check and exit.")
    ] = False,
    explain: Annotated[
        str | None,
        typer.Option("--explain", metavar="CHECK", help="Explain one check (id or name) and exit."),
    ] = None,
    color: Annotated[
        bool | None,
        typer.Option(
            "--color/--no-color",
            help="Colour the text output (default: on a terminal, unless NO_COLOR is set).",
        ),
    ] = None,
) -> None:
    from mlopsctl.cli._common import errors_to_exit_codes

    with errors_to_exit_codes():
        try:
            from mlopsctl.api import validate
            from mlopsctl.checks import catalog

            if list_checks:
                from mlopsctl.cli.checks import print_catalog

                print_catalog(list(catalog()), as_json=output_format is not Format.text)
                raise typer.Exit(0)
            if explain is not None:
                from mlopsctl.cli.checks import find_check, print_explanation
                from mlopsctl.errors import UsageError

                found = find_check(explain)
                if found is None:
                    raise UsageError(
                        f"--explain {explain.strip()}: no check has that id or name",
                        hint="mlopsctl checks list shows every check",
                    )
                print_explanation(found)
                raise typer.Exit(0)
            report = validate(
                directory,
                select=_split(select),
                ignore=_split(ignore),
                crd_files=crd,
                exclude=exclude,
            )
            if output_format is Format.json:
                from mlopsctl.checks._engine import dumps, report_dict

                typer.echo(dumps(report_dict(report)), nl=False)
            elif output_format is Format.sarif:
                from mlopsctl.checks._engine import dumps
                from mlopsctl.checks.sarif import sarif_log

                typer.echo(dumps(sarif_log(report)), nl=False)
            else:
                _print_text(report, color)
        except BrokenPipeError:
            # the reader went away (`| head`): not an error of ours; keep Python quiet at exit
            import os
            import sys

            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            raise typer.Exit(1) from None
    raise typer.Exit(0 if report.ok else 1)


def _split(values: list[str] | None) -> list[str] | None:
    if not values:
        return None
    return [v.strip() for value in values for v in value.split(",") if v.strip()]


def _print_text(report: Report, color: bool | None) -> None:
    from rich.markup import escape as markup_escape

    from mlopsctl.cli._common import stderr, stdout
    from mlopsctl.cli._text import printable

    def escape(text: str) -> str:
        return markup_escape(printable(text))

    console = stdout(color)
    current = None
    for f in report.findings:
        if f.path != current:
            if current is not None:
                console.print()
            console.print(f"[bold]{escape(f.path)}[/]")
            current = f.path
        where = f"{f.path}:{f.line}" if f.line else f.path
        style = "red" if f.severity == "error" else "yellow"
        remedy = f"  [dim]({escape(f.remediation)})[/]" if f.remediation else ""
        console.print(f"{escape(where)}  [{style} bold]{f.check}[/]  {escape(f.message)}{remedy}")
    if report.findings:
        console.print()
    err = stderr(color)
    grouped: dict[str, list[str]] = {}
    for n in report.notes:
        grouped.setdefault(n.message, []).append(n.check)
    for message, checks in grouped.items():
        err.print(f"[cyan]note:[/] {', '.join(checks)}  {escape(message)}")
    summary: dict[str, Any] = {
        "findings": len(report.findings),
        "files": report.files_checked,
        "checks": len(report.checks),
    }
    extra = f", {report.suppressed} suppressed" if report.suppressed else ""
    if report.ok:
        console.print(
            f"[green]ok:[/] {summary['files']} files, {summary['checks']} checks, "
            f"no findings{extra}"
        )
    else:
        plural = "s" if summary["findings"] != 1 else ""
        files = len({f.path for f in report.findings})
        console.print(
            f"[red]{summary['findings']} finding{plural}[/] in {files} file"
            f"{'s' if files != 1 else ''} ({summary['files']} files, {summary['checks']} "
            f"checks{extra})"
        )
