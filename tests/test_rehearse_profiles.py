"""The rehearsal across the profile matrix: each profile generated from its answers (``--set``
lists, one table) and rehearsed once (module fixture, one profile at a time), every component of
the rehearsal that applies to it asserted passed, whichever components ``runner._components``
holds, and at least a tracking server (the Kubernetes manifest's or the compose file's) and the
entry points among them.

Where each profile is rehearsed: the default's every component in tests/test_rehearse.py; the CI
component (every job of the generated CI in a fresh clone, the longest) for the default's GitHub
workflows and the GitLab and Jenkins variants in tests/test_rehearse_ci.py, the variants' other
files being the default's; every other profile here, with all its components but the CI. The
frameworks the project's MLServer runtime serves are spread over the served profiles: the
default is scikit-learn, the fraud profile XGBoost, the hybrid one LightGBM.

What profiles share: the rehearsal's cache (``MLOPSCTL_REHEARSE_CACHE``, default
/var/cache/mlopsctl/rehearse) holds one virtual environment per distinct set of requirements, so
profiles whose images install the same packages build them once, and later runs (CI keeps the
cache between runs where the machine does) build none. Each profile starts its own PostgreSQL and
S3 server: they start in seconds, and a rehearsal's state (registered models, aliases) must not
leak into the next profile's.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from mlopsctl.cli.app import app
from mlopsctl.rehearse import Rehearsal, runner
from mlopsctl.rehearse.runner import run_components, session
from mlopsctl.rehearse.stage import Stage

# id -> (generating command, --set answers, what the profile is about in its design).
PROFILES: dict[str, tuple[str, list[str], dict[str, Any]]] = {
    "default": ("init", [], {"tier": "T2", "serving": "kserve"}),
    "fraud-tier3-progressive": (
        "lifecycle",
        [
            "project_name=fraud-detection",
            "description=Scores card transactions for fraud",
            "governance_level=production",
            "framework=xgboost",
            "scale_requirements.rps=500",
            "scale_requirements.latency_ms=150",
        ],
        {"tier": "T3", "rollout": "progressive", "serving": "kserve", "framework": "xgboost"},
    ),
    "batch-spark": (
        "init",
        ["deployment_target=batch", "scale_requirements.data_volume_gb=100"],
        {"batch_engine": "spark", "serving": "none"},
    ),
    "hybrid": (
        "init",
        ["deployment_target=hybrid", "framework=lightgbm"],
        {
            "deployment_pattern": "hybrid",
            "serving": "kserve",
            "batch_engine": "cronjob",
            "framework": "lightgbm",
        },
    ),
    "on-prem-compose": ("init", ["kubernetes=false"], {"serving": "mlflow", "orchestration": "ci"}),
    "gitlab": ("init", ["ci_platform=gitlab-ci"], {"ci_platform": "gitlab-ci"}),
    "jenkins": ("init", ["ci_platform=jenkins"], {"ci_platform": "jenkins"}),
}
# The components that stand for the tracking server; one of them applies to every profile.
TRACKING = ("tracking-server", "compose")


def _generate(root: Path, profile: str) -> Path:
    command, sets, _ = PROFILES[profile]
    project = root / profile
    args = [command, str(project), "--defaults", "--yes"]
    for option in sets:
        args += ["--set", option]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    return project


def _design(project: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((project / ".mlopsctl/design.json").read_text())
    return loaded


@pytest.mark.parametrize("profile", PROFILES)
def test_each_profile_is_what_the_matrix_says(tmp_path: Path, profile: str) -> None:
    """The answers give the design the profile stands for (the matrix rehearses what it says)."""
    design = _design(_generate(tmp_path, profile))
    requirements = design["requirements"]
    stack = {
        **design["stack"],
        "tier": design["tier"],
        "ci_platform": requirements["ci_platform"],
        "framework": requirements["framework"],
    }
    expected = PROFILES[profile][2]
    assert {k: stack[k] for k in expected} == expected


# Rehearsed elsewhere (see the module docstring).
ELSEWHERE = ("default", "gitlab", "jenkins")


@pytest.fixture(scope="module", params=[p for p in PROFILES if p not in ELSEWHERE])
def rehearsed(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, Stage, Rehearsal]]:
    profile: str = request.param
    project = _generate(tmp_path_factory.mktemp("profiles"), profile)
    with session(project) as stage:
        yield profile, stage, run_components(stage, skip=("ci",))


def _explain(report: Rehearsal) -> str:
    return "\n".join(
        f"{h.passed}  {h.component}: {h.name}\n  {h.checked}\n  {h.detail[-3000:]}"
        for h in report.handoffs
        if not h.passed
    )


def _applicable(stage: Stage) -> list[str]:
    return [spec.name for spec in runner._components() if spec.applies(stage)]


@pytest.mark.slow
@pytest.mark.xdist_group("rehearse-b")
def test_every_component_that_applies_passes(rehearsed: tuple[str, Stage, Rehearsal]) -> None:
    profile, stage, report = rehearsed
    applicable = [name for name in _applicable(stage) if name != "ci"]
    failed = [name for name in applicable if not report.component_passed(name)]
    assert not failed, f"{profile}: {failed} did not pass\n{_explain(report)}"
    assert report.passed, _explain(report)


@pytest.mark.slow
@pytest.mark.xdist_group("rehearse-b")
def test_a_tracking_server_and_the_entry_points_are_rehearsed(
    rehearsed: tuple[str, Stage, Rehearsal],
) -> None:
    profile, stage, report = rehearsed
    applicable = _applicable(stage)
    tracking = [name for name in TRACKING if name in applicable]
    assert len(tracking) == 1, f"{profile}: tracking components {tracking}"
    assert "entrypoints" in applicable
    for component in (*tracking, "entrypoints"):
        own = [h for h in report.handoffs if h.component == component]
        assert len(own) >= 5 and all(h.passed for h in own), _explain(report)
    served = [h for h in report.handoffs if "clients" in h.name and "served" in h.name]
    assert served and all(h.passed for h in served)
    trained = [h for h in report.handoffs if h.name.startswith("main: `")]
    assert trained and trained[0].passed, _explain(report)
    expected = "compose" if profile == "on-prem-compose" else "tracking-server"
    assert tracking == [expected]


@pytest.mark.slow
@pytest.mark.xdist_group("rehearse-b")
def test_the_framework_trained_is_the_one_served(rehearsed: tuple[str, Stage, Rehearsal]) -> None:
    """XGBoost (fraud) and LightGBM (hybrid) champions are published and served by the
    project's MLServer runtime: each release's downloaded model has the framework's flavor and
    answers a request as the version just published."""
    profile, stage, report = rehearsed
    if "serving" not in _applicable(stage):  # batch, or served by `mlflow models serve`
        assert not [h for h in report.handoffs if h.component == "serving"]
        return
    framework = PROFILES[profile][2].get("framework", "sklearn")
    for release in ("release 1", "release 2"):
        for name in (
            f"the published model is the project's {framework} model",
            "a valid V2 request gets predictions from the published version",
        ):
            found = [
                h
                for h in report.handoffs
                if h.component == "serving" and h.name == f"{release}: {name}"
            ]
            assert found and found[0].passed, f"{profile} {release}: {name}\n{_explain(report)}"
