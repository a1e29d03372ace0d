"""The ``--format`` option of the commands that write a project (``init``, ``update``,
``check``): text for people, or one versioned JSON document (``mlopsctl.reports``) on stdout."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer


class Format(StrEnum):
    text = "text"
    json = "json"


FormatOpt = Annotated[
    Format,
    typer.Option(
        "--format",
        "-f",
        help="text (for people) or json: a versioned report on stdout, the rest on stderr.",
    ),
]
