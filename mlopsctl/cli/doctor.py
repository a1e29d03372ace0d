"""``mlopsctl doctor``: which optional tools and schemas are present, at which version, and what
each missing one turns off."""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from mlopsctl.doctor import Diagnosis


class Format(StrEnum):
    text = "text"
    json = "json"


def register(app: typer.Typer) -> None:
    app.command(
        "doctor",
        help="Show the optional tools present, their versions, and what a missing one turns "
        "off. The tools: promtool, the kfp compiler, git, and the Kubernetes, CI, KServe, "
        "Grafana and answers schemas; for each missing one, the validate checks (ids) or "
        "commands it turns off and how to install it. Exit 0, or with --strict 1 when one is "
        "missing.",
    )(doctor)


def doctor(
    format_: Annotated[Format, typer.Option("--format", "-f", help="text or json.")] = Format.text,
    strict: Annotated[
        bool, typer.Option("--strict", help="Exit 1 when a tool or schema is missing.")
    ] = False,
) -> None:
    from mlopsctl.cli._common import errors_to_exit_codes

    with errors_to_exit_codes():
        from mlopsctl.doctor import diagnose

        diagnosis = diagnose()
        if format_ is Format.json:
            import json

            typer.echo(json.dumps(diagnosis.as_dict(), indent=2))
        else:
            _print_text(diagnosis)
    raise typer.Exit(1 if strict and diagnosis.missing else 0)


def _print_text(diagnosis: Diagnosis) -> None:
    from rich.markup import escape

    from mlopsctl.cli._common import stdout
    from mlopsctl.cli._text import printable

    out = stdout()
    about = diagnosis.as_dict()
    out.print(
        f"mlopsctl {about['mlopsctl']}, Python {about['python']} "
        f"({escape(printable(about['executable']))})\n"
    )
    width = max(len(t.name) for t in diagnosis.tools)
    for t in diagnosis.tools:
        name = t.name.ljust(width)
        uses = ", ".join([*t.checks, *t.commands])
        indent = " " * (width + 11)
        if t.present:
            version = escape(printable(t.version or "present"))
            out.print(f"[green]ok[/]       {name}  {version}  [dim](for {uses})[/]")
            if t.location:
                out.print(f"{indent}[dim]{escape(printable(t.location))}[/]")
        else:
            out.print(f"[red bold]missing[/]  {name}  {escape(printable(t.detail or ''))}")
            out.print(f"{indent}without it ({uses}): {escape(t.without)}")
            out.print(f"{indent}install: {escape(t.install)}")
    missing = diagnosis.missing
    if missing:
        names = ", ".join(t.name for t in missing)
        out.print(f"\n{len(missing)} missing: {names}; validate notes each check it skips")
    else:
        out.print("\nall present: validate runs every check in full")
