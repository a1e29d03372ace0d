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


def installed_wheel(tmp_path: Path) -> tuple[Path, Path]:
    """(Python, its site-packages) of a fresh virtual environment holding mlopsctl as built into
    a wheel (not this editable checkout); its dependencies come from the test environment's
    site-packages, added as a plain path so that the editable install's .pth is not read."""
    import subprocess
    import sys
    import venv

    import yaml

    wheels = tmp_path / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheels), str(REPO)],
        check=True,
        timeout=600,
    )
    (wheel,) = wheels.glob("mlopsctl-*.whl")
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    python = env_dir / "bin" / "python"
    purelib = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    site = Path(subprocess.check_output([str(python), "-c", purelib], text=True).strip())
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(site), wheel],
        check=True,
        timeout=600,
    )
    (site / "zz_test_deps.pth").write_text(str(Path(yaml.__file__).resolve().parent.parent) + "\n")
    return python, site


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
