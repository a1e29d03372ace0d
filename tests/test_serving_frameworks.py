"""XGBoost and LightGBM projects are served the way scikit-learn projects are: the registered
MLflow model, published by src/publish.py, loaded by MLServer's MLflow runtime in the project's
serving image (the project's own ServingRuntime), with the framework installed in that image.

The rehearsal serves them for real (tests/test_rehearse_profiles.py: the fraud profile is an
XGBoost project); these tests read the generated files only.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlopsctl.monitoring import runtime_metrics
from mlopsctl.names import resource_names
from mlopsctl.render import generate, serving_image_ref, serving_table, versions
from mlopsctl.rules.engine import evaluate
from tests.conftest import make_requirements

FRAMEWORKS = ("sklearn", "xgboost", "lightgbm")


@pytest.fixture(scope="module", params=FRAMEWORKS)
def project(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Any:
    framework: str = request.param
    design = evaluate(make_requirements(framework=framework), tier_floor="T2")
    root = tmp_path_factory.mktemp(framework) / "project"
    generate(design, root)
    return framework, design, root


def _document(path: Path, kind: str) -> dict[str, Any]:
    (doc,) = [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d["kind"] == kind]
    return doc


def test_the_table_serves_the_gradient_boosting_frameworks_with_the_project_runtime() -> None:
    frameworks = serving_table()["frameworks"]
    for framework in FRAMEWORKS:
        entry = frameworks[framework]
        assert (entry["runtime"], entry["kserve_format"], entry["protocol"]) == (
            "project",
            "mlflow",
            "v2",
        ), framework
        assert entry["mlflow_flavor"] == framework
        # The alerts and panels read MLServer's metrics, the runtime that answers.
        assert runtime_metrics(framework, kserve=True) == runtime_metrics("sklearn", kserve=True)


def test_the_inference_service_names_the_project_runtime(project: Any) -> None:
    _, design, root = project
    names = resource_names(design.requirements.project_name)
    isvc = _document(root / "k8s/inferenceservice.yaml", "InferenceService")
    runtime = _document(root / "k8s/serving-runtime.yaml", "ServingRuntime")
    model = isvc["spec"]["predictor"]["model"]
    assert model["runtime"] == runtime["metadata"]["name"] == names["serving_runtime"]
    assert model["modelFormat"]["name"] == "mlflow"
    assert model["protocolVersion"] == "v2"
    assert [f["name"] for f in runtime["spec"]["supportedModelFormats"]] == ["mlflow"]
    (container,) = runtime["spec"]["containers"]
    assert container["image"] == serving_image_ref(names["serving_image"])
    assert container["command"] == ["mlserver", "start", "/mnt/models"]


def test_the_serving_image_installs_the_framework_it_loads(project: Any) -> None:
    framework, _, root = project
    dockerfile = (root / "deploy/serving/Dockerfile").read_text(encoding="utf-8")
    installs = re.search(r"^RUN pip install .*$", dockerfile, re.MULTILINE)
    assert installs and "-r requirements.txt" in installs[0]
    assert "mlserver-mlflow==" in installs[0]
    assert re.search(r"^COPY requirements\.txt ", dockerfile, re.MULTILINE)
    pins = (root / "requirements.txt").read_text(encoding="utf-8").splitlines()
    package = {"sklearn": "scikit-learn"}.get(framework, framework)
    assert f"{package}=={versions()['packages'][package]}" in pins


def test_each_release_is_published_for_the_runtime(project: Any) -> None:
    """publish.py, the pipeline's publish step and `make publish` exist for every framework the
    project runtime serves (they are generated only where it does)."""
    _, _, root = project
    assert (root / "src/publish.py").is_file()
    assert (root / "src/serving_runtime.py").is_file()
    pipeline = (root / "pipelines/retraining_pipeline.py").read_text(encoding="utf-8")
    assert 'subprocess.run(["python", "/app/src/publish.py"' in pipeline
    assert re.search(r"^publish:", (root / "Makefile").read_text(encoding="utf-8"), re.MULTILINE)
    ci = (root / ".github/workflows/ci.yaml").read_text(encoding="utf-8")
    assert re.search(r"^\s+make publish$", ci, re.MULTILINE)


def test_the_readme_names_the_runtime_that_serves_the_model(project: Any) -> None:
    framework, _, root = project
    readme = (root / "README.md").read_text(encoding="utf-8")
    assert f"ServingRuntime (MLServer's MLflow runtime serving the {framework} model, V2)" in readme
