"""A generated project's recorded state, ``.mlopsctl/state.json``: readable without importing
the renderer (``validate`` reads it on every run)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

STATE_DIR = ".mlopsctl"


def read_state(project: Path) -> dict[str, Any] | None:
    """A project's ``.mlopsctl/state.json``, or None when it is missing or unreadable."""
    try:
        state: dict[str, Any] = json.loads(
            (project / STATE_DIR / "state.json").read_text(encoding="utf-8")
        )
    except (OSError, ValueError):
        return None
    return state
