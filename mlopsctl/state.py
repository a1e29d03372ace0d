"""A generated project's recorded state, ``.mlopsctl/state.json``: readable without importing
the renderer (``validate`` reads it on every run)."""

from __future__ import annotations

import hashlib
import json
import os
from functools import lru_cache
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


@lru_cache(maxsize=1)
def code_digest() -> str:
    """A digest of everything generation depends on besides the answers: mlopsctl's code and
    data (validate's own checks and schemas excepted) and the template."""
    pkg = Path(__file__).resolve().parent
    # where mlopsctl.render.template_dir() looks, without importing the renderer
    templates = pkg / "templates" if (pkg / "templates").is_dir() else pkg.parent / "templates"
    h = hashlib.sha256()
    roots = [(pkg, ("checks", "schemas", "templates")), (templates, ())]
    for root, skip in roots:
        for dirpath, dirnames, filenames in os.walk(root):
            rel_dir = Path(dirpath).relative_to(root)
            dirnames[:] = sorted(
                d for d in dirnames if d != "__pycache__" and not (rel_dir == Path() and d in skip)
            )
            for name in sorted(filenames):
                if name.endswith((".pyc", ".pyo")):
                    continue
                path = Path(dirpath) / name
                h.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()


def source_key(answers: bytes, tier_floor: str | None) -> str:
    """What one generation is a function of: the answers file as written, the tier floor of the
    command that made the project, and mlopsctl itself. Generation is deterministic, so two
    generations with the same key write the same files."""
    floor = (tier_floor or "").encode()
    return hashlib.sha256(answers + b"\0" + floor + b"\0" + code_digest().encode()).hexdigest()
