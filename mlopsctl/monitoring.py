"""The monitoring contract of a design: metric names, PromQL queries, alerts with their
priorities, routes and receivers, thresholds and for-durations.

Computed once, here, from the design; the Prometheus rules and their promtool tests, the
Alertmanager configuration, the Grafana dashboard, ``config/monitoring.json``, the drift job's
pushed metrics, the quick start and ``validate`` all read it. Nothing here decides: priorities and
notification channels are those of the alert rules (ALR*), thresholds those of the design.
"""

from __future__ import annotations

import math
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

# Request metrics of the serving path: those the serving runtime itself exports
# (``runtime_metrics`` in data/serving.yaml), which exist wherever the runtime runs: KServe in
# Serverless or RawDeployment mode, the plain Deployment, the rehearsal. Knative's queue-proxy
# metrics exist only in Serverless mode, where the queue-proxy sidecar runs.
# Replicas: Prometheus' own ``up`` series of each scraped runtime pod, on the pod's labels as
# Kubernetes pod discovery maps them (``labelmap`` of ``__meta_kubernetes_pod_label_(.+)``, the
# ``prometheus.io/scrape`` convention the manifests' annotations follow). It needs no
# kube-state-metrics, and a runtime no scrape job watches has no ``up`` series either.
REPLICAS_AVAILABLE = "up"
# The in-cluster Pushgateway the jobs push to when they run in a pod (the Service of the
# prometheus-community/prometheus-pushgateway chart installed as `prometheus-pushgateway` in
# the `monitoring` namespace; PROMETHEUS_PUSHGATEWAY overrides it).
PUSHGATEWAY_SERVICE = "prometheus-pushgateway"
PUSHGATEWAY_NAMESPACE = "monitoring"
PUSHGATEWAY_PORT = 9091
PUSHGATEWAY_URL = (
    f"http://{PUSHGATEWAY_SERVICE}.{PUSHGATEWAY_NAMESPACE}.svc.cluster.local:{PUSHGATEWAY_PORT}"
)
# The server of the Deployment path (no KServe), in runtime_metrics.
DEPLOYMENT_RUNTIME = "mlserver"
LATENCY_SCALE_TO_MS = {"seconds": 1000.0, "microseconds": 0.001}

# Alertmanager: one receiver per notification channel of the alert rules.
RECEIVERS: dict[str, str] = {
    "page": "pager",
    "alert": "oncall-alerts",
    "chat": "chat",
    "ticket": "team-ticket",
}
REPEAT_INTERVAL: dict[str, str] = {"page": "30m", "alert": "1h"}
DEFAULT_RECEIVER = RECEIVERS["ticket"]
# The ticket receiver's webhook: a Service bridging to the team's ticket system.
TICKET_WEBHOOK = "http://team-ticket-webhook.monitoring.svc.cluster.local:8080/alerts"
RATE_WINDOW = "5m"
# Each replica is one scrape target: Prometheus gives every series of a target its ``instance``
# label (the pod's address under pod discovery), so a rate summed by it is one replica's.
REPLICA_LABEL = "instance"
# The saturation alert waits this many replica start-ups (``sizing.startup_seconds``), and at
# least SATURATION_FOR_MIN_MINUTES: time for the autoscaler to add replicas and for them to start.
SATURATION_FOR_STARTUPS = 2
SATURATION_FOR_MIN_MINUTES = 10
# Two replicas of the promtool unit tests' input series (their ``instance``).
TEST_REPLICAS = ("10.0.0.11:8082", "10.0.0.12:8082")


@lru_cache(maxsize=1)
def serving_table() -> dict[str, Any]:
    """Per-framework serving facts (KServe model format, runtime, exported metrics)."""
    import yaml

    data: dict[str, Any] = yaml.safe_load(
        (Path(__file__).parent / "data" / "serving.yaml").read_text(encoding="utf-8")
    )
    return data


def runtime_name(framework: str, kserve: bool) -> str:
    """The serving runtime whose metrics watch the model: the framework's KServe runtime, or
    the Deployment path's MLServer."""
    return (
        str(serving_table()["frameworks"][framework]["runtime"]) if kserve else DEPLOYMENT_RUNTIME
    )


def runtime_metrics(framework: str, kserve: bool) -> dict[str, Any]:
    """What that runtime exports (``runtime_metrics`` in data/serving.yaml)."""
    runtime = runtime_name(framework, kserve)
    table: dict[str, dict[str, Any]] = serving_table()["runtime_metrics"]
    if runtime not in table:
        raise KeyError(f"data/serving.yaml: runtime_metrics has no entry for runtime {runtime}")
    return table[runtime]


def serving_metric_names() -> tuple[str, ...]:
    """Every request metric a runtime of the table exports (the bases, as the table names them)."""
    names: set[str] = set()
    for facts in serving_table()["runtime_metrics"].values():
        names.update(str(facts[k]) for k in ("latency", "requests") if facts.get(k))
    return tuple(sorted(names))


# Every runtime's request metrics, for `validate` (MLV302: queries read metrics that exist).
SERVING_METRICS = serving_metric_names()


