"""Repositories mlopsctl generates validate clean, and stop doing so when they drift.

Every answer set here, production governance included, must give no finding at all.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mlopsctl.api import generate
from mlopsctl.checks import validate

pytestmark = pytest.mark.slow


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


ANSWER_SETS: dict[str, dict[str, Any]] = {
    "defaults": {},
    "production": {
        "governance_level": "production",
        "maturity_level": 0,
        "scale_requirements": {"rps": 2000, "latency_ms": 80},
    },
    "batch": {"deployment_target": "batch", "scale_requirements": {"data_volume_gb": 500}},
    "no-kubernetes": {"kubernetes": False, "ci_platform": "jenkins"},
    "pytorch-kubeflow": {"framework": "pytorch", "team_size": 12, "existing_stack": ["kubeflow"]},
}


@pytest.fixture(scope="module")
def repos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("generated")
    out = {}
    for name, answers in ANSWER_SETS.items():
        dest = base / name
        generate({"project_name": f"demo-{name}", **answers}, dest)
        out[name] = dest
    return out


@pytest.mark.parametrize("name", sorted(ANSWER_SETS))
def test_generated_repository_validates_clean(name: str, repos: dict[str, Path]) -> None:
    report = validate(repos[name])
    assert [f"{f.path}:{f.line} {f.check} {f.message}" for f in report.findings] == []
    # the repository is one mlopsctl generated: the design checks ran, nothing was skipped
    skipped = [n for n in report.notes if "skipped" in n.message]
    assert skipped == []


def test_cli_process_on_generated_repository(repos: dict[str, Path]) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "mlopsctl", "validate", str(repos["defaults"]), "--format", "json"],
        capture_output=True,
        text=True,
        check=False,
    )
    data = json.loads(proc.stdout)
    assert proc.returncode == 0
    assert data["ok"] is True
    assert data["findings"] == []


def test_edited_answer_is_reported_out_of_sync(repos: dict[str, Path], tmp_path: Path) -> None:
    import shutil

    root = tmp_path / "repo"
    shutil.copytree(repos["defaults"], root)
    answers = root / "mlopsctl.yaml"
    text = answers.read_text()
    assert "latency_ms: 200" in text
    answers.write_text(text.replace("latency_ms: 200", "latency_ms: 40"))
    report = validate(root, select=["MLV401"])
    stale = {f.path for f in report.findings}
    assert ".mlopsctl/design.json" in stale
    assert "mlopsctl.yaml" not in stale  # the edited answers are the source, not a finding


def test_hand_edit_breaking_policy_is_found_but_is_not_out_of_sync(
    repos: dict[str, Path], tmp_path: Path
) -> None:
    import shutil

    root = tmp_path / "repo"
    shutil.copytree(repos["defaults"], root)
    isvc = root / "k8s" / "inferenceservice.yaml"
    text = isvc.read_text()
    assert "allowPrivilegeEscalation: false" in text
    isvc.write_text(
        text.replace("allowPrivilegeEscalation: false", "allowPrivilegeEscalation: true")
    )
    report = validate(root, select=["MLV203", "MLV401"])
    # the user's edit is theirs (update keeps it); only the policy check objects
    assert {(f.check, f.path) for f in report.findings} == {("MLV203", "k8s/inferenceservice.yaml")}


def test_turned_off_component_is_reported(repos: dict[str, Path], tmp_path: Path) -> None:
    import shutil

    root = tmp_path / "repo"
    shutil.copytree(repos["defaults"], root)
    answers = root / "mlopsctl.yaml"
    text = answers.read_text()
    assert "kubernetes: true" in text
    answers.write_text(text.replace("kubernetes: true", "kubernetes: false"))
    found = {(f.path, f.message) for f in validate(root, select=["MLV401"]).findings}
    assert ("k8s/inferenceservice.yaml", "mlopsctl.yaml no longer generates this file") in found


def test_second_run_uses_the_render_cache(
    repos: dict[str, Path], tmp_path: Path, _render_cache: Path
) -> None:
    import shutil

    root = tmp_path / "repo"
    shutil.copytree(repos["batch"], root)
    answers = root / "mlopsctl.yaml"
    answers.write_text(answers.read_text().replace("project_name: demo-batch", "project_name: x"))
    first = validate(root, select=["MLV401"])
    cached = sorted((_render_cache / "mlopsctl" / "render").glob("*.json"))
    assert cached, "the rendered files were cached"
    for path in cached:  # a render would rewrite the entry: make any rewrite visible
        path.touch()
    stamp = {p: p.stat().st_mtime_ns for p in cached}
    second = validate(root, select=["MLV401"])
    assert [(f.path, f.line) for f in second.findings] == [(f.path, f.line) for f in first.findings]
    assert "README.md" in {f.path for f in second.findings}
    assert {p: p.stat().st_mtime_ns for p in cached} == stamp


def test_an_unchanged_generation_is_in_sync_without_rendering(
    repos: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """state.json records the generation's source key: answers, tier floor and mlopsctl as they
    were. While they are the same, generation would write what state.json records: no render."""
    import shutil

    from mlopsctl.checks import sync
    from mlopsctl.layout import read_state, source_key

    root = tmp_path / "repo"
    shutil.copytree(repos["production"], root)
    state = read_state(root)
    assert state is not None
    answers = (root / "mlopsctl.yaml").read_bytes()
    assert state.source == source_key(answers, state.tier_floor)
    assert sorted(state.own_digests()) == [
        ".mlopsctl/answers.schema.json",
        ".mlopsctl/design.json",
    ]
    renders: list[Path] = []
    real = sync._rendered

    def counting(path: Path) -> dict[str, Any]:
        renders.append(path)
        return real(path)

    monkeypatch.setattr(sync, "_rendered", counting)
    monkeypatch.setenv("MLOPSCTL_NO_CACHE", "1")
    assert validate(root, select=["MLV401"]).findings == []
    assert renders == []

    # a hand edit to a file mlopsctl keeps in .mlopsctl/: rendered, and found
    design = root / ".mlopsctl" / "design.json"
    design.write_text(design.read_text().replace('"tier"', '"tier" ', 1))
    found = {f.path for f in validate(root, select=["MLV401"]).findings}
    assert found == {".mlopsctl/design.json"}
    assert len(renders) == 1
    shutil.copy2(repos["production"] / ".mlopsctl" / "design.json", design)

    # another mlopsctl (its code digest differs): rendered, and still in sync
    monkeypatch.setattr("mlopsctl.layout.code_digest", lambda: "another mlopsctl")
    assert validate(root, select=["MLV401"]).findings == []
    assert len(renders) == 2

    # answers edited by hand: rendered, and the files they now generate differently are found
    monkeypatch.undo()
    monkeypatch.setattr(sync, "_rendered", counting)
    (root / "mlopsctl.yaml").write_bytes(answers.replace(b"team_size: 5", b"team_size: 40"))
    assert validate(root, select=["MLV401"]).findings != []
    assert len(renders) == 3
