"""``mlopsctl checks list`` and ``mlopsctl checks explain ID``: read the catalog of checks
``mlopsctl validate`` runs."""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from mlopsctl.checks._model import CheckSpec


class Format(StrEnum):
    text = "text"
    json = "json"


checks_app = typer.Typer(
    name="checks",
    help="Read the checks of `mlopsctl validate`: what each one finds, why, and how to fix it.",
    no_args_is_help=True,
    rich_markup_mode=None,
)


def register(app: typer.Typer) -> None:
    app.add_typer(checks_app, name="checks")


@checks_app.command("list")
def list_checks(
    category: Annotated[
        str | None, typer.Option("--category", "-c", help="Only checks of this category.")
    ] = None,
    format_: Annotated[Format, typer.Option("--format", "-f", help="text or json.")] = Format.text,
) -> None:
    """List every check: id, name, category and title. Piped or redirected: one check a line,
    tab-separated, no header; no value is ever cut."""
    from mlopsctl.cli._common import errors_to_exit_codes

    with errors_to_exit_codes():
        from mlopsctl.checks import catalog
        from mlopsctl.errors import UsageError

        specs = list(catalog())
        if category is not None:
            known = sorted({s.category for s in specs})
            if category not in known:
                raise UsageError(
                    f"unknown category {category!r}", hint="use one of " + ", ".join(known)
                )
            specs = [s for s in specs if s.category == category]
        print_catalog(specs, as_json=format_ is Format.json)


@checks_app.command("explain")
def explain(
    check_id: Annotated[str, typer.Argument(metavar="ID", help="A check id (MLV203) or name.")],
    format_: Annotated[Format, typer.Option("--format", "-f", help="text or json.")] = Format.text,
) -> None:
    """Explain one check: what it finds, why it matters, how to fix it, references."""
    from mlopsctl.cli._common import errors_to_exit_codes

    with errors_to_exit_codes():
        from mlopsctl.errors import UsageError

        spec = find_check(check_id)
        if spec is None:
            raise UsageError(
                f"no check {check_id.strip()!r}",
                hint="run `mlopsctl checks list` to see every check id",
            )
        if format_ is Format.json:
            from mlopsctl.checks._engine import dumps

            typer.echo(dumps(spec.as_dict()), nl=False)
            return
        print_explanation(spec)


def find_check(wanted: str) -> CheckSpec | None:
    """The check with the id (any case) or name ``wanted``."""
    from mlopsctl.checks import catalog

    wanted = wanted.strip()
    return next((s for s in catalog() if wanted.upper() == s.id or wanted == s.name), None)


def print_catalog(specs: list[CheckSpec], *, as_json: bool) -> None:
    if as_json:
        from mlopsctl.checks._engine import dumps

        typer.echo(dumps([s.as_dict() for s in specs]), nl=False)
        return
    from mlopsctl.cli._table import print_listing

    print_listing(
        ("id", "name", "category", "title"), [(s.id, s.name, s.category, s.title) for s in specs]
    )


def print_explanation(spec: CheckSpec) -> None:
    import textwrap

    def para(text: str) -> str:
        return textwrap.fill(text, width=88, initial_indent="  ", subsequent_indent="  ")

    typer.echo(f"{spec.id} {spec.name} ({spec.category}, {spec.severity})")
    typer.echo(f"\n{spec.title}.\n\nWhy:\n{para(spec.rationale)}\n\nFix:\n{para(spec.remediation)}")
    typer.echo("\nReferences:")
    for r in spec.references:
        typer.echo(f"  {r.title}: {r.url}")
