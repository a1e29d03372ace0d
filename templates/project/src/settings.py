"""Project settings: every number comes from config/project.json, generated from the design."""

from __future__ import annotations

import getpass
import json
import os
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CONFIG = json.loads((ROOT / "config" / "project.json").read_text(encoding="utf-8"))
TRACKING = json.loads((ROOT / "config" / "experiment-tracking.json").read_text(encoding="utf-8"))


def tracking_uri() -> str:
    """The environment wins (production server); otherwise the embedded SQLite store."""
    uri: str = os.environ.get("MLFLOW_TRACKING_URI") or TRACKING["local"]["tracking_uri"]
    return uri


def login_name() -> str:
    """Who runs this: the login name, or ``uid N`` for a uid with no passwd entry and no
    LOGNAME/USER (a restricted pod, some CI runners), where ``getpass.getuser()`` raises."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid {os.getuid()}"


def output_path(name: str) -> Path:
    """Where a job writes its report ``name``: MLOPS_OUTPUT_DIR when set (the project image sets
    it to a directory on the pod's writable /tmp volume), else the project root."""
    directory = Path(os.environ.get("MLOPS_OUTPUT_DIR") or ROOT)
    directory.mkdir(parents=True, exist_ok=True)
    return directory / name


def thresholds() -> dict[str, Any]:
    result: dict[str, Any] = CONFIG["thresholds"]
    return result
