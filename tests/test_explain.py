"""An explainability mandate (GOV004) on a tabular classifier or regressor generates SHAP
explanations: src/explain.py, `make explain`, the project's test of SHAP's additivity and the
pinned `shap` requirement; without the mandate, none of them. (slow) A generated project trains,
explains the champion's predictions and passes its own explanation tests."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from mlopsctl.render import generate, versions
from mlopsctl.rules.engine import evaluate
from tests.conftest import make_requirements
from tests.test_edge_export import init
from tests.test_generated_project_runs import make, project_venv

EXPLAIN_FILES = {"src/explain.py", "tests/test_explain.py"}
NAME = "explained"


def _files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


def _pins(root: Path) -> dict[str, str]:
    lines = (root / "requirements.txt").read_text(encoding="utf-8").splitlines()
    return dict(line.split("==", 1) for line in lines if "==" in line and not line.startswith("#"))


@pytest.mark.parametrize(
    ("answers", "explained"),
    [
        ({"explainability_required": True}, True),
        ({"explainability_required": True, "framework": "lightgbm"}, True),
        (
            {"explainability_required": True, "model_type": "regression", "framework": "xgboost"},
            True,
        ),
        ({"explainability_required": True, "deployment_target": "batch"}, True),
        ({"explainability_required": False}, False),
        ({}, False),
        # No tabular features to attribute a prediction to: the mandate is recorded, not faked.
        ({"explainability_required": True, "model_type": "clustering"}, False),
    ],
)
def test_explanations_are_generated_only_under_an_explainability_mandate(
    answers: dict[str, object], explained: bool, tmp_path: Path
) -> None:
    design = evaluate(make_requirements(**answers))
    assert design.components.explanations is explained
    root = tmp_path / "project"
    generate(design, root)
    files = _files(root)
    pins = _pins(root)
    makefile = (root / "Makefile").read_text(encoding="utf-8")
    decisions = (root / "docs" / "decisions.md").read_text(encoding="utf-8")
    if explained:
        assert files >= EXPLAIN_FILES
        assert pins["shap"] == versions()["packages"]["shap"]
        assert "\nexplain: registered-model $(STAMP)\n\t$(BIN)/python src/explain.py $(ARGS)\n" in (
            makefile
        )
        assert " explain\n" in makefile.split(".PHONY:", 1)[1].split("\n", 1)[0] + "\n"
        assert "## Explanations\n\n`make explain` (src/explain.py" in decisions
    else:
        assert not EXPLAIN_FILES & files
        assert "shap" not in pins
        assert "explain" not in makefile
        assert ("## Explanations" in decisions) is ("explainability-report" in design.governance)


def test_the_shap_pin_resolves_with_the_numpy_the_project_pins() -> None:
    """SHAP 0.51 needs numpy 2 and numba; numba 0.68 reads numpy below 2.6 (versions.yaml)."""
    table = versions()["packages"]
    major, minor = (int(part) for part in table["numpy"].split(".")[:2])
    assert major == 2 and minor < 6
    assert tuple(int(part) for part in table["shap"].split(".")) >= (0, 51, 0)


@pytest.mark.slow
def test_an_explained_project_explains_the_champions_predictions(tmp_path: Path) -> None:
    project = tmp_path / NAME
    init(project, ["--set", "explainability_required=true"])
    venv_dir = project_venv(project)
    venv = f"VENV={venv_dir}"
    started = time.monotonic()

    early = make(project, "explain", venv)  # nothing registered yet: says what to run first
    assert early.returncode == 2 and "make train" in early.stderr
    trained = make(project, "train", venv)
    assert trained.returncode == 0, trained.stderr[-3000:]
    out = tmp_path / "out"
    explained = make(project, "explain", venv, "ARGS=--rows 12", f"MLOPS_OUTPUT_DIR={out}")
    assert explained.returncode == 0, explained.stdout[-3000:] + explained.stderr[-3000:]
    assert f"explained 12 predictions of {NAME} version 1" in explained.stdout
    assert not (project / "explanations.json").exists()  # MLOPS_OUTPUT_DIR holds the report

    report = json.loads((out / "explanations.json").read_text(encoding="utf-8"))
    features = [f"feature_{i}" for i in range(8)]
    assert report["model_name"] == NAME and report["model_version"] == 1
    assert report["feature_names"] == features
    assert report["background_rows"] == 100
    assert report["max_additivity_error"] <= 1e-6
    assert len(report["explanations"]) == 12
    for row in report["explanations"]:
        assert list(row["attributions"]) == features and list(row["features"]) == features
        total = row["base_value"] + sum(row["attributions"].values())
        assert total == pytest.approx(row["prediction"], abs=1e-6)
        assert row["prediction"] in {0.0, 1.0}  # the classifier's label, as the pyfunc answers
    base = {row["base_value"] for row in report["explanations"]}
    assert len(base) == 1 and 0 < base.pop() < 1  # the background's share of positive labels
    importance = report["global_importance"]
    assert set(importance) == set(features)
    assert list(importance.values()) == sorted(importance.values(), reverse=True)
    assert max(importance.values()) > 0

    # The global summary is an artifact of the champion's training run (the local store).
    run_id = trained.stdout.split("run ", 1)[1].split(":", 1)[0]
    (stored,) = (project / "mlruns").glob(
        f"*/{run_id}/artifacts/explanations/global-importance.json"
    )
    artifact = json.loads(stored.read_text(encoding="utf-8"))
    assert artifact["model_version"] == 1 and artifact["explained_rows"] == 12
    assert artifact["mean_abs_attribution"] == pytest.approx(importance)

    # The project's own explanation tests (they fit and explain their own small models).
    tests = run_python(
        venv_dir, project, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_explain.py"
    )
    assert "3 passed" in tests, tests[-3000:]
    print(f"explained project: {time.monotonic() - started:.0f} s after the environment")


def run_python(venv: Path, cwd: Path, *args: str) -> str:
    """The project's Python in ``cwd`` (the local tracking store); its output."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "VIRTUAL_ENV"))}
    run = subprocess.run(
        [str(venv / "bin" / "python"), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    return run.stdout
