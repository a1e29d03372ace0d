"""Sizing per deployment target and model size, as the generated files carry it: replicas,
autoscaling, the startup probe and the latency alert only where something serves online; job
resources for batch; no serving files for edge; a startup probe covering a large model's startup
window; memory at least the model plus its runtime; and a large network that cannot meet its
latency target on CPU refused (ABT009, exit 4)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlopsctl.api import assess, load_requirements
from mlopsctl.design import StackDesign
from mlopsctl.errors import RuleAbort
from mlopsctl.render import render_tree
from mlopsctl.rules.sizing import RUNTIME_OVERHEAD_GB

TARGETS = {
    "online": {"deployment_target": "online"},
    "batch": {"deployment_target": "batch", "scale_requirements": {"data_volume_gb": 5}},
    "edge": {"deployment_target": "edge", "kubernetes": False},
    "edge-on-a-cluster": {"deployment_target": "edge"},
    "hybrid": {"deployment_target": "hybrid"},
}
SERVING_NUMBERS = (
    "per_replica_rps",
    "scale_target_concurrency",
    "min_replicas",
    "max_replicas",
    "hpa_cpu_target_percent",
    "startup_seconds",
)


def design(**answers: Any) -> StackDesign:
    return assess(load_requirements({"kubernetes": True, **answers}, defaults=True))


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[StackDesign, Path]]:
    root = tmp_path_factory.mktemp("targets")
    out = {}
    for name, answers in TARGETS.items():
        d = design(**answers)
        render_tree(d, root / name)
        out[name] = (d, root / name)
    return out


def _docs(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def _manifests(root: Path) -> list[dict[str, Any]]:
    """The project's own manifests, without the tracking server's (a Deployment of MLflow)."""
    paths = sorted(p for p in (root / "k8s").glob("*.yaml") if p.name != "tracking-server.yaml")
    return [doc for path in paths for doc in _docs(path)]


def _alerts(root: Path) -> set[str]:
    path = root / "monitoring" / "alerts.yaml"
    if not path.exists():
        return set()
    return {rule["alert"] for group in _docs(path)[0]["groups"] for rule in group["rules"]}


def _gib(quantity: str) -> float:
    number, unit = re.fullmatch(r"([0-9.]+)(Mi|Gi)", quantity).groups()  # type: ignore[union-attr]
    return float(number) / (1024 if unit == "Mi" else 1)


def _serving_containers(manifests: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The InferenceServices' model containers and the Deployments' serving containers."""
    found = []
    for doc in manifests:
        if doc["kind"] == "InferenceService":
            found.append(doc["spec"]["predictor"]["model"])
        elif doc["kind"] == "Deployment":
            found += [
                c for c in doc["spec"]["template"]["spec"]["containers"] if "readinessProbe" in c
            ]
    return found


