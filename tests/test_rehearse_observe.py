"""The rehearsal's monitoring: Prometheus, Alertmanager and the Pushgateway run for real with
the generated monitoring files.

The slow tests share one rehearsal (module fixture) of a KServe project whose runtime is
MLServer: the tracking server and the entry points as in tests/test_rehearse.py, MLServer
serving the registered champion (started here, where the serving component of the rehearsal
would; the monitoring component reads it as a ``ServingEndpoint``), then the monitoring
component. The fast tests check the generated files for what running them found.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlopsctl import monitoring, render
from mlopsctl.api import generate
from mlopsctl.rehearse import Handoff, Rehearsal, _proc, images, observe
from mlopsctl.rehearse.errors import ProjectError
from mlopsctl.rehearse.runner import run_components, session
from mlopsctl.rehearse.stage import Stage

from .conftest import make_requirements
from .generated_cases import CASES, MEASURED, Case

NAME = "observed"
# MLServer as KServe v0.20's kserve-mlserver runtime ships it (versions.yaml: images.mlserver).
MLSERVER = "1.7.1"
_METRIC = re.compile(r"(?<![\w:])([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(?:\{|\[)")
# A capacity as `rehearse --measure` records it: the saturation alert is generated and checked.
_FUNCTIONS = {"rate", "sum", "by", "max", "min", "histogram_quantile", "vector"}


def _generated(tmp: Path, case: Case | None = None) -> Path:
    root = tmp / "repo"
    render.generate((case or Case({})).design(), root)
    return root


def _read_metrics(root: Path) -> dict[str, set[str]]:
    """file -> metric names its queries read (alerts, dashboard, monitoring.json)."""
    rules = observe.rules_of(root / observe.ALERTS)
    config = json.loads((root / observe.CONFIG).read_text())
    exprs = {
        observe.ALERTS: [r["expr"] for r in rules.values()],
        observe.DASHBOARD: [e for _, e in observe.dashboard_queries(root / observe.DASHBOARD)],
        observe.CONFIG: [m["query"] for m in config["metrics"]],
    }
    return {f: {m for e in es for m in _METRIC.findall(e)} - _FUNCTIONS for f, es in exprs.items()}


# --- fast: the generated files ----------------------------------------------------------------

PROFILES = {
    "kserve-sklearn": Case({}),
    "kserve-mlserver": Case({"framework": "custom"}),
    "deployment-mlserver": CASES["variant-deployment-serving-production"],
    "kserve-tensorflow": Case({"framework": "tensorflow"}),
    "kserve-onnx": Case({"framework": "onnx"}),
}


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_serving_queries_read_what_the_runtime_exports_not_knative(
    tmp_path: Path, profile: str
) -> None:
    """Knative's queue-proxy (kn_serving_*) runs only in KServe's Serverless mode: in
    RawDeployment, on the plain Deployment and in the rehearsal those series never exist, so the
    serving alerts stayed silent and ModelServingDown (kube-state-metrics) read nothing either.
    Every serving query reads a metric of the runtime's row of data/serving.yaml, or `up`."""
    root = _generated(tmp_path, PROFILES[profile])
    design = json.loads((root / observe.DESIGN).read_text())
    kserve = design["components"]["kserve"]
    runtime = monitoring.runtime_metrics(design["requirements"]["framework"], kserve)
    exported = {"up", *monitoring.PUSHED_METRICS.values()}
    if runtime["latency"]:
        exported |= {runtime["latency"] + "_bucket", runtime["latency"] + "_count"}
    if runtime["requests"]:
        exported.add(runtime["requests"])
    for path, read in _read_metrics(root).items():
        assert not [m for m in read if m.startswith(("kn_", "revision_", "kube_"))], (path, read)
        assert read <= exported, (path, read - exported)
    rules = observe.rules_of(root / observe.ALERTS)
    assert ("ModelLatencyP95High" in rules) == bool(runtime["latency"])
    assert ("ModelErrorRateHigh" in rules) == bool(runtime["requests"] and runtime["errors"])
    assert (
        'up{serving_kserve_io_inferenceservice="' in rules["ModelServingDown"]["expr"]
        or (not kserve and f'up{{app="{design["requirements"]["project_name"]}"}}')
        in rules["ModelServingDown"]["expr"]
    )
    if shutil.which("promtool") is None:
        pytest.fail("promtool is required (Debian package prometheus)")
    proc = subprocess.run(
        ["promtool", "test", "rules", "alerts.test.yaml"],
        cwd=root / "monitoring",
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_mlserver_latency_is_the_histogram_mlserver_exports(tmp_path: Path) -> None:
    """MLServer 1.7 (starlette_exporter) exports rest_server_request_duration_seconds; the
    Deployment path read rest_server_requests_duration_seconds, which no MLServer exports."""
    root = _generated(tmp_path, PROFILES["deployment-mlserver"])
    rules = observe.rules_of(root / observe.ALERTS)
    latency = rules["ModelLatencyP95High"]["expr"]
    assert "rest_server_request_duration_seconds_bucket{" in latency
    assert 'path=~"/v2/models/.+/infer"' in latency  # probes and metadata calls are no requests
    errors = rules["ModelErrorRateHigh"]["expr"]
    assert 'rest_server_requests_total{app="' in errors and 'status_code=~"5.."' in errors
    assert "or vector(0)" in errors  # no failed request yet: a rate of 0, not no answer


def test_alertmanager_configuration_loads_in_alertmanager_0_25(tmp_path: Path) -> None:
    """`url_file` on a webhook receiver is refused by Alertmanager 0.25 (Debian 12's): the whole
    configuration failed to load and no alert was routed."""
    root = _generated(tmp_path)
    binaries = observe.tools()
    proc = subprocess.run(
        [binaries["amtool"], "check-config", str(root / observe.ALERTMANAGER)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    text = (root / observe.ALERTMANAGER).read_text()
    assert "- url_file:" not in text and "credentials_file:" in text


@pytest.mark.parametrize("profile", ["kserve-mlserver", "deployment-mlserver"])
def test_amtool_routes_each_alert_to_the_receiver_of_its_decided_channel(
    tmp_path: Path, profile: str
) -> None:
    # Measured, so that every alert of the table exists (the saturation alert needs it).
    case = PROFILES[profile]
    root = _generated(tmp_path, replace(case, answers={**case.answers, "measured": MEASURED}))
    decided = {
        a["name"]: a["notify"] for a in json.loads((root / observe.DESIGN).read_text())["alerts"]
    }
    rules = observe.rules_of(root / observe.ALERTS)
    assert "ModelErrorRateCritical" in rules and decided["error-rate-critical"] == "page"
    amtool = observe.tools()["amtool"]
    for rule_name, alert, _group, _runbook in monitoring._ALERTS:
        labels = observe.route_labels(rules[alert], alert)
        proc = subprocess.run(
            [amtool, "config", "routes", "test", f"--config.file={root / observe.ALERTMANAGER}"]
            + [f"{k}={v}" for k, v in labels.items()],
            capture_output=True,
            text=True,
            check=False,
        )
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.strip() == monitoring.RECEIVERS[decided[rule_name]], (alert, labels)


@dataclass
class _Checks:
    """What the saturation check reads of a stage (the project's files) and what it records."""

    project: Path
    checks: list[tuple[str, bool, str]] = field(default_factory=list)

    def file(self, relative: str) -> Path:
        return self.project / relative

    def check(self, name: str, passed: bool, checked: str, detail: str = "") -> bool:
        self.checks.append((name, passed, detail))
        return passed


def test_the_saturation_check_expects_the_alert_exactly_where_the_design_implies_it(
    tmp_path: Path,
) -> None:
    """The recorded design implies the alert and its threshold (measured: 0.8 x 180 rps); an
    alerts.yaml that lost the rule fails the check instead of skipping it."""
    measured = _generated(tmp_path / "measured", Case({"measured": MEASURED}))
    stage: Any = _Checks(measured)
    expected = observe.saturation_expected(stage)
    assert expected is not None and expected["threshold"] == 144.0
    rules = observe.rules_of(measured / observe.ALERTS)
    assert rules[observe.SATURATION_ALERT]["expr"].endswith(f" > {expected['threshold']:g}")
    del rules[observe.SATURATION_ALERT]
    observe._check_saturation(stage, None, rules, None)  # type: ignore[arg-type]
    ((name, passed, detail),) = stage.checks
    assert name.startswith(observe.SATURATION_ALERT) and passed is False
    assert "implied by the design: True" in detail
    assumed = _generated(tmp_path / "assumed")
    stage = _Checks(assumed)
    assert observe.saturation_expected(stage) is None
    observe._check_saturation(stage, None, observe.rules_of(assumed / observe.ALERTS), None)  # type: ignore[arg-type]
    assert stage.checks == []  # nothing measured: no saturation alert, nothing to check


def _gateway(root: Path, env: dict[str, str]) -> str:
    code = "import metrics_push; print(metrics_push.gateway())"
    proc = subprocess.run(
        [sys.executable, "-c", code],
        cwd=root / "src",
        env={"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(root / "src"), **env},
        capture_output=True,
        text=True,
        check=True,
    )
    return proc.stdout.strip()


def test_jobs_in_a_pod_push_to_the_pushgateway_the_configuration_names(tmp_path: Path) -> None:
    """The drift check and training pushed only when PROMETHEUS_PUSHGATEWAY was set, which no
    pipeline step sets: in the cluster no drift metric ever reached Prometheus."""
    root = _generated(tmp_path)
    config = json.loads((root / observe.CONFIG).read_text())
    assert config["pushgateway"] == monitoring.PUSHGATEWAY_URL
    assert _gateway(root, observe.KUBELET_ENV) == monitoring.PUSHGATEWAY_URL
    assert _gateway(root, {}) == "None"  # a laptop: nothing is sent
    assert _gateway(root, {**observe.KUBELET_ENV, "PROMETHEUS_PUSHGATEWAY": ""}) == "None"
    assert _gateway(root, {"PROMETHEUS_PUSHGATEWAY": "pg:9091"}) == "pg:9091"


def test_every_runtime_of_the_frameworks_has_its_metric_facts() -> None:
    table = monitoring.serving_table()
    runtimes = {fw["runtime"] for fw in table["frameworks"].values()}
    assert runtimes | {monitoring.DEPLOYMENT_RUNTIME} <= set(table["runtime_metrics"])
    for name, facts in table["runtime_metrics"].items():
        assert facts["latency_unit"] in monitoring.LATENCY_SCALE_TO_MS, name
        if facts["requests"] and facts["errors"]:
            assert facts["series"]["ok"] and facts["series"]["error"], name


# --- slow: the rehearsal ----------------------------------------------------------------------


@dataclass(frozen=True)
class Endpoint:
    """The serving contract's shape (``ServingEndpoint``): what the monitoring component reads."""

    url: str
    metrics_url: str
    model_name: str
    model_version: str
    protocol: str
    infer_path: str
    request: dict[str, Any] = field(default_factory=dict)


def _pin(root: Path, package: str) -> str:
    for line in (root / "requirements.txt").read_text().splitlines():
        if line.lower().startswith(package + "=="):
            return line.strip()
    raise AssertionError(f"requirements.txt pins no {package}")


def _v2_request(example: dict[str, Any]) -> dict[str, Any]:
    """A V2 inference request of the model's input example (split orient)."""
    columns, rows = example["columns"], example["data"]
    return {
        "parameters": {"content_type": "pd"},
        "inputs": [
            {
                "name": column,
                "shape": [len(rows)],
                "datatype": "FP64",
                "data": [float(row[i]) for row in rows],
            }
            for i, column in enumerate(columns)
        ],
    }


def _start_mlserver(stage: Stage) -> Endpoint:
    """MLServer serving the registered champion, as the kserve-mlserver runtime serves it."""
    project_image = stage.shared["project_image"]
    python = project_image.venv / "bin" / "python"
    venv = images.install(
        [
            f"mlserver=={MLSERVER}",
            f"mlserver-mlflow=={MLSERVER}",
            _pin(stage.project, "mlflow"),
            _pin(stage.project, "scikit-learn"),
        ],
        Path(os.path.realpath(python)),
        stage.cache,
        "MLServer",
    )
    root = stage.workspace / "mlserver"
    root.mkdir()
    env = {
        "PATH": f"{venv / 'bin'}:/usr/bin:/bin",
        "HOME": str(root),
        "MLFLOW_TRACKING_URI": project_image.env["MLFLOW_TRACKING_URI"],
        "HTTP_PROXY": stage.network.proxy_url,
        "http_proxy": stage.network.proxy_url,
    }
    download = _proc.run(
        [
            str(venv / "bin" / "mlflow"),
            "artifacts",
            "download",
            "--artifact-uri",
            f"models:/{NAME}@champion",
            "--dst-path",
            str(root / "model"),
        ],
        env=env,
        timeout=300,
    )
    assert download.returncode == 0, download.stdout + download.stderr
    (model,) = {p.parent for p in (root / "model").rglob("MLmodel")}
    http, grpc, metrics = _proc.free_port(), _proc.free_port(), _proc.free_port()
    settings = {"http_port": http, "grpc_port": grpc, "metrics_port": metrics, "host": "127.0.0.1"}
    (root / "settings.json").write_text(json.dumps(settings | {"parallel_workers": 0}))
    (root / "model-settings.json").write_text(
        json.dumps(
            {
                "name": NAME,
                "implementation": "mlserver_mlflow.MLflowRuntime",
                "parameters": {"uri": str(model)},
            }
        )
    )
    service = _proc.start(
        [str(venv / "bin" / "mlserver"), "start", str(root)],
        name="mlserver",
        env={k: v for k, v in env.items() if "proxy" not in k.lower()},
        log=stage.workspace / "mlserver.log",
        port=http,
    )
    stage.services.append(service)
    ready = _proc.wait_for(
        service, lambda: _proc.http_call(http, "/v2/health/ready").status == 200, 300
    )
    assert ready, service.log_tail()
    example = json.loads((model / "input_example.json").read_text())
    return Endpoint(
        url=f"http://127.0.0.1:{http}",
        metrics_url=f"http://127.0.0.1:{metrics}/metrics",
        model_name=NAME,
        model_version="1",
        protocol="v2",
        infer_path=f"/v2/models/{NAME}/infer",
        request=_v2_request(example),
    )


@pytest.fixture(scope="module")
def rehearsal(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Stage, Rehearsal]]:
    root = tmp_path_factory.mktemp("observe") / NAME
    generate(make_requirements(project_name=NAME, framework="custom", measured=MEASURED), root)
    with session(root) as stage:
        report = run_components(stage, only=("tracking-server", "entrypoints"))
        assert report.passed, _explain(report)
        stage.shared["serving"] = _start_mlserver(stage)
        yield stage, run_components(stage, only=("monitoring",))


def _explain(report: Rehearsal) -> str:
    return "\n".join(
        f"{h.passed}  {h.component}: {h.name}\n  {h.checked}\n  {h.detail[-3000:]}"
        for h in report.handoffs
        if not h.passed
    )


def _handoff(report: Rehearsal, name: str) -> Handoff:
    found = [h for h in report.handoffs if h.component == "monitoring" and h.name == name]
    assert found, f"no handoff {name} in {[h.name for h in report.handoffs]}"
    return found[0]


HANDOFFS = [
    "the Pushgateway starts",
    "amtool check-config accepts monitoring/alertmanager.yaml",
    "Alertmanager starts with monitoring/alertmanager.yaml",
    "Prometheus loads every rule of monitoring/alerts.yaml",
    "every rule is evaluated without error",
    "drift on the reference sample pushes its PSI to the Pushgateway config/monitoring.json names",
    "Prometheus scrapes the PSI pushed for the reference sample",
    "drift alerts stay inactive while the pushed PSI is below the design's threshold",
    "a training run pushes its outcome to the Pushgateway",
    "ModelRetrainingFailed stays inactive after a successful training run",
    "every query of monitoring/grafana-dashboard.json returns series",
    "serving alerts stay inactive while the runtime serves",
    "ModelReplicaSaturation evaluates the runtime's request rate against the measured capacity",
    "drift on shifted data pushes its PSI to the Pushgateway config/monitoring.json names",
    "Prometheus scrapes the PSI pushed for shifted data",
    "drift alerts go pending when the pushed PSI exceeds the design's threshold",
    "ModelFeatureDrift fires and reaches Alertmanager",
]


@pytest.mark.slow
@pytest.mark.xdist_group("rehearse")
def test_every_monitoring_handoff_passes(rehearsal: tuple[Stage, Rehearsal]) -> None:
    _, report = rehearsal
    own = [h for h in report.handoffs if h.component == "monitoring"]
    assert own and all(h.passed for h in own), _explain(report)


@pytest.mark.slow
@pytest.mark.xdist_group("rehearse")
@pytest.mark.parametrize("name", HANDOFFS)
def test_monitoring_handoff(rehearsal: tuple[Stage, Rehearsal], name: str) -> None:
    _, report = rehearsal
    assert _handoff(report, name).passed, _explain(report)


@pytest.mark.slow
@pytest.mark.xdist_group("rehearse")
def test_each_alert_is_routed_to_the_receiver_of_its_decided_channel(
    rehearsal: tuple[Stage, Rehearsal],
) -> None:
    stage, report = rehearsal
    rules = observe.rules_of(stage.project / observe.ALERTS)
    assert {"ModelServingDown", "ModelLatencyP95High", "ModelErrorRateCritical"} <= set(rules)
    expected = observe.expected_receivers(stage)
    assert expected["ModelErrorRateCritical"] == "pager"  # ALR001: a P1 that pages
    assert expected["ModelFeatureDrift"] == "chat"
    for alert in rules:
        assert _handoff(report, f"amtool routes {alert} to {expected[alert]}").passed, alert


@pytest.mark.slow
@pytest.mark.xdist_group("rehearse")
def test_prometheus_loaded_exactly_the_generated_rule_file(
    rehearsal: tuple[Stage, Rehearsal],
) -> None:
    stage, _ = rehearsal
    config = yaml.safe_load((stage.workspace / "prometheus.yml").read_text())
    assert config["rule_files"] == [str(stage.project / observe.ALERTS)]
    serving = next(j for j in config["scrape_configs"] if j["job_name"] == "serving")
    assert serving["static_configs"][0]["labels"] == monitoring.pod_labels(NAME, kserve=True)


@pytest.mark.slow
@pytest.mark.xdist_group("rehearse")
def test_the_serving_queries_answer_from_mlserver_series(
    rehearsal: tuple[Stage, Rehearsal],
) -> None:
    """The dashboard's latency and error-rate queries are answered by what MLServer exported
    for the predictions sent, not by an empty result."""
    stage, report = rehearsal
    checked = _handoff(report, "every query of monitoring/grafana-dashboard.json returns series")
    assert f"{observe.TRAFFIC}x 200" in checked.checked  # the predictions were served
    prometheus: observe.Prometheus = stage.shared["prometheus"]  # the one running now
    queries = dict(observe.dashboard_queries(stage.project / observe.DASHBOARD))
    values: dict[str, float | None] = {}

    def answered() -> bool:
        # rate() needs two scrapes that saw the counter grow: traffic between each look.
        observe._traffic(stage, stage.shared["serving"])
        for what in ("Throughput (requests/s) / requests/s", "Error rate / 5xx / all"):
            values[what] = prometheus.value(queries[what])
        throughput = values["Throughput (requests/s) / requests/s"]
        return all(v is not None for v in values.values()) and (throughput or 0) > 0

    assert observe._wait(prometheus.service, answered), values
    assert (values["Throughput (requests/s) / requests/s"] or 0) > 0
    assert values["Error rate / 5xx / all"] == 0.0


@pytest.mark.parametrize(("text", "seconds"), [("15m", 900), ("1h30m", 5400), ("500ms", 0.5)])
def test_for_durations_are_read_as_prometheus_reads_them(text: str, seconds: float) -> None:
    assert observe._duration_seconds(text) == seconds


def test_a_for_that_is_no_duration_is_a_project_error() -> None:
    with pytest.raises(ProjectError, match="no Prometheus duration"):
        observe._duration_seconds("15 minutes")
