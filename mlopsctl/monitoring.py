"""The monitoring contract of a design: metric names, PromQL queries, alerts with their
priorities, routes and receivers, thresholds and for-durations.

Computed once, here, from the design; the Prometheus rules and their promtool tests, the
Alertmanager configuration, the Grafana dashboard, ``config/monitoring.json``, the drift job's
pushed metrics, the quick start and ``validate`` all read it. Nothing here decides: priorities and
notification channels are those of the alert rules (ALR*), thresholds those of the design.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

from mlopsctl.design import StackDesign
from mlopsctl.names import resource_names

# Metrics the generated jobs push (drift check, training) through the Prometheus Pushgateway.
PUSHED_METRICS: dict[str, str] = {
    "drift_psi": "model_feature_drift_psi",
    "drift_ks_pvalue": "model_feature_drift_ks_pvalue",
    "retraining_failed": "model_retraining_last_run_failed",
    "retraining_success_time": "model_retraining_last_success_timestamp_seconds",
}

# Request metrics of the serving path. KServe predictors in serverless mode sit behind Knative's
# queue-proxy. Since Knative Serving moved from OpenCensus to OpenTelemetry (1.18+), the
# queue-proxy no longer exports revision_request_count / revision_request_latencies; its workload
# metrics are the histogram kn.serving.invocation.duration (seconds, attribute
# http.response.status_code) and the gauge kn.serving.queue.depth, attributed with
# kn.service.name, kn.revision.name, k8s.namespace.name
# (https://knative.dev/docs/serving/observability/metrics/serving-metrics/). Knative 1.21 renamed
# them from kn.queueproxy.app.duration / kn.queueproxy.depth (knative/serving#16290, "v1.21
# release" notes). Concurrency through the activator is kn.revision.request.concurrency. The
# Prometheus exporter writes dots as underscores and appends the unit (so the series are
# *_seconds_bucket and *_seconds_count, labelled kn_service_name and http_response_status_code);
# request counts are the histogram's _count. The Deployment path serves with MLServer
# (https://docs.seldon.ai/mlserver/user-guide/metrics, latency in seconds).
KNATIVE_LATENCY = "kn_serving_invocation_duration_seconds"
KNATIVE_REQUESTS = "kn_serving_invocation_duration_seconds_count"
MLSERVER_LATENCY = "rest_server_requests_duration_seconds"
MLSERVER_REQUESTS = "rest_server_requests_total"
REPLICAS_AVAILABLE = "kube_deployment_status_replicas_available"
# Knative names the Deployment of a revision <service>-<revision number>-deployment.
KNATIVE_FIRST_DEPLOYMENT = "-00001-deployment"

SERVING_METRICS = (KNATIVE_LATENCY, KNATIVE_REQUESTS, MLSERVER_LATENCY, MLSERVER_REQUESTS)
METRICS = (*PUSHED_METRICS.values(), *SERVING_METRICS, REPLICAS_AVAILABLE)

# Alertmanager: one receiver per notification channel of the alert rules.
RECEIVERS: dict[str, str] = {
    "page": "pager",
    "alert": "oncall-alerts",
    "chat": "chat",
    "ticket": "team-ticket",
}
REPEAT_INTERVAL: dict[str, str] = {"page": "30m", "alert": "1h"}
DEFAULT_RECEIVER = RECEIVERS["ticket"]
RATE_WINDOW = "5m"


@lru_cache(maxsize=1)
def serving_table() -> dict[str, Any]:
    """Per-framework serving facts (KServe model format, runtime, exported metrics)."""
    import yaml

    data: dict[str, Any] = yaml.safe_load(
        (Path(__file__).parent / "data" / "serving.yaml").read_text(encoding="utf-8")
    )
    return data


def runtime_latency_metric(framework: str) -> str:
    """The model-latency metric the framework's KServe runtime exports (MLServer's own metric
    for the MLServer runtime)."""
    metric = serving_table()["frameworks"][framework].get("runtime_latency_metric")
    return str(metric) if metric else MLSERVER_LATENCY


def _serving_metrics(project: str, kserve: bool) -> dict[str, Any]:
    """Selectors, metric names and unit of the request metrics the manifests expose."""
    names = resource_names(project)
    if kserve:
        selector = f'kn_service_name="{names["predictor_service"]}"'
        return {
            "selector": selector,
            "latency": KNATIVE_LATENCY,
            "requests": KNATIVE_REQUESTS,
            "errors_selector": f'{selector}, http_response_status_code=~"5.."',
            "scale": " * 1000",  # seconds -> milliseconds
            "up": f'sum({REPLICAS_AVAILABLE}{{deployment=~"{names["predictor_service"]}-.*"}})',
            "series": {
                "latency": f'{KNATIVE_LATENCY}_bucket{{{selector}, le="',
                "requests": f'{KNATIVE_REQUESTS}{{{selector}, http_response_status_code="',
                "ok": '200"}',
                "error": '500"}',
                "up": f'{REPLICAS_AVAILABLE}{{deployment="'
                f'{names["predictor_service"]}{KNATIVE_FIRST_DEPLOYMENT}"}}',
                "latency_scale": 0.001,
            },
        }
    selector = f'app="{project}"'
    return {
        "selector": selector,
        "latency": MLSERVER_LATENCY,
        "requests": MLSERVER_REQUESTS,
        "errors_selector": f'{selector}, status_code=~"5.."',
        "scale": " * 1000",  # seconds -> milliseconds
        "up": f'sum({REPLICAS_AVAILABLE}{{deployment="{project}"}})',
        "series": {
            "latency": f'{MLSERVER_LATENCY}_bucket{{{selector}, le="',
            "requests": f'{MLSERVER_REQUESTS}{{{selector}, status_code="',
            "ok": '200"}',
            "error": '500"}',
            "up": f'{REPLICAS_AVAILABLE}{{deployment="{project}"}}',
            "latency_scale": 0.001,
        },
    }


def queries(project: str, kserve: bool) -> dict[str, str]:
    """The PromQL queries that watch the model (latency in milliseconds)."""
    m = _serving_metrics(project, kserve)
    model = f'{{model="{project}"}}'
    out: dict[str, str] = {}
    bucket = f"{m['latency']}_bucket{{{m['selector']}}}"
    for q in ("0.50", "0.95", "0.99"):
        out[f"latency_p{q[2:]}_ms"] = (
            f"histogram_quantile({q}, sum by (le) (rate({bucket}[{RATE_WINDOW}])))" + m["scale"]
        )
    total = f"sum(rate({m['requests']}{{{m['selector']}}}[{RATE_WINDOW}]))"
    errors = f"sum(rate({m['requests']}{{{m['errors_selector']}}}[{RATE_WINDOW}]))"
    out["requests_per_second"] = total
    out["errors_per_second"] = errors
    out["error_rate"] = f"{errors} / {total}"
    out["replicas_available"] = m["up"]
    out["drift_psi"] = PUSHED_METRICS["drift_psi"] + model
    out["drift_psi_max"] = f"max({PUSHED_METRICS['drift_psi']}{model})"
    out["drift_ks_pvalue_min"] = f"min({PUSHED_METRICS['drift_ks_pvalue']}{model})"
    out["retraining_failed_max"] = f"max({PUSHED_METRICS['retraining_failed']}{model})"
    return out


# The Prometheus alert of each rule alert that a query can watch: (rule alert name, Prometheus
# alert name, group, runbook).
_ALERTS = (
    ("serving-down", "ModelServingDown", "serving", "serving-down"),
    ("latency-slo", "ModelLatencyP95High", "serving", "high-latency"),
    ("error-rate-high", "ModelErrorRateHigh", "serving", "error-rate"),
    ("error-rate-critical", "ModelErrorRateCritical", "serving", "error-rate"),
    ("data-drift", "ModelFeatureDrift", "model", "drift"),
    ("drift-retrain", "ModelDriftRetrainingNeeded", "model", "drift"),
    ("retraining-failed", "ModelRetrainingFailed", "model", "retraining-failure"),
)


def serving_watched(design: StackDesign) -> bool:
    """Whether Prometheus can see the online endpoint at all.

    Only the Kubernetes serving paths export the request and replica metrics the serving alerts
    and panels read (queue-proxy or MLServer, and kube-state-metrics). Without Kubernetes the
    endpoint is ``mlflow models serve`` (``make serve``), whose scoring server exports no
    Prometheus metrics and which no scrape job watches: a serving alert there would read series
    that never exist, and ``ModelServingDown`` (``... or vector(0) < 1``) would fire for ever.
    """
    return design.components.online and design.components.kubernetes


def _alert_specs(design: StackDesign, q: dict[str, str]) -> dict[str, dict[str, str]]:
    t = design.thresholds
    project = design.requirements.project_name
    specs: dict[str, dict[str, str]] = {
        "drift-retrain": {
            "expr": f"{q['drift_psi_max']} > {t.psi_retrain} or "
            f"{q['drift_ks_pvalue_min']} < {t.ks_pvalue}",
            "for": "15m",
            "summary": f"Drift past the retraining threshold (PSI > {t.psi_retrain} or KS "
            f"p-value < {t.ks_pvalue})",
        },
        "data-drift": {
            "expr": f"{q['drift_psi_max']} > {t.psi_investigate}",
            "for": "15m",
            "summary": f"Feature drift: PSI above {t.psi_investigate}, investigate",
        },
        "retraining-failed": {
            "expr": f"{q['retraining_failed_max']} == 1",
            "for": "5m",
            "summary": f"Retraining of {project} failed",
        },
    }
    if serving_watched(design):
        specs |= {
            "serving-down": {
                "expr": f"({q['replicas_available']} or vector(0)) < 1",
                "for": "2m",
                "summary": f"No available replica of {project}",
            },
            "latency-slo": {
                "expr": f"{q['latency_p95_ms']} > {t.latency_p95_alert_ms}",
                "for": f"{t.latency_alert_for_minutes}m",
                "summary": f"p95 latency above {t.latency_p95_alert_ms} ms",
            },
            "error-rate-high": {
                "expr": f"({q['error_rate']}) > {t.error_rate_alert}",
                "for": "5m",
                "summary": f"Error rate above {t.error_rate_alert}",
            },
            "error-rate-critical": {
                "expr": f"({q['error_rate']}) > {t.error_rate_page}",
                "for": "5m",
                "summary": f"Error rate above {t.error_rate_page}",
            },
        }
    return specs


def alerts(design: StackDesign, q: dict[str, str]) -> list[dict[str, str]]:
    """The Prometheus alerts: one for each alert the rules decided that a query watches, with
    the priority (``severity``) and channel (``notify``) of that rule."""
    decided = {a.name: a for a in design.alerts}
    specs = _alert_specs(design, q)
    out = []
    for rule_name, alert_name, group, runbook in _ALERTS:
        if rule_name not in decided or rule_name not in specs:
            continue
        a = decided[rule_name]
        out.append(
            {
                "name": alert_name,
                "decided_as": rule_name,
                "rule": a.rule,
                "group": group,
                "severity": a.priority,
                "notify": a.notify,
                "receiver": RECEIVERS[a.notify],
                "runbook_url": f"docs/runbooks/{runbook}.md",
                **specs[rule_name],
            }
        )
    return out


def routes() -> list[dict[str, str]]:
    """Alertmanager routes: each notification channel to its receiver."""
    return [
        {"notify": notify, "receiver": receiver, "repeat_interval": REPEAT_INTERVAL.get(notify, "")}
        for notify, receiver in RECEIVERS.items()
    ]


def monitoring_contract(design: StackDesign) -> dict[str, Any]:
    """Everything the monitoring files say, as plain data for the templates."""
    project = design.requirements.project_name
    kserve = design.components.kserve
    q = queries(project, kserve)
    framework = design.requirements.framework
    runtime = serving_table()["frameworks"][framework]
    if kserve and design.components.online and runtime["runtime_latency_unit"] == "seconds":
        q["runtime_predict_p95_ms"] = (
            f"histogram_quantile(0.95, sum by (le) (rate({runtime_latency_metric(framework)}"
            f"_bucket[{RATE_WINDOW}]))) * 1000"
        )
    m = _serving_metrics(project, kserve)
    names = resource_names(project)
    return {
        "metrics": {
            "pushed": dict(PUSHED_METRICS),
            "latency": m["latency"],
            "requests": m["requests"],
            "scale": m["scale"],
        },
        "series": m["series"],
        "serving_watched": serving_watched(design),
        "queries": q,
        "alerts": alerts(design, q),
        "groups": {"serving": names["alert_group_serving"], "model": names["alert_group_model"]},
        "routes": routes(),
        "receivers": dict(RECEIVERS),
        "default_receiver": DEFAULT_RECEIVER,
    }