def runtime_latency_metric(framework: str) -> str:
    """The latency histogram the framework's KServe runtime exports ("" when it exports none)."""
    return str(runtime_metrics(framework, kserve=True).get("latency") or "")


def pod_labels(project: str, kserve: bool, *, seldon: bool = False) -> dict[str, str]:
    """Labels of the serving pods as Prometheus' pod discovery maps them (dots and slashes of
    the Kubernetes label names become underscores): the InferenceService's predictor pods, the
    Seldon Server's pods (the operator labels them ``seldon-server-name``), or the Deployment's
    pods (its template's ``app`` label). A Seldon Server runs MLServer, whose own metrics are
    the Deployment path's (``mlserver`` in runtime_metrics)."""
    if kserve:
        return {"serving_kserve_io_inferenceservice": project, "component": "predictor"}
    if seldon:
        return {"seldon_server_name": resource_names(project)["serving_runtime"]}
    return {"app": project}


def _matchers(*parts: str) -> str:
    return ", ".join(p for p in parts if p)


def _serving_metrics(
    project: str, framework: str, kserve: bool, *, seldon: bool = False
) -> dict[str, Any]:
    """Selectors, metric names and unit of the request metrics the serving runtime exports."""
    facts = runtime_metrics(framework, kserve)
    labels = pod_labels(project, kserve, seldon=seldon)
    pods = _matchers(*(f'{k}="{v}"' for k, v in labels.items()))
    model = f'{facts["model_label"]}="{project}"' if facts.get("model_label") else ""
    selector = _matchers(pods, model, str(facts.get("matchers") or ""))
    example = facts.get("series") or {}
    series_labels = _matchers(pods, model, str(example.get("request") or ""))
    latency = facts.get("latency")
    requests = facts.get("requests")
    errors = facts.get("errors")
    unit = str(facts.get("latency_unit") or "seconds")
    scale = LATENCY_SCALE_TO_MS[unit]
    series: dict[str, Any] = {
        "up": f"{REPLICAS_AVAILABLE}{{{pods}}}",
        "latency_scale": 1 / scale,  # milliseconds -> the histogram's unit
    }
    if latency:
        series["latency"] = f'{latency}_bucket{{{series_labels}, le="'
    if requests and errors:
        series["requests"] = f"{requests}{{{_matchers(series_labels)}, "
        series["ok"] = f"{example['ok']}}}"
        series["error"] = f"{example['error']}}}"
    counted = requests or (f"{latency}_count" if latency else None)
    if counted:
        # One request series per replica, as each replica's scrape labels it.
        replica = REPLICA_LABEL + '="{}"'
        series["replica_requests"] = [
            f"{counted}{{{_matchers(series_labels, replica.format(pod))}}}" for pod in TEST_REPLICAS
        ]
    return {
        "runtime": facts,
        "pods": pods,
        "selector": selector,
        "latency": latency,
        "requests": counted,
        "errors_selector": _matchers(selector, str(errors)) if requests and errors else None,
        "scale": f" * {scale:g}",
        "up": f"sum({REPLICAS_AVAILABLE}{{{pods}}})",
        "series": series,
    }


def queries(project: str, kserve: bool, *, framework: str, seldon: bool = False) -> dict[str, str]:
    """The PromQL queries that watch the model (latency in milliseconds); a serving query only
    where the runtime exports what it reads."""
    m = _serving_metrics(project, framework, kserve, seldon=seldon)
    out: dict[str, str] = {}
    if m["latency"]:
        bucket = f"{m['latency']}_bucket{{{m['selector']}}}"
        for q in ("0.50", "0.95", "0.99"):
            out[f"latency_p{q[2:]}_ms"] = (
                f"histogram_quantile({q}, sum by (le) (rate({bucket}[{RATE_WINDOW}])))" + m["scale"]
            )
    if m["requests"]:
        total = f"sum(rate({m['requests']}{{{m['selector']}}}[{RATE_WINDOW}]))"
        out["requests_per_second"] = total
        # The busiest replica's request rate (a canary or an uneven balancer leaves one replica
        # saturated while the mean looks healthy).
        out["busiest_replica_rps"] = (
            f"max(sum by ({REPLICA_LABEL}) (rate({m['requests']}{{{m['selector']}}}"
            f"[{RATE_WINDOW}])))"
        )
        if m["errors_selector"]:
            # No failed request yet is no series: 0 errors per second, not no answer.
            errors = f"sum(rate({m['requests']}{{{m['errors_selector']}}}[{RATE_WINDOW}]))"
            out["errors_per_second"] = f"({errors} or vector(0))"
            out["error_rate"] = f"({errors} or vector(0)) / {total}"
    out["replicas_available"] = m["up"]
    return out | pushed_queries(project)


