from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mlopsctl.rehearse import Handoff, Rehearsal
from mlopsctl.rehearse.stage import Stage
from mlopsctl.requirements import Requirements

REPO = Path(__file__).resolve().parent.parent
# The default profile's project name, as the rehearsal tests know it.
DEFAULT_NAME = "rehearsed"
# The xdist group of every test that uses the default profile's rehearsal: ``--dist loadgroup``
# gives a group to one worker, so the session fixture below runs once in a run.
REHEARSAL_GROUP = "rehearse"


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


@pytest.fixture(scope="session")
def default_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The default profile generated (tests that read its files; every worker makes its own)."""
    from mlopsctl.api import generate

    root = tmp_path_factory.mktemp("default-project") / DEFAULT_NAME
    generate(make_requirements(project_name=DEFAULT_NAME), root)
    return root


@pytest.fixture(scope="session")
def default_rehearsal(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Stage, Rehearsal]]:
    """One rehearsal of the default profile, in a project of its own, its services kept running
    for the tests that use it: every component but the CI's jobs (tests/test_rehearse_ci.py
    runs those). Only tests in xdist group :data:`REHEARSAL_GROUP` may use it (checked at
    collection), so that one worker rehearses the default profile once."""
    from mlopsctl.api import generate
    from mlopsctl.rehearse.runner import run_components, session

    root = tmp_path_factory.mktemp("rehearse-default") / DEFAULT_NAME
    generate(make_requirements(project_name=DEFAULT_NAME), root)
    with session(root) as stage:
        yield stage, run_components(stage, skip=("ci",))


def handoff(report: Rehearsal, component: str, name: str) -> Handoff:
    """The report's handoff ``component: name`` (the test fails naming those there are)."""
    found = [h for h in report.handoffs if h.component == component and h.name == name]
    assert found, f"no handoff {component}: {name} in {[h.name for h in report.handoffs]}"
    return found[0]


def explain(report: Rehearsal) -> str:
    """The report's failed handoffs, each with what was checked and the end of its detail."""
    return "\n".join(
        f"{h.passed}  {h.component}: {h.name}\n  {h.checked}\n  {h.detail[-3000:]}"
        for h in report.handoffs
        if not h.passed
    )


def xdist_group(item: pytest.Item) -> str | None:
    marker = item.get_closest_marker("xdist_group")
    if marker is None:
        return None
    return str(marker.args[0] if marker.args else marker.kwargs.get("name"))


def outside_the_rehearsal_group(items: list[pytest.Item]) -> list[str]:
    """The tests that use the default rehearsal but are not in its xdist group: each would
    rehearse the default profile again on whichever worker runs it."""
    return [
        item.nodeid
        for item in items
        if "default_rehearsal" in getattr(item, "fixturenames", ())
        and xdist_group(item) != REHEARSAL_GROUP
    ]


@pytest.fixture(autouse=True, scope="session")
def _interrupts_delivered() -> None:
    """The interrupt tests send SIGINT to this process and to mlopsctl processes it starts. A
    test run started in the background by a shell without job control (``make test &`` in a
    script) inherits SIGINT ignored, and so would every process it starts: Python's own handler
    is put back, so that Ctrl-C behaves as it does in a terminal."""
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def ungrouped(items: list[pytest.Item]) -> list[str]:
    """The tests marked with an xdist group whose node id lacks the group's suffix: where
    ``--dist loadgroup`` did not take effect (the suffix is how the scheduler groups them)."""
    return [
        item.nodeid
        for item in items
        if (group := xdist_group(item)) is not None and not item.nodeid.endswith(f"@{group}")
    ]


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """``long`` tests first: each worker starts one while the others share the rest, instead of
    the run ending with workers idle beside the last long test. A test that would rehearse the
    default profile a second time (outside its xdist group), or a worker whose grouping did not
    take effect, stops the run."""
    if getattr(config.option, "loadgroup", False) and (lost := ungrouped(items)):
        raise pytest.UsageError(
            "--dist loadgroup did not group these tests (their node ids lack the group suffix; "
            f"see pytest-dev/pytest-xdist#1386 and the pytest pin in pyproject.toml): {lost[:3]}"
        )
    outside = outside_the_rehearsal_group(items)
    if outside:
        raise pytest.UsageError(
            f"tests using default_rehearsal must be marked xdist_group({REHEARSAL_GROUP!r}) so "
            "that one worker rehearses the default profile once: " + ", ".join(outside)
        )
    items.sort(key=lambda item: item.get_closest_marker("long") is None)
