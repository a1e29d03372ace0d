"""The ``mlopsctl`` command. Command modules are imported only when their command runs."""

from __future__ import annotations

from typing import Annotated

import typer

from mlopsctl import __version__

app = typer.Typer(
    name="mlopsctl",
    help="Turn MLOps requirements into an explained stack decision and a working repository.",
    no_args_is_help=True,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"mlopsctl {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Show the version and exit."
        ),
    ] = False,
) -> None:
    """Turn MLOps requirements into an explained stack decision and a working repository."""


from mlopsctl.cli import init as _init  # noqa: E402

_init.register(app)
from mlopsctl.cli import assess as _assess  # noqa: E402

_assess.register(app)
from mlopsctl.cli import rules as _rules  # noqa: E402

_rules.register(app)
from mlopsctl.cli import checks as _checks  # noqa: E402

_checks.register(app)
from mlopsctl.cli import update as _update  # noqa: E402

_update.register(app)
from mlopsctl.cli import validate as _validate  # noqa: E402

_validate.register(app)
from mlopsctl.cli import generate_tiers as _generate_tiers  # noqa: E402

_generate_tiers.register(app)
from mlopsctl.cli import check as _check  # noqa: E402

_check.register(app)
from mlopsctl.cli import doctor as _doctor  # noqa: E402

_doctor.register(app)
from mlopsctl.cli import rehearse as _rehearse  # noqa: E402

_rehearse.register(app)
