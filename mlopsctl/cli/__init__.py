"""The command-line shell: the only package that imports typer or rich, prompts, prints or exits."""

from __future__ import annotations

from typing import NoReturn


def main() -> NoReturn:
    """The console entry point. A Ctrl-C while the command line is still loading ends the
    process as one during a command does: exit 130, a one-line message, nothing written."""
    try:
        from mlopsctl.cli._common import run_app
        from mlopsctl.cli.app import app
    except KeyboardInterrupt:
        import os
        import sys

        sys.stderr.write("interrupted: nothing was written\n")
        sys.stderr.flush()
        os._exit(130)
    run_app(app)
