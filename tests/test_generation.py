"""Generation through the real copier: exact file sets, no unrendered markers, all files parse."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlopsctl.api import assess, generate
from tests.conftest import make_requirements

MARKER = re.compile(r"{{|}}|{%|%}|{#|#}")
# Files whose own syntax uses {{ }}: Prometheus annotation templates, Grafana legend templates,
# GitHub Actions expressions.
OWN_BRACES = {
    "monitoring/alerts.yaml",
    "monitoring/grafana-dashboard.json",
    ".github/workflows/ci.yaml",
    ".github/workflows/retrain.yaml",
}


def files_of(root: Path) -> set[str]:
    """Generated files, less the pristine copies under .mlopsctl/base/ (see test_update*.py)."""
    return {
        rel
        for p in root.rglob("*")
        if p.is_file() and not (rel := str(p.relative_to(root))).startswith(".mlopsctl/base/")
    }


def generated(tmp_path: Path, **answers: Any) -> Path:
    dest = tmp_path / "out"
    generate(make_requirements(**answers), dest)
    return dest


COMMON = {
    ".env.example",
    ".gitignore",
    ".mlopsctl/.gitattributes",
    ".mlopsctl/answers.schema.json",
    ".mlopsctl/design.json",
    ".mlopsctl/state.json",
    "MLproject",
    "Makefile",
    "README.md",
    "ci/install-mlopsctl.sh",
    "config/experiment-tracking.json",
    "config/model-registry.json",
    "config/monitoring.json",
    "config/project.json",
    "deploy/mlflow/Dockerfile",
    "deploy/mlflow/docker-compose.yaml",
    "deploy/model/Dockerfile",
    "docs/decisions.md",
    "docs/runbooks/drift.md",
    "docs/runbooks/retraining-failure.md",
    "mlopsctl.yaml",
    "monitoring/alertmanager.yaml",
    "monitoring/alerts.test.yaml",
    "monitoring/alerts.yaml",
    "monitoring/grafana-dashboard.json",
    "pipelines/retraining.yaml",
    "pytest.ini",
    "python_env.yaml",
    "requirements.txt",
    "schemas/deployment-manifest.schema.json",
    "schemas/experiment-tracking.schema.json",
    "schemas/model-registry.schema.json",
    "schemas/monitoring-dashboard.schema.json",
    "schemas/retraining-pipeline.schema.json",
    "src/batch_score.py",
    "src/data.py",
    "src/drift.py",
    "src/evaluate.py",
    "src/metrics_push.py",
    "src/scoring.py",
    "src/settings.py",
    "src/train.py",
    "tests/conftest.py",
    "tests/test_project.py",
}


def test_default_file_set(tmp_path: Path) -> None:
    out = generated(tmp_path)
    assert files_of(out) == COMMON | {
        ".github/workflows/ci.yaml",
        "deploy/serving/Dockerfile",
        "docs/runbooks/error-rate.md",
        "docs/runbooks/high-latency.md",
        "docs/runbooks/serving-down.md",
        "k8s/inferenceservice.yaml",
        "k8s/pipeline-access.yaml",
        "k8s/serving-access.yaml",
        "k8s/serving-runtime.yaml",
        "k8s/tracking-server.yaml",
        "pipelines/retraining_pipeline.py",
        "requirements-pipeline.txt",
        "src/publish.py",
        "src/serving_runtime.py",
        "tests/test_publish.py",
    }


def test_batch_without_kubernetes_file_set(tmp_path: Path) -> None:
    out = generated(tmp_path, deployment_target="batch", kubernetes=False, ci_platform="jenkins")
    assert files_of(out) == COMMON | {"Jenkinsfile"}


def test_online_without_kubernetes_has_no_manifests(tmp_path: Path) -> None:
    out = generated(tmp_path, kubernetes=False)
    names = files_of(out)
    assert not any(n.startswith("k8s/") for n in names)
    assert ".github/workflows/ci.yaml" in names


ANSWER_SETS = [
    {},
    {"deployment_target": "batch", "kubernetes": False},
    {
        "project_name": "fraud-scoring",
        "framework": "xgboost",
        "governance_level": "production",
        "scale_requirements": {"rps": 2000, "latency_ms": 80},
    },
]


@pytest.mark.parametrize("answers", ANSWER_SETS, ids=["defaults", "batch", "production"])
def test_everything_rendered_and_parses(tmp_path: Path, answers: dict[str, Any]) -> None:
    out = generated(tmp_path, **answers)
    for rel in sorted(files_of(out)):
        path = out / rel
        text = path.read_text(encoding="utf-8")
        if rel not in OWN_BRACES:
            assert not MARKER.search(text), f"unrendered template marker in {rel}"
        assert "\t" not in text or rel == "Makefile", rel
        if path.suffix in {".yaml", ".yml"}:
            docs = list(yaml.safe_load_all(text))
            assert docs and all(isinstance(d, dict) for d in docs), rel
        elif path.suffix == ".json":
            assert isinstance(json.loads(text), dict), rel


def test_manifests_carry_the_design(tmp_path: Path) -> None:
    req = make_requirements(
        project_name="churn", scale_requirements={"rps": 900, "latency_ms": 120}
    )
    design = assess(req)
    out = tmp_path / "out"
    generate(req, out)
    isvc = yaml.safe_load((out / "k8s/inferenceservice.yaml").read_text())
    assert isvc["kind"] == "InferenceService"
    assert isvc["metadata"]["name"] == "churn"
    predictor = isvc["spec"]["predictor"]
    assert predictor["maxReplicas"] == design.sizing.max_replicas
    assert predictor["minReplicas"] == design.sizing.min_replicas
    alerts = (out / "monitoring/alerts.yaml").read_text()
    assert f"> {design.thresholds.latency_p95_alert_ms}" in alerts
    saved = json.loads((out / ".mlopsctl/design.json").read_text())
    assert saved["stack"] == design.stack.model_dump()
    answers = yaml.safe_load((out / "mlopsctl.yaml").read_text())
    assert answers["project_name"] == "churn"
    assert answers["scale_requirements"] == {"rps": 900, "latency_ms": 120}


def test_mlopsctl_yaml_round_trips_to_the_same_requirements(tmp_path: Path) -> None:
    from mlopsctl.api import load_requirements

    req = make_requirements(
        project_name="rt", regulations=["gdpr"], existing_stack=["mlflow", "wandb"]
    )
    out = tmp_path / "out"
    generate(req, out)
    assert load_requirements(out / "mlopsctl.yaml") == req


def test_generation_is_deterministic(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    generate(make_requirements(), a)
    generate(make_requirements(), b)
    assert files_of(a) == files_of(b)
    for rel in files_of(a):
        assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel


def test_decisions_doc_names_every_decision(tmp_path: Path) -> None:
    req = make_requirements()
    design = assess(req)
    out = tmp_path / "out"
    generate(req, out)
    doc = (out / "docs/decisions.md").read_text()
    for decision in design.decisions:
        assert f"| {decision.capability} | " in doc
        assert decision.rule in doc


def test_decisions_doc_shows_what_assess_shows(tmp_path: Path) -> None:
    req = make_requirements(
        governance_level="production",
        team_size=3,
        existing_stack=["mlflow", "wandb"],
        scale_requirements={"rps": 1500, "latency_ms": 80},
    )
    design = assess(req)
    out = tmp_path / "out"
    generate(req, out)
    doc = (out / "docs/decisions.md").read_text()
    for capability, choice in design.stack.model_dump().items():
        assert f"| {capability} | {choice} |" in doc
    assert design.alternatives, "this profile overrides at least one proposal"
    for alt in design.alternatives:
        assert (
            f"| {alt.capability} | {alt.choice} | {alt.proposed_by} | {alt.overridden_by} |" in doc
        )
    for alert in design.alerts:
        assert f"| {alert.name} | {alert.priority} | {alert.notify} |" in doc
    for key, value in design.thresholds.model_dump().items():
        shown = "none: not measured (see Sizing assumptions)" if value is None else value
        assert f"| {key} | {shown} |" in doc
    for item in design.governance:
        assert f"- {item}\n" in doc
    for line in design.sizing.assumptions:
        assert line in doc
