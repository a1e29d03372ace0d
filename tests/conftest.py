from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mlopsctl.requirements import Requirements

REPO = Path(__file__).resolve().parent.parent


def make_requirements(**overrides: Any) -> Requirements:
    """Defaults with the given answers on top (nested mappings replace whole sub-objects)."""
    data = Requirements().model_dump()
    data.update(overrides)
    return Requirements.model_validate(data)


@pytest.fixture
def repo_root() -> Path:
    return REPO