def pushed_queries(project: str) -> dict[str, str]:
    """The queries on what the jobs push (drift, retraining)."""
    model = f'{{model="{project}"}}'
    return {
        "drift_psi": PUSHED_METRICS["drift_psi"] + model,
        "drift_psi_max": f"max({PUSHED_METRICS['drift_psi']}{model})",
        "drift_ks_pvalue_min": f"min({PUSHED_METRICS['drift_ks_pvalue']}{model})",
        "retraining_failed_max": f"max({PUSHED_METRICS['retraining_failed']}{model})",
    }


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
    ("replica-saturation", "ModelReplicaSaturation", "serving", "high-latency"),
)


def serving_watched(design: StackDesign) -> bool:
    """Whether Prometheus can see the online endpoint at all.

    Only the Kubernetes serving paths run a runtime that exports the request metrics the serving
    alerts and panels read, in pods a scrape job discovers (their ``up``). Without Kubernetes the
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
    if not serving_watched(design):
        return specs
    # The runtime's replicas that answer their scrape; each request alert only where the
    # runtime exports what its query reads.
    specs["serving-down"] = {
        "expr": f"({q['replicas_available']} or vector(0)) < 1",
        "for": "2m",
        "summary": f"No available replica of {project}",
    }
    if "latency_p95_ms" in q:
        specs["latency-slo"] = {
            "expr": f"{q['latency_p95_ms']} > {t.latency_p95_alert_ms}",
            "for": f"{t.latency_alert_for_minutes}m",
            "summary": f"p95 latency above {t.latency_p95_alert_ms} ms",
        }
    if "error_rate" in q:
        specs["error-rate-high"] = {
            "expr": f"({q['error_rate']}) > {t.error_rate_alert}",
            "for": "5m",
            "summary": f"Error rate above {t.error_rate_alert}",
        }
        specs["error-rate-critical"] = {
            "expr": f"({q['error_rate']}) > {t.error_rate_page}",
            "for": "5m",
            "summary": f"Error rate above {t.error_rate_page}",
        }
    saturation = saturation_contract(design, q)
    if saturation is not None:
        specs["replica-saturation"] = {
            "expr": f"{q['busiest_replica_rps']} > {saturation['threshold']:.15g}",
            "for": saturation["for"],
            "summary": f"A replica of {project} serves more than {saturation['threshold']:.15g} "
            f"requests/s, {saturation['fraction']:.0%} of its measured capacity",
            "description": saturation["description"],
        }
    return specs


def saturation_contract(design: StackDesign, q: dict[str, str]) -> dict[str, Any] | None:
    """The saturation alert's facts, or None where there is none: no measured capacity (the
    threshold is None), or no request counter the runtime exports, or no watched endpoint."""
    threshold = design.thresholds.saturation_rps_per_replica
    measured = design.requirements.measured
    if threshold is None or measured is None or "busiest_replica_rps" not in q:
        return None
    # The fraction of the measured capacity the sizing rules set the threshold at.
    fraction = threshold / measured.rps_per_replica
    if not serving_watched(design):
        return None
    sizing = design.sizing
    minutes = max(
        SATURATION_FOR_MIN_MINUTES,
        SATURATION_FOR_STARTUPS * math.ceil((sizing.startup_seconds or 0) / 60),
    )
    description = (
        f"One replica sustained {measured.rps_per_replica:.15g} requests/s with p95 "
        f"{measured.p95_ms:g} ms within the {measured.latency_target_ms:g} ms SLA "
        f"({measured.summary()}; {measured.runtime}, {measured.tool}, {measured.machine}). "
        f"Replicas are sized for {sizing.target_utilization:.0%} of that; the busiest one has "
        f"served more than {fraction:.0%} of it ({threshold:.15g} requests/s) for "
        f"{minutes} minutes: the autoscaler cannot add replicas (at most {sizing.max_replicas}) "
        "or the traffic outgrew the measurement. Measure again after a model or runtime change "
        "(mlopsctl rehearse --measure)."
    )
    return {
        "threshold": threshold,
        "fraction": fraction,
        "capacity": measured.rps_per_replica,
        "measured": measured.summary(),
        "for": f"{minutes}m",
        "for_minutes": minutes,
        "description": description,
        # promtool input: per-minute increments of each replica's request counter.
        "per_minute_low": math.floor(threshold * 60 * 0.6),
        "per_minute_high": math.ceil(threshold * 60 * 1.25),
        "per_minute_idle": math.floor(threshold * 60 * 0.25),
    }


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
    framework = design.requirements.framework
    seldon = design.components.seldon
    q = queries(project, kserve, framework=framework, seldon=seldon)
    m = _serving_metrics(project, framework, kserve, seldon=seldon)
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
        "runtime": runtime_name(framework, kserve),
        "pod_labels": pod_labels(project, kserve, seldon=seldon),
        "pushgateway": PUSHGATEWAY_URL,
        "queries": q,
        "alerts": alerts(design, q),
        "saturation": saturation_contract(design, q),
        "groups": {"serving": names["alert_group_serving"], "model": names["alert_group_model"]},
        "routes": routes(),
        "receivers": dict(RECEIVERS),
        "default_receiver": DEFAULT_RECEIVER,
        "ticket_webhook": TICKET_WEBHOOK,
    }