@pytest.mark.parametrize("name", list(TARGETS))
def test_replicas_autoscaling_and_the_latency_alert_only_where_something_serves_online(
    generated: dict[str, tuple[StackDesign, Path]], name: str
) -> None:
    d, root = generated[name]
    online = d.stack.deployment_pattern in {"online", "hybrid"}
    assert d.components.online is online
    manifests = _manifests(root) if (root / "k8s").exists() else []
    kinds = {doc["kind"] for doc in manifests}
    files = {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}
    # replica sizing and its decisions
    for number in SERVING_NUMBERS:
        value = getattr(d.sizing, number)
        assert (value is not None) is online, number
    assert (d.thresholds.latency_p95_alert_ms is not None) is online
    assert (d.thresholds.latency_p95_alert_ms == 1.5 * d.sizing.latency_target_ms) is online
    # the cluster's serving resources, the alert, its runbook and the monitoring contract
    assert bool(kinds & {"InferenceService", "Deployment", "HorizontalPodAutoscaler"}) is online
    assert ("ModelLatencyP95High" in _alerts(root)) is online
    assert ("docs/runbooks/high-latency.md" in files) is online
    if (root / "config" / "monitoring.json").exists():
        metrics = {
            m["name"] for m in json.loads((root / "config/monitoring.json").read_text())["metrics"]
        }
        assert ("prediction_latency_ms" in metrics) is online
    decisions = (root / "docs" / "decisions.md").read_text()
    if not online:
        assert "| sizing.max_replicas | - |" in decisions
        assert "| latency_p95_alert_ms | none: no online endpoint |" in decisions
        assert not any(
            "replica" in line for line in d.sizing.assumptions if "no serving" not in line
        )
    # batch: the job's resources are the sizing's
    if d.stack.deployment_pattern in {"batch", "hybrid"}:
        (job,) = [doc for doc in manifests if doc["kind"] == "CronJob"]
        (container,) = job["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
        assert container["resources"]["requests"] == {
            "cpu": d.sizing.cpu_request,
            "memory": d.sizing.memory_request,
        }
    # every serving container waits out the startup window
    for container in _serving_containers(manifests):
        probe = container["startupProbe"]
        assert probe["failureThreshold"] * probe["periodSeconds"] >= d.sizing.startup_seconds


@pytest.mark.parametrize("name", list(TARGETS))
def test_edge_projects_have_no_serving_image_or_serve_target(
    generated: dict[str, tuple[StackDesign, Path]], name: str
) -> None:
    d, root = generated[name]
    edge = d.stack.deployment_pattern == "edge"
    makefile = (root / "Makefile").read_text()
    readme = (root / "README.md").read_text()
    assert bool(re.search(r"^serve:", makefile, re.M)) is not edge
    assert ("make serve" in readme) is not edge
    # the project image stays where a pipeline step or a cluster job runs in it
    image = (root / "deploy" / "model" / "Dockerfile").exists()
    assert image is (not edge or d.components.kubeflow or d.components.batch_job)
    assert ("the project image" in readme) is image
    if edge:
        assert not (root / "deploy" / "serving").exists()
        assert not (root / "k8s" / "inferenceservice.yaml").exists()


def test_the_edge_project_without_a_cluster_names_no_image() -> None:
    d = design(deployment_target="edge", kubernetes=False)
    assert d.components.edge and not d.components.project_image


@pytest.mark.parametrize(
    ("answers", "window"),
    [
        ({"framework": "sklearn", "model_size_gb": 12}, 30 + 720),
        ({"framework": "pytorch", "gpu": True, "model_size_gb": 14}, 30 + 840),
        ({"framework": "sklearn", "model_size_gb": 0.1}, 36),
    ],
)
def test_the_startup_probe_covers_a_large_models_startup_window(
    tmp_path: Path, answers: dict[str, Any], window: int
) -> None:
    d = design(**answers, scale_requirements={"latency_ms": 500})
    assert d.sizing.startup_seconds == window
    formula = next(x for x in d.decisions if x.capability == "sizing.startup_seconds").formula
    assert f"allows ceil({window} / 10) = {-(-window // 10)} failures" in formula
    root = tmp_path / "p"
    render_tree(d, root)
    manifests = _manifests(root)
    containers = _serving_containers(manifests)
    assert containers
    for container in containers:
        probe = container["startupProbe"]
        assert probe["failureThreshold"] * probe["periodSeconds"] >= window
        assert (probe["failureThreshold"] - 1) * probe["periodSeconds"] < window  # not much more
    (isvc,) = [doc for doc in manifests if doc["kind"] == "InferenceService"]
    deadline = isvc["metadata"]["annotations"].get("serving.knative.dev/progress-deadline")
    # Knative's default progress deadline is 600 s: a longer window raises it
    assert deadline == (f"{window + 60}s" if window + 60 > 600 else None)
    decisions = (root / "docs" / "decisions.md").read_text()
    assert f"`sizing.startup_seconds` = {window}" in decisions


@pytest.mark.parametrize("size_gb", [0.05, 1.0, 3.0, 14.0, 120.0])
@pytest.mark.parametrize("target", ["online", "batch", "edge"])
def test_memory_is_at_least_the_model_plus_its_runtime(size_gb: float, target: str) -> None:
    answers: dict[str, Any] = {"deployment_target": target, "model_size_gb": size_gb}
    if target == "batch":
        answers["scale_requirements"] = {"data_volume_gb": 5}
    else:
        answers["gpu"] = True
        answers["scale_requirements"] = {"latency_ms": 5000}
    d = design(**answers)
    floor = size_gb + RUNTIME_OVERHEAD_GB
    request, limit = _gib(d.sizing.memory_request), _gib(d.sizing.memory_limit)
    assert floor <= request <= limit


def test_a_large_network_that_cannot_meet_its_latency_on_cpu_is_refused() -> None:
    answers = {
        "model_type": "generative",
        "framework": "huggingface",
        "model_size_gb": 14,
        "gpu": False,
        "scale_requirements": {"latency_ms": 500},
    }
    with pytest.raises(RuleAbort) as info:
        design(**answers)
    assert info.value.rule_id == "ABT009"
    # what would work: a GPU, compression, or a relaxed latency (100 ms per GB: 1400 ms)
    assert design(**{**answers, "gpu": True}).sizing.gpu_per_replica == 1
    assert design(**{**answers, "scale_requirements": {"latency_ms": 1400}}).sizing.per_replica_rps
    assert design(**{**answers, "model_size_gb": 5}).sizing.per_replica_rps == pytest.approx(2.0)
    # without a stated SLA the online default (200 ms) is the target
    with pytest.raises(RuleAbort):
        design(**{**answers, "scale_requirements": {"rps": 5}})
    # a batch job has no per-request latency to meet
    assert design(**{**answers, "deployment_target": "batch"}).components.batch_job


def test_init_refuses_the_large_network_on_cpu_with_exit_4(tmp_path: Path) -> None:
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "mlopsctl",
            "init",
            str(tmp_path / "p"),
            "--defaults",
            "--dry-run",
            "--set",
            "model_type=generative",
            "--set",
            "framework=huggingface",
            "--set",
            "model_size_gb=14",
            "--set",
            "scale_requirements.latency_ms=500",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 4, run.stderr
    assert "ABT009" in run.stderr
    for remedy in ("gpu: true", "compress", "INT8 quantization", "relax latency_ms"):
        assert remedy in run.stderr, remedy
    assert not (tmp_path / "p").exists()


def test_a_deep_replicas_capacity_is_bounded_by_its_memory_bandwidth() -> None:
    small = design(framework="pytorch", model_size_gb=0.1, scale_requirements={"rps": 100})
    assert small.sizing.per_replica_rps == 20  # the family's assumption
    large = design(
        framework="pytorch", model_size_gb=2, scale_requirements={"latency_ms": 500, "rps": 100}
    )
    assert large.sizing.per_replica_rps == pytest.approx(5.0)  # 10 GB/s / 2 GB
    assert large.sizing.max_replicas == 29  # ceil(100 / (5 x 0.7))
    gpu = design(framework="pytorch", gpu=True, model_size_gb=14, scale_requirements={"rps": 100})
    assert gpu.sizing.per_replica_rps == pytest.approx(300 / 14, abs=1e-3)


@pytest.mark.parametrize(("size_gb", "overhead"), [(0.1, "4g"), (1.0, "6g"), (14.0, "58g")])
def test_spark_executors_hold_a_model_copy_per_core(
    tmp_path: Path, size_gb: float, overhead: str
) -> None:
    """Each executor core's Python worker loads the model: the memory overhead, where they live,
    holds a copy per core plus its runtime (4 x (size + 0.5 GB)), at least the usual 4g."""
    d = design(
        deployment_target="batch",
        model_size_gb=size_gb,
        scale_requirements={"data_volume_gb": 500},
    )
    assert d.components.spark
    root = tmp_path / "p"
    render_tree(d, root)
    (app,) = [
        doc
        for doc in _docs(root / "k8s" / "spark-application.yaml")
        if doc["kind"] == "ScheduledSparkApplication"
    ]
    executor = app["spec"]["template"]["executor"]
    assert executor["memoryOverhead"] == overhead
    assert int(overhead[:-1]) >= executor["cores"] * (size_gb + RUNTIME_OVERHEAD_GB)
