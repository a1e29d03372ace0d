"""Each model type generates the files of its kind: the estimator per framework, the primary
metric and its direction, the kind-neutral evaluation keys; a pair with no model is refused at
the question (ABT008, exit 4) naming what would work."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import get_args

import pytest
import yaml

from mlopsctl.checks import validate
from mlopsctl.errors import RuleAbort
from mlopsctl.kinds import kind, supports, table, unsupported_pairs
from mlopsctl.render import generate
from mlopsctl.requirements import Framework, ModelType
from mlopsctl.rules.engine import evaluate
from tests.conftest import make_requirements
from tests.test_property import _program_checks

BIN = Path(sys.executable).parent
TABULAR = ("sklearn", "xgboost", "lightgbm")
KINDS = tuple(table().kinds)
VALID = [(k, f) for k in KINDS for f in TABULAR if supports(k, f)]

# What each kind is judged by, as the issue states it.
EXPECTED = {
    "classification": ("f1", True),
    "regression": ("rmse", False),
    "clustering": ("silhouette", True),
    "ranking": ("ndcg_at_10", True),
    "time-series": ("mape", False),
    "recommendation": ("precision_at_10", True),
}


def _generate(tmp_path: Path, model_type: str, framework: str) -> Path:
    design = evaluate(make_requirements(model_type=model_type, framework=framework))
    out = tmp_path / f"{model_type}-{framework}"
    generate(design, out)
    return out


def test_every_kind_has_its_metric_and_direction() -> None:
    assert set(KINDS) == set(EXPECTED)
    for name, (metric, higher) in EXPECTED.items():
        k = kind(name, "sklearn")
        assert (k["metric"], k["higher_is_better"]) == (metric, higher)
        assert k["metrics"][0] == metric and k["secondary"]


def test_the_kinds_are_model_types_of_the_questionnaire() -> None:
    assert set(KINDS) <= set(get_args(ModelType))
    assert set(table().tabular_frameworks) <= set(get_args(Framework))
    assert table().fallback in KINDS


@pytest.mark.parametrize(("model_type", "framework"), VALID)
def test_a_valid_pair_generates_its_kind_and_validates(
    tmp_path: Path, model_type: str, framework: str
) -> None:
    root = _generate(tmp_path, model_type, framework)
    k = kind(model_type, framework)
    project = json.loads((root / "config" / "project.json").read_text())
    assert project["kind"] == model_type
    assert project["primary_metric"] == EXPECTED[model_type][0]
    assert project["higher_is_better"] is EXPECTED[model_type][1]
    assert project["metrics"] == k["metrics"]
    assert project["mlflow_flavor"] == k["estimator"]["flavor"]
    registry = json.loads((root / "config" / "model-registry.json").read_text())
    assert list(registry["metrics"]) == k["metrics"]

    train = (root / "src" / "train.py").read_text()
    assert f"from {k['estimator']['module']} import {k['estimator']['name']}" in train
    flavor = {"python_function": "pyfunc"}.get(k["estimator"]["flavor"], k["estimator"]["flavor"])
    assert f"mlflow.{flavor}.log_model(" in train
    assert "signature=signature" in train
    assert (root / "src" / "recommend.py").exists() == (model_type == "recommendation")

    evaluate_py = (root / "src" / "evaluate.py").read_text()
    for key in ("metric", "champion_score", "challenger_score", "promoted"):
        assert f'"{key}"' in evaluate_py
    retraining = yaml.safe_load((root / "pipelines" / "retraining.yaml").read_text())
    deploy = next(s for s in retraining["steps"] if s["name"] == "model-deployment")
    assert deploy["conditional"] == "evaluation.promoted"
    for path in root.rglob("*"):
        if path.is_file() and path.suffix in {".py", ".yaml", ".yml", ".json", ".md"}:
            text = path.read_text(encoding="utf-8")
            assert "champion_f1" not in text and "challenger_f1" not in text, path

    report = validate(root, ignore=_program_checks())
    assert report.ok, [(f.check, f.path, f.message) for f in report.findings]


def test_the_refused_pairs_are_the_pairs_with_no_model() -> None:
    """ABT008 fires exactly for the tabular pairs kinds.yaml has no estimator for (and for
    generative models on the tabular frameworks)."""
    refused = set()
    for model_type in get_args(ModelType):
        for framework in TABULAR:
            try:
                evaluate(make_requirements(model_type=model_type, framework=framework))
            except RuleAbort as exc:
                assert exc.rule_id == "ABT008"
                refused.add((model_type, framework))
    expected = set(unsupported_pairs()) | {("generative", f) for f in TABULAR}
    assert refused == expected
    assert ("clustering", "xgboost") in refused and ("recommendation", "lightgbm") in refused


@pytest.mark.parametrize(
    ("model_type", "framework", "alternative"),
    [
        ("clustering", "xgboost", "sklearn"),
        ("clustering", "lightgbm", "sklearn"),
        ("recommendation", "xgboost", "sklearn"),
        ("recommendation", "lightgbm", "sklearn"),
        ("generative", "sklearn", "huggingface"),
        ("generative", "xgboost", "huggingface"),
        ("generative", "lightgbm", "pytorch"),
    ],
)
def test_an_invalid_pair_is_refused_with_exit_4_naming_what_works(
    tmp_path: Path, model_type: str, framework: str, alternative: str
) -> None:
    run = subprocess.run(
        [
            str(BIN / "mlopsctl"),
            "init",
            str(tmp_path / "p"),
            "--defaults",
            "--set",
            f"model_type={model_type}",
            "--set",
            f"framework={framework}",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 4, run.stderr
    assert "ABT008" in run.stderr
    assert f"set framework to {alternative}" in run.stderr or f"or {alternative}" in run.stderr
    assert not (tmp_path / "p").exists()


def test_edge_export_only_for_kinds_it_converts() -> None:
    for model_type in KINDS:
        design = evaluate(
            make_requirements(model_type=model_type, framework="sklearn", deployment_target="edge")
        )
        assert design.components.onnx_export is kind(model_type, "sklearn")["edge_export"]
