"""The command-line shell: the only package that imports typer or rich, prompts, prints or exits."""

from __future__ import annotations

from typing import NoReturn


def main() -> NoReturn:
    """The console entry point. A Ctrl-C while the command line is still loading ends the
    process as one during a command does: exit 130, a one-line message, nothing written.

    ``mlopsctl --version`` alone is answered before the command line is built: it prints what
    the ``--version`` option prints, for scripts that call it often."""
    import sys

    if sys.argv[1:] == ["--version"]:
        import os

        from mlopsctl import __version__

        try:
            sys.stdout.write(f"mlopsctl {__version__}\n")
            sys.stdout.flush()
        except (OSError, ValueError, AttributeError) as exc:  # closed, full or missing stdout
            reason = getattr(exc, "strerror", None) or "it is closed"
            sys.stderr.write(f"error: cannot write to standard output: {reason}\n")
            os._exit(74)
        os._exit(0)
    try:
        from mlopsctl.cli._common import run_app
        from mlopsctl.cli.app import app
    except BaseException as exc:
        if not interrupt_in_chain(exc):
            raise
        import os

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
