"""Listings (``rules list``, ``checks list``) that never cut a value a user may need to type.

Every column but the last holds such values (ids, names, categories): they are printed whole,
never cut with an ellipsis nor folded across lines. The last column is prose and wraps.

- Not at a terminal (a pipe, a file): one line per row, the values separated by tabs, no header,
  whatever the width (``COLUMNS``) says, for ``cut -f1``, ``grep`` and ``awk -F'\\t'``.
- At a terminal wide enough: a table whose last column wraps.
- At a narrower terminal: each row's values on one line, its prose indented below it.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

MIN_PROSE = 30  # the narrowest the last column of a table may get before rows are stacked


def print_listing(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    from mlopsctl.cli._common import stdout
    from mlopsctl.cli._text import printable

    rows = [[printable(value) for value in row] for row in rows]
    if not sys.stdout.isatty():
        # through sys.stdout: a closed pipe (``| head``) is then exit 74 with a message
        sys.stdout.write("".join("\t".join(row) + "\n" for row in rows))
        return
    console = stdout()
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(headers[:-1])]
    # a column is its values' width plus one blank either side and a rule between columns
    if sum(w + 3 for w in widths) + MIN_PROSE <= console.width:
        from rich.table import Table
        from rich.text import Text

        table = Table(show_edge=False)
        for header, width in zip(headers[:-1], widths, strict=True):
            table.add_column(header, no_wrap=True, min_width=width)
        table.add_column(headers[-1], overflow="fold")
        for row in rows:
            table.add_row(*(Text(value) for value in row))
        console.print(table)
        return
    import textwrap

    prose = max(console.width - 4, MIN_PROSE)
    for row in rows:
        console.print("  ".join(row[:-1]), markup=False, style="bold")
        console.print(
            textwrap.fill(row[-1], width=prose, initial_indent="    ", subsequent_indent="    "),
            markup=False,
        )
