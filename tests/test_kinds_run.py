"""Each new model kind's generated project works for real, with every tabular framework it takes:
its own tests pass (all of them with scikit-learn; with XGBoost and LightGBM those that depend on
the framework), `make train` trains and registers a model of the kind, `make evaluate` scores
the champion on the kind's metric, and (scikit-learn, every kind) the served model answers a
request of that kind.

One cached virtualenv per requirements digest (tests/test_generated_project_runs.py's
`project_venv`): the kinds of one framework share it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from mlopsctl.kinds import kind, supports
from tests.test_generated_project_runs import make, project_venv, served_answer

BIN = Path(sys.executable).parent
NEW_KINDS = ("regression", "clustering", "ranking", "time-series", "recommendation")
PAIRS = [(k, f) for k in NEW_KINDS for f in ("sklearn", "xgboost", "lightgbm") if supports(k, f)]

# A request of the kind, built in the project's venv from its own sample data.
REQUEST = (
    "import json, sys\n"
    "sys.path.insert(0, 'src')\n"
    "from data import FEATURES, load_current\n"
    "frame = load_current()[FEATURES].drop_duplicates().head(2)\n"
    "print(json.dumps({'dataframe_split': frame.to_dict(orient='split', index=False)}))\n"
)


def _check_answer(model_type: str, predictions: list[object]) -> None:
    assert len(predictions) == 2, predictions
    if model_type == "recommendation":
        for row in predictions:
            assert isinstance(row, dict)
            items = [row[f"item_{rank}"] for rank in range(1, 11)]
            assert len(set(items)) == 10 and all(0 <= int(i) < 100 for i in items), row
    elif model_type == "clustering":
        assert all(int(p) in range(4) for p in predictions)  # type: ignore[call-overload]
    else:
        assert all(isinstance(p, float) for p in predictions), predictions


@pytest.mark.slow
@pytest.mark.parametrize(("model_type", "framework"), PAIRS)
def test_the_kind_trains_evaluates_and_serves(
    tmp_path: Path, model_type: str, framework: str
) -> None:
    project = tmp_path / "kind-project"
    run = subprocess.run(
        [
            *(str(BIN / "mlopsctl"), "init", str(project), "--defaults"),
            *("--set", f"model_type={model_type}", "--set", f"framework={framework}"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    python = project_venv(project) / "bin" / "python"
    venv = f"VENV={python.parent.parent}"
    k = kind(model_type, framework)

    if framework == "sklearn":
        tests = make(project, "test", venv)
    else:  # the project's tests that depend on the framework: its model learns, is compared
        tests = subprocess.run(
            [str(python), "-m", "pytest", "-q", "tests", "-k", "learns or promotion or kind"],
            cwd=project,
            capture_output=True,
            text=True,
            timeout=300,
        )
    assert tests.returncode == 0, tests.stdout[-3000:] + tests.stderr[-3000:]
    trained = make(project, "train", venv)
    assert trained.returncode == 0, trained.stderr[-3000:]
    assert f"registered kind-project version 1 ({k['metric']} " in trained.stdout
    evaluated = make(project, "evaluate", venv)
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    report = json.loads((project / "evaluation.json").read_text())
    assert report["metric"] == k["metric"]
    assert report["higher_is_better"] is k["higher_is_better"]
    assert str(report["champion_version"]) == str(report["challenger_version"]) == "1"
    assert report["challenger_score"] == report["champion_score"]
    assert report["promoted"] is False  # one version: nothing to promote

    if framework != "sklearn":
        return
    if model_type == "recommendation":
        body: object = {"dataframe_split": {"columns": ["user_id"], "data": [[0], [1]]}}
    else:
        made = subprocess.run(
            [str(python), "-c", REQUEST], cwd=project, capture_output=True, text=True, timeout=120
        )
        assert made.returncode == 0, made.stderr[-3000:]
        body = json.loads(made.stdout.strip().splitlines()[-1])
    answer = served_answer(project, venv, body)
    assert isinstance(answer, dict)
    _check_answer(model_type, answer["predictions"])
