"""Every check has a passing and a failing fixture, and behaves as they say.

A fixture is a tiny repository under ``tests/fixtures/checks/<ID>/{pass,fail}``. An optional
``fixture.yaml`` in it says which CRD files to pass (``crds: [...]``) or asks for a repository to
be generated first (``generate: {answers: {...}, then_set: {...}}``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlopsctl.checks import catalog, validate
from mlopsctl.checks._model import Report

FIXTURES = Path(__file__).parent / "fixtures" / "checks"


@pytest.fixture(autouse=True, scope="module")
def _render_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The in-sync check caches rendered files; keep that cache inside the test's temp dir."""
    import os

    cache = tmp_path_factory.mktemp("cache")
    old = os.environ.get("XDG_CACHE_HOME")
    os.environ["XDG_CACHE_HOME"] = str(cache)
    yield cache
    if old is None:
        os.environ.pop("XDG_CACHE_HOME", None)
    else:
        os.environ["XDG_CACHE_HOME"] = old


IDS = [c.id for c in catalog()]


def run_fixture(check: str, side: str, tmp_path: Path, also: tuple[str, ...] = ()) -> Report:
    root = FIXTURES / check / side
    meta: dict[str, Any] = {}
    if (root / "fixture.yaml").is_file():
        meta = yaml.safe_load((root / "fixture.yaml").read_text()) or {}
    if "generate" in meta:
        from mlopsctl.api import generate

        spec = meta["generate"]
        dest = tmp_path / "repo"
        generate(spec["answers"], dest)
        answers = dest / "mlopsctl.yaml"
        text = answers.read_text()
        for key, value in (spec.get("then_set") or {}).items():
            text, n = re.subn(rf"^{key}: .*$", f"{key}: {value}", text, flags=re.MULTILINE)
            assert n == 1, f"{key} not in the generated mlopsctl.yaml"
        answers.write_text(text)
        root = dest
    crds = [FIXTURES / check / side / c for c in meta.get("crds", [])]
    return validate(root, select=[check, *also], crd_files=crds, exclude=["fixture.yaml", "crds"])


def test_every_check_has_a_passing_and_a_failing_fixture() -> None:
    missing = [
        f"{check}/{side}"
        for check in IDS
        for side in ("pass", "fail")
        if not (FIXTURES / check / side).is_dir() or not any((FIXTURES / check / side).iterdir())
    ]
    assert not missing, f"checks without fixtures: {missing}"
    stray = sorted(p.name for p in FIXTURES.iterdir() if p.name not in IDS)
    assert not stray, f"fixtures for unknown checks: {stray}"


def _params(side: str) -> list[Any]:
    slow = {"MLV401", "MLV107"}
    return [
        pytest.param(c, marks=[pytest.mark.slow] if c in slow else [], id=f"{c}-{side}")
        for c in IDS
    ]


@pytest.mark.parametrize("check", _params("pass"))
def test_passing_fixture_has_no_finding(check: str, tmp_path: Path) -> None:
    report = run_fixture(check, "pass", tmp_path, also=("MLV001",))
    assert report.findings == [], "a passing fixture has no findings and parses"
    skipped = [n for n in report.notes if n.check == check]
    assert not skipped, f"{check} did not run on its passing fixture: {skipped}"


@pytest.mark.parametrize("check", _params("fail"))
def test_failing_fixture_has_findings(check: str, tmp_path: Path) -> None:
    report = run_fixture(check, "fail", tmp_path)
    findings = [f for f in report.findings if f.check == check]
    assert findings, f"{check} found nothing in its failing fixture; notes: {report.notes}"
    for f in findings:
        assert f.message and f.remediation
        assert f.line is None or f.line >= 1
    assert {f.check for f in report.findings} == {check}, "only the selected check runs"
