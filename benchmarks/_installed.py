"""Measure mlopsctl as an installed package runs: with its bytecode compiled.

``pip install`` compiles every module of a wheel; an editable install (this checkout) compiles
each module on first import, and not at all where ``PYTHONDONTWRITEBYTECODE`` is set, which
would add the compilation of every mlopsctl module to every measured run.
"""

from __future__ import annotations

import compileall
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "mlopsctl"


def compile_bytecode() -> None:
    compileall.compile_dir(str(PACKAGE), quiet=1)
