"""``mlopsctl rules list`` and ``mlopsctl rules explain ID``: read the rule catalog."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer


class Format(StrEnum):
    text = "text"
    json = "json"


rules_app = typer.Typer(
    name="rules",
    help="Read the rule catalog: what each rule decides, why, and how to change the outcome.",
    no_args_is_help=True,
    rich_markup_mode=None,
)


def register(app: typer.Typer) -> None:
    app.add_typer(rules_app, name="rules")


@rules_app.command("list")
def list_rules(
    category: Annotated[
        str | None, typer.Option("--category", "-c", help="Only rules of this category.")
    ] = None,
    format_: Annotated[Format, typer.Option("--format", "-f", help="text or json.")] = Format.text,
) -> None:
    """List every rule: id, name, category and summary. Piped or redirected: one rule a line,
    tab-separated, no header; no value is ever cut."""
    from mlopsctl.cli._common import errors_to_exit_codes

    with errors_to_exit_codes():
        from mlopsctl.errors import UsageError
        from mlopsctl.rules.describe import all_rules

        rules = all_rules()
        if category is not None:
            known = sorted({r.category for r in rules})
            if category not in known:
                raise UsageError(
                    f"unknown category {category!r}", hint="use one of " + ", ".join(known)
                )
            rules = tuple(r for r in rules if r.category == category)
        if format_ is Format.json:
            import json

            data = [r.model_dump(mode="json", by_alias=True, exclude_none=True) for r in rules]
            typer.echo(json.dumps(data, indent=2))
            return
        from mlopsctl.cli._table import print_listing

        print_listing(
            ("id", "name", "category", "summary"),
            [(r.id, r.name, r.category, r.summary) for r in rules],
        )


@rules_app.command("explain")
def explain(
    rule_id: Annotated[str, typer.Argument(metavar="ID", help="A rule id (SRV001) or name.")],
    format_: Annotated[Format, typer.Option("--format", "-f", help="text or json.")] = Format.text,
) -> None:
    """Explain one rule: when it fires (or its formula), what it decides, why, remediation,
    references, examples."""
    from mlopsctl.cli._common import errors_to_exit_codes

    with errors_to_exit_codes():
        from mlopsctl.errors import UsageError
        from mlopsctl.rules.describe import explain_markdown, find_rule

        rule = find_rule(rule_id)
        if rule is None:
            raise UsageError(
                f"no rule {rule_id!r}", hint="run `mlopsctl rules list` to see every rule id"
            )
        if format_ is Format.json:
            import json

            typer.echo(
                json.dumps(rule.model_dump(mode="json", by_alias=True, exclude_none=True), indent=2)
            )
            return
        typer.echo(explain_markdown(rule), nl=False)
