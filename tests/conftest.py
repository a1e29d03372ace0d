from __future__ import annotations

import signal
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


@pytest.fixture(autouse=True, scope="session")
def _interrupts_delivered() -> None:
    """The interrupt tests send SIGINT to this process and to mlopsctl processes it starts. A
    test run started in the background by a shell without job control (``make test &`` in a
    script) inherits SIGINT ignored, and so would every process it starts: Python's own handler
    is put back, so that Ctrl-C behaves as it does in a terminal."""
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """``long`` tests first: each worker starts one while the others share the rest, instead of
    the run ending with workers idle beside the last long test."""
    items.sort(key=lambda item: item.get_closest_marker("long") is None)
