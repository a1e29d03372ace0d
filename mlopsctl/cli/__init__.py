"""The command-line shell: the only package that imports typer or rich, prompts, prints or exits."""

from __future__ import annotations

from typing import NoReturn


def main() -> NoReturn:
    """The console entry point. A Ctrl-C while the command line is still loading ends the
    process as one during a command does: exit 130, a one-line message, nothing written."""
    try:
        from mlopsctl.cli._common import run_app
        from mlopsctl.cli.app import app
    except BaseException as exc:
        if not interrupt_in_chain(exc):
            raise
        import os
        import sys

        sys.stderr.write("interrupted: nothing was written\n")
        sys.stderr.flush()
        os._exit(130)
    run_app(app)


def interrupt_in_chain(exc: BaseException) -> bool:
    """Whether a Ctrl-C or SIGTERM lies behind ``exc``: Python wraps one that lands while a class
    body is being set up (during an import) in a RuntimeError."""
    seen: set[int] = set()
    node: BaseException | None = exc
    while node is not None and id(node) not in seen:
        if isinstance(node, KeyboardInterrupt):
            return True
        seen.add(id(node))
        node = node.__cause__ or node.__context__
    return False
