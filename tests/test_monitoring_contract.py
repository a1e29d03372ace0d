"""The monitoring contract and the name table: computed once, read everywhere."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlopsctl import monitoring
from mlopsctl.design import StackDesign
from mlopsctl.names import resource_names
from mlopsctl.render import generate
from mlopsctl.rules.engine import evaluate
from tests.conftest import make_requirements
from tests.generated_cases import MEASURED

ROOT = Path(__file__).resolve().parents[1]
Project = tuple[StackDesign, Path]


@pytest.fixture(
    scope="module", params=[{}, {"kubernetes": False}, {"governance_level": "experimental"}]
)
def project(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Project:
    design = evaluate(make_requirements(**request.param))
    dest = tmp_path_factory.mktemp("contract") / "repo"
    generate(design, dest)
    return design, dest


def _rules(dest: Path) -> dict[str, Any]:
    doc = yaml.safe_load((dest / "monitoring" / "alerts.yaml").read_text())
    return {r["alert"]: r for g in doc["groups"] for r in g["rules"]}


def test_quickstart_queries_are_the_generated_queries(project: Project) -> None:
    """The quick start watched `job=` labels no manifest sets and a drift metric nobody pushes."""
    design, dest = project
    queries = design.quickstart.monitoring_queries
    config = json.loads((dest / "config" / "monitoring.json").read_text())
    generated = {m["name"]: m["query"] for m in config["metrics"]}
    # The serving queries exist where the runtime exports their metrics, the same in both.
    pairs = {
        "latency_p95_ms": "prediction_latency_ms",
        "error_rate": "prediction_error_rate",
        "requests_per_second": "predictions_per_second",
        "drift_psi_max": "feature_drift_psi",
    }
    for quick, config_name in pairs.items():
        if quick in queries or config_name in generated:
            assert queries[quick] == generated[config_name], quick
    assert all("job=" not in q for q in queries.values())
    pushed = json.loads((dest / "config" / "project.json").read_text())["pushed_metrics"]
    assert queries["drift_psi_max"].startswith(f"max({pushed['drift_psi']}{{")
    assert pushed["drift_psi"] == "model_feature_drift_psi"


def test_quickstart_labels_are_those_of_the_manifests(project: Project) -> None:
    design, dest = project
    name = design.requirements.project_name
    if not design.components.kubernetes:
        # `mlflow models serve` exports no request metrics: no serving query to show.
        assert "latency_p95_ms" not in design.quickstart.monitoring_queries
        return
    latency = design.quickstart.monitoring_queries["latency_p95_ms"]
    if design.components.kserve:
        isvc = yaml.safe_load((dest / "k8s" / "inferenceservice.yaml").read_text())
        assert f'serving_kserve_io_inferenceservice="{isvc["metadata"]["name"]}"' in latency
    else:
        assert f'app="{name}"' in latency


def test_quickstart_tracking_uri_and_artifact_store_are_the_repositorys(project: Project) -> None:
    design, dest = project
    tracking = json.loads((dest / "config" / "experiment-tracking.json").read_text())
    assert design.quickstart.tracking_uri == tracking["tracking_uri"]
    assert design.quickstart.artifact_store == tracking["default_artifact_root"]


def test_alert_priorities_and_channels_come_from_the_rules(project: Project) -> None:
    """ModelErrorRateCritical was written as P0 by hand; ALR001 decides P1 with a page."""
    design, dest = project
    rules = _rules(dest)
    decided = {a.name: a for a in design.alerts}
    assert rules, "no alert rules generated"
    queries = monitoring.queries(
        design.requirements.project_name,
        design.components.kserve,
        framework=design.requirements.framework,
    )
    for alert in monitoring.alerts(design, queries):
        rule = rules[alert["name"]]
        assert rule["labels"]["severity"] == decided[alert["decided_as"]].priority
        assert rule["labels"]["notify"] == decided[alert["decided_as"]].notify
    if "ModelErrorRateCritical" in rules:
        assert rules["ModelErrorRateCritical"]["labels"] == {
            "severity": decided["error-rate-critical"].priority,
            "notify": "page",
            "model": design.requirements.project_name,
        }
    manager = yaml.safe_load((dest / "monitoring" / "alertmanager.yaml").read_text())
    receivers = {r["name"] for r in manager["receivers"]}
    routes = {r["matchers"][0]: r["receiver"] for r in manager["route"]["routes"]}
    for rule in rules.values():
        receiver = routes[f'notify="{rule["labels"]["notify"]}"']
        assert receiver in receivers
    assert routes['notify="page"'] == "pager"


def test_templates_read_resource_names_from_the_table() -> None:
    """No template spells a resource-name suffix after the project name by hand."""
    for path in (ROOT / "templates").rglob("*.jinja"):
        text = path.read_text()
        assert not re.search(r'project_name ~ "[-#]', text), path
        assert not re.search(r'"#" ~ req\.project_name', text), path


def _spelled(value: str, text: str) -> bool:
    """A metric name anywhere; a suffix as the end of a string ('"-mlflow"', '{name}-mlflow"')."""
    if value[0].isalpha():
        return re.search(rf"\b{re.escape(value)}\b", text) is not None
    return re.search(r'[}"]' + re.escape(value) + '"', text) is not None


def _defined_values() -> dict[str, str]:
    """Metric names and resource-name suffixes the contract and the name table define."""
    out = {m: "mlopsctl/monitoring.py" for m in monitoring.PUSHED_METRICS.values()}
    # What each serving runtime exports: its table (the validate check's catalog lists them too).
    out |= {m: "mlopsctl/data/serving.yaml" for m in monitoring.serving_metric_names()}
    probe = "zz-probe"
    for value in resource_names(probe).values():
        if value.startswith(probe) and value != probe:
            out[value[len(probe) :]] = "mlopsctl/names.py"
    return out


def test_each_metric_name_and_suffix_is_defined_once() -> None:
    values = _defined_values()
    assert "model_feature_drift_psi" in values and "-mlflow" in values and "-predictor" in values
    files = [
        p
        for top in ("templates", "mlopsctl")
        for p in (ROOT / top).rglob("*")
        if p.is_file()
        and p.suffix in {".py", ".jinja", ".yaml", ".yml", ".json", ".md"}
        and "/schemas/" not in p.as_posix()
    ]
    assert len(files) > 50
    found: dict[str, set[str]] = {v: set() for v in values}
    for path in files:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
        # Comments may name what the code defines elsewhere (Python and YAML comments).
        text = "\n".join(line for line in lines if not line.lstrip().startswith("#"))
        rel = path.relative_to(ROOT).as_posix()
        for value in values:
            if _spelled(value, text):
                found[value].add(rel)
    catalog = "mlopsctl/checks/catalog/MLV302-metrics-defined.yaml"
    for value, home in values.items():
        assert found[value] - {catalog} == {home}, (value, sorted(found[value]))


def test_the_grep_sees_a_metric_or_suffix_spelled_outside_the_contract() -> None:
    """The check above is not a tautology: the spellings the templates used are found."""
    old = 'expr: max(model_feature_drift_psi{model="x"})\n'
    old += 'name: {{ yv(req.project_name ~ "-mlflow") }}'
    assert _spelled("model_feature_drift_psi", old)
    assert _spelled("-mlflow", old)
    assert _spelled("-mlflow", 'f"{project}-mlflow"')
    assert not _spelled("-model", 'f"{project}-model-quality"')


# Series a project without Kubernetes can hold: the jobs' pushed metrics (through the
# Pushgateway). Its endpoint is `mlflow models serve`, which exports no Prometheus metrics, and
# there is no kube-state-metrics.
_SCRAPED_WITHOUT_KUBERNETES = frozenset(monitoring.PUSHED_METRICS.values())
_SELECTED_METRIC = re.compile(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\{")


def test_alerts_without_kubernetes_read_only_series_that_exist(tmp_path: Path) -> None:
    """Without Kubernetes, the P0 ModelServingDown read kube-state-metrics (`... or vector(0) <
    1`) and fired for ever; latency and error alerts read MLServer series nothing exports."""
    design = evaluate(make_requirements(kubernetes=False))
    assert design.components.online
    dest = tmp_path / "repo"
    generate(design, dest)
    rules = _rules(dest)
    assert "ModelRetrainingFailed" in rules
    for name, rule in rules.items():
        read = set(_SELECTED_METRIC.findall(rule["expr"]))
        assert read, (name, rule["expr"])
        assert read <= _SCRAPED_WITHOUT_KUBERNETES, (name, read - _SCRAPED_WITHOUT_KUBERNETES)
    assert not {"ModelServingDown", "ModelLatencyP95High", "ModelErrorRateHigh"} & set(rules)
    tests = (dest / "monitoring" / "alerts.test.yaml").read_text()
    assert "ModelServingDown" not in tests
    dashboard = (dest / "monitoring" / "grafana-dashboard.json").read_text()
    assert not any(m in dashboard for m in monitoring.serving_metric_names())
    assert f"{monitoring.REPLICAS_AVAILABLE}{{" not in dashboard
    if shutil.which("promtool") is None:
        pytest.fail("promtool is required (Debian package prometheus)")
    proc = subprocess.run(
        ["promtool", "test", "rules", "alerts.test.yaml"],
        cwd=dest / "monitoring",
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_serving_down_is_tested_where_its_metric_exists(project: Project) -> None:
    """Where the serving alerts exist (Kubernetes), the promtool tests cover ModelServingDown
    firing and staying silent, and promtool passes them."""
    design, dest = project
    rules = _rules(dest)
    assert ("ModelServingDown" in rules) == (
        design.components.online and design.components.kubernetes
    )
    if shutil.which("promtool") is None:
        pytest.fail("promtool is required (Debian package prometheus)")
    proc = subprocess.run(
        ["promtool", "test", "rules", "alerts.test.yaml"],
        cwd=dest / "monitoring",
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


# --- the saturation alert: from a measured capacity, where a request counter exists ---------


def _promtool(dest: Path) -> None:
    if shutil.which("promtool") is None:
        pytest.fail("promtool is required (Debian package prometheus)")
    for args in (["check", "rules", "alerts.yaml"], ["test", "rules", "alerts.test.yaml"]):
        proc = subprocess.run(
            ["promtool", *args],
            cwd=dest / "monitoring",
            capture_output=True,
            text=True,
            check=False,
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize(
    "answers",
    [
        {"framework": "sklearn"},
        {"framework": "custom", "governance_level": "production"},
        {"framework": "tensorflow"},
        {"framework": "pytorch"},
        {"framework": "xgboost"},
        {"framework": "onnx"},
    ],
    ids=lambda a: a["framework"],
)
def test_a_measured_capacity_gives_a_saturation_alert_where_requests_are_counted(
    tmp_path: Path, answers: dict[str, Any]
) -> None:
    """The busiest replica's request rate against 80 % of the measured capacity, on the request
    counter the runtime exports; no alert where it exports none. promtool passes the rules and
    the unit tests of the alert firing (one replica past the threshold while the mean is below
    it) and staying silent (each replica below it while their sum is above)."""
    design = evaluate(make_requirements(measured=MEASURED, **answers))
    assert design.thresholds.saturation_rps_per_replica == 144.0
    dest = tmp_path / "repo"
    generate(design, dest)
    rules = _rules(dest)
    facts = monitoring.runtime_metrics(design.requirements.framework, design.components.kserve)
    counted = facts["requests"] or (f"{facts['latency']}_count" if facts["latency"] else None)
    assert ("ModelReplicaSaturation" in rules) == bool(counted)
    tests = (dest / "monitoring" / "alerts.test.yaml").read_text()
    if counted:
        rule = rules["ModelReplicaSaturation"]
        assert rule["expr"].startswith(f"max(sum by (instance) (rate({counted}{{")
        assert rule["expr"].endswith(" > 144")
        assert (
            "measured 2026-12-02 on 1 core: 180 rps at p95 41 ms"
            in (rule["annotations"]["description"])
        )
        assert (rule["labels"]["severity"], rule["labels"]["notify"]) == ("P2", "chat")
        assert tests.count("alertname: ModelReplicaSaturation") == 3
        dashboard = json.loads((dest / "monitoring" / "grafana-dashboard.json").read_text())
        (panel,) = [p for p in dashboard["panels"] if p["title"].startswith("Busiest replica")]
        assert panel["targets"][0]["expr"] == rule["expr"].removesuffix(" > 144")
        defaults = panel["fieldConfig"]["defaults"]
        assert [s["value"] for s in defaults["thresholds"]["steps"]] == [0, 144.0, 180.0]
        assert defaults["custom"]["thresholdsStyle"]["mode"] == "line"
    else:
        assert "ModelReplicaSaturation" not in tests
        runbook = (dest / "docs" / "runbooks" / "high-latency.md").read_text()
        assert "No saturation alert: Prometheus scrapes no request counter" in runbook
    _promtool(dest)


def test_without_a_measurement_there_is_no_saturation_alert_and_the_docs_say_why(
    tmp_path: Path,
) -> None:
    design = evaluate(make_requirements())
    assert design.thresholds.saturation_rps_per_replica is None
    assert "replica-saturation" not in {a.name for a in design.alerts}
    dest = tmp_path / "repo"
    generate(design, dest)
    assert "ModelReplicaSaturation" not in _rules(dest)
    decisions = (dest / "docs" / "decisions.md").read_text()
    assert "| saturation_rps_per_replica | none: not measured (see Sizing assumptions) |" in (
        decisions
    )
    assert "no saturation alert while the capacity of one replica is assumed" in decisions
    dashboard = json.loads((dest / "monitoring" / "grafana-dashboard.json").read_text())
    (panel,) = [p for p in dashboard["panels"] if p["title"].startswith("Busiest replica")]
    assert [s["value"] for s in panel["fieldConfig"]["defaults"]["thresholds"]["steps"]] == [0]


def test_a_measurement_without_a_watched_endpoint_gives_no_saturation_alert(
    tmp_path: Path,
) -> None:
    """Without Kubernetes nothing scrapes the endpoint: the alert would read series that never
    exist, as the other serving alerts would."""
    design = evaluate(make_requirements(kubernetes=False, measured=MEASURED))
    assert design.thresholds.saturation_rps_per_replica == 144.0
    assert monitoring.monitoring_contract(design)["saturation"] is None
    dest = tmp_path / "repo"
    generate(design, dest)
    assert "ModelReplicaSaturation" not in _rules(dest)
    _promtool(dest)


def test_the_saturation_threshold_is_written_with_every_digit(tmp_path: Path) -> None:
    """A measured 123456.7 rps gives 98765.36, not the six digits of `%g` (98765.4)."""
    design = evaluate(make_requirements(measured={**MEASURED, "rps_per_replica": 123456.7}))
    assert design.thresholds.saturation_rps_per_replica == 98765.36
    dest = tmp_path / "repo"
    generate(design, dest)
    rule = _rules(dest)["ModelReplicaSaturation"]
    assert rule["expr"].endswith(" > 98765.36")
    assert "(98765.36 requests/s)" in rule["annotations"]["description"]
    _promtool(dest)


def test_the_deployment_path_watches_its_pods_busiest_replica(tmp_path: Path) -> None:
    """On the plain Deployment (MLServer, pods labelled `app`), the same alert reads the
    Deployment's pods, and promtool passes its unit tests."""
    from dataclasses import replace

    from tests.generated_cases import CASES

    case = CASES["variant-deployment-serving-production"]
    design = replace(case, answers={**case.answers, "measured": MEASURED}).design()
    assert design.components.k8s_deployment and not design.components.kserve
    dest = tmp_path / "repo"
    generate(design, dest)
    rule = _rules(dest)["ModelReplicaSaturation"]
    project = design.requirements.project_name
    assert rule["expr"].startswith(
        f'max(sum by (instance) (rate(rest_server_requests_total{{app="{project}", '
    )
    _promtool(dest)
