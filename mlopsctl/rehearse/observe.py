"""Prometheus, Alertmanager and the Pushgateway, loaded with the generated monitoring files.

The Pushgateway answers at the in-cluster address ``config/monitoring.json`` names (the cluster
network routes its Service name here); the drift check and a training run, run as the pipeline's
pods run them (:mod:`mlopsctl.rehearse.entrypoints`, with the variables the kubelet sets in every
pod), push to it. Prometheus loads exactly ``monitoring/alerts.yaml`` and scrapes the
Pushgateway and, when the rehearsal started one, the serving runtime (``stage.shared["serving"]``,
its ``metrics_url``) with the pod labels Kubernetes pod discovery gives its pods. Alertmanager
loads exactly ``monitoring/alertmanager.yaml``. Then: every rule loads and is evaluated; the drift
alerts stay inactive while the pushed PSI is below the design's threshold and go pending past it;
every dashboard query returns series; with a measured capacity, the saturation rule's busiest-
replica rate answers from the runtime's series against the measured threshold; ``amtool`` routes
each alert's labels to the receiver of the channel the design decided; and a firing alert
reaches Alertmanager.

A ``for:`` of 15 minutes cannot elapse in a rehearsal. Prometheus is restarted, as after a crash,
with its data directory holding the pending alert's ``ALERTS_FOR_STATE`` series dated back past
that duration; Prometheus restores the alert's activation time from it (``--rules.alert.for-
outage-tolerance``) and fires it on the next evaluation of the unchanged rule against the
pushed metric, and sends it to Alertmanager.
"""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import yaml

from mlopsctl import monitoring
from mlopsctl.rehearse import _proc
from mlopsctl.rehearse._proc import LOOPBACK, http_call, wait_for
from mlopsctl.rehearse.errors import MissingToolError, ProjectError
from mlopsctl.rehearse.stage import Stage

ALERTS = "monitoring/alerts.yaml"
DASHBOARD = "monitoring/grafana-dashboard.json"
ALERTMANAGER = "monitoring/alertmanager.yaml"
CONFIG = "config/monitoring.json"
DESIGN = ".mlopsctl/design.json"
INFERENCESERVICE = "k8s/inferenceservice.yaml"
# Scrape and rule evaluation interval of the rehearsed Prometheus.
INTERVAL_SECONDS = 1
STARTUP_SECONDS = 60
SETTLE_SECONDS = 90
# Prometheus applies discovered targets every 5 s: its first scrape of the Pushgateway may come
# that late, and the restore (after the second evaluation) needs the pushed PSI.
RESTORE_EVALUATION = 15
# Set by the kubelet in every pod: how a job knows it runs in a cluster.
KUBELET_ENV = {"KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443"}
# Requests sent to the serving runtime before the dashboard's queries are evaluated.
TRAFFIC = 30
# Debian package -> the binaries it installs (upstream release archives name them without the
# `prometheus-` prefix).
TOOLS: dict[str, tuple[str, tuple[str, ...]]] = {
    "prometheus": ("prometheus", ("prometheus",)),
    "promtool": ("prometheus", ("promtool",)),
    "alertmanager": ("prometheus-alertmanager", ("prometheus-alertmanager", "alertmanager")),
    "amtool": ("prometheus-alertmanager", ("amtool",)),
    "pushgateway": ("prometheus-pushgateway", ("prometheus-pushgateway", "pushgateway")),
}
DRIFT_ALERTS = ("ModelFeatureDrift", "ModelDriftRetrainingNeeded")
FIRING_ALERT = "ModelFeatureDrift"
SATURATION_ALERT = "ModelReplicaSaturation"


def applies(stage: Stage) -> bool:
    return (stage.project / ALERTS).is_file()


def tools() -> dict[str, str]:
    """The binaries of the Debian packages prometheus, prometheus-alertmanager and
    prometheus-pushgateway (exit 2 naming the package when one is missing)."""
    found: dict[str, str] = {}
    for tool, (package, names) in TOOLS.items():
        path = next((p for p in map(shutil.which, names) if p), None)
        if path is None:
            raise MissingToolError(
                f"{names[0]} is not on PATH",
                hint=f"install it: apt-get install {package}",
            )
        found[tool] = path
    return found


def _json(stage: Stage, relative: str) -> dict[str, Any]:
    path = stage.file(relative)
    try:
        loaded = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise ProjectError(f"{path}: not JSON ({exc})") from exc
    if not isinstance(loaded, dict):
        raise ProjectError(f"{path}: not a JSON object")
    return loaded


def rules_of(path: Path) -> dict[str, dict[str, Any]]:
    """alert name -> rule, of a Prometheus rule file."""
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ProjectError(f"{path}: not YAML ({exc})") from exc
    groups = loaded.get("groups") if isinstance(loaded, dict) else None
    return {
        str(rule["alert"]): rule
        for group in groups or []
        for rule in (group.get("rules") or [] if isinstance(group, dict) else [])
        if isinstance(rule, dict) and rule.get("alert")
    }


def dashboard_queries(path: Path) -> list[tuple[str, str]]:
    """(panel title and legend, expr) of every target of a Grafana dashboard, rows included."""
    loaded = json.loads(path.read_text(encoding="utf-8"))
    out: list[tuple[str, str]] = []

    def visit(panels: list[Any]) -> None:
        for panel in panels:
            if not isinstance(panel, dict):
                continue
            for target in panel.get("targets") or []:
                if isinstance(target, dict) and isinstance(target.get("expr"), str):
                    what = f"{panel.get('title', '?')} / {target.get('legendFormat', '')}"
                    out.append((what, target["expr"]))
            visit(panel.get("panels") or [])

    visit(loaded.get("panels") or [])
    return out


def expected_receivers(stage: Stage) -> dict[str, str]:
    """Prometheus alert -> the receiver of the notification channel the design decided for it."""
    design = _json(stage, DESIGN)
    decided = {a["name"]: a for a in design.get("alerts") or [] if isinstance(a, dict)}
    return {
        alert: monitoring.RECEIVERS[decided[rule]["notify"]]
        for rule, alert, _group, _runbook in monitoring._ALERTS
        if rule in decided
    }


def route_labels(rule: dict[str, Any], alert: str) -> dict[str, str]:
    """The labels Prometheus sends with the alert (the rule's, and alertname)."""
    return {"alertname": alert, **{str(k): str(v) for k, v in (rule.get("labels") or {}).items()}}


@dataclasses.dataclass
class Prometheus:
    service: _proc.Service
    port: int
    data: Path

    def query(self, expr: str) -> list[dict[str, Any]]:
        answer = http_call(self.port, f"/api/v1/query?query={quote(expr)}")
        if answer.status != 200:
            raise ProjectError(f"query {expr}: {answer.status} {answer.body[:300]}")
        result: list[dict[str, Any]] = json.loads(answer.body)["data"]["result"]
        return result

    def rules(self) -> dict[str, dict[str, Any]]:
        answer = http_call(self.port, "/api/v1/rules?type=alert")
        groups = json.loads(answer.body)["data"]["groups"] if answer.status == 200 else []
        return {r["name"]: r for g in groups for r in g["rules"]}

    def value(self, expr: str) -> float | None:
        result = self.query(expr)
        return float(result[0]["value"][1]) if result else None


def _wait(
    service: _proc.Service, condition: Callable[[], bool], timeout: float = SETTLE_SECONDS
) -> bool:
    """Poll ``condition`` until it holds, ``service`` (the process it asks) exits, or ``timeout``
    seconds pass; an answer that does not hold what the condition reads yet (not JSON, a key
    missing) is a no."""

    def holds() -> bool:
        try:
            return bool(condition())
        except (ValueError, KeyError):
            return False

    return wait_for(service, holds, timeout)


def _ready(service: _proc.Service, port: int) -> bool:
    return _wait(service, lambda: http_call(port, "/-/ready").status == 200, STARTUP_SECONDS)


def _start_pushgateway(stage: Stage, binary: str) -> tuple[_proc.Service, int] | None:
    port = _proc.free_port()
    service = _proc.start(
        [binary, f"--web.listen-address={LOOPBACK}:{port}"],
        name="pushgateway",
        env={"PATH": "/usr/bin:/bin"},
        log=stage.workspace / "pushgateway.log",
        port=port,
    )
    stage.services.append(service)
    started = _ready(service, port)
    stage.check(
        "the Pushgateway starts",
        started,
        f"`{binary}` on {LOOPBACK}:{port}, GET /-/ready",
        "" if started else service.log_tail(),
    )
    return (service, port) if started else None


def _start_alertmanager(stage: Stage, binaries: dict[str, str]) -> int | None:
    config = stage.file(ALERTMANAGER)
    checked = _proc.run(
        [binaries["amtool"], "check-config", str(config)], env={"PATH": "/usr/bin:/bin"}
    )
    valid = stage.check(
        "amtool check-config accepts monitoring/alertmanager.yaml",
        checked.returncode == 0,
        f"`amtool check-config {ALERTMANAGER}` (Alertmanager {_version(binaries['amtool'])})",
        (checked.stdout + checked.stderr)[-1500:],
    )
    if not valid:
        return None
    port = _proc.free_port()
    storage = stage.workspace / "alertmanager"
    storage.mkdir()
    service = _proc.start(
        [
            binaries["alertmanager"],
            f"--config.file={config}",
            f"--storage.path={storage}",
            f"--web.listen-address={LOOPBACK}:{port}",
            "--cluster.listen-address=",  # one instance, no gossip
        ],
        name="alertmanager",
        env={"PATH": "/usr/bin:/bin"},
        log=stage.workspace / "alertmanager.log",
        port=port,
    )
    stage.services.append(service)
    started = _ready(service, port)
    stage.check(
        "Alertmanager starts with monitoring/alertmanager.yaml",
        started,
        f"--config.file={ALERTMANAGER}, GET /-/ready",
        "" if started else service.log_tail(),
    )
    return port if started else None


def _version(binary: str) -> str:
    result = _proc.run([binary, "--version"], env={"PATH": "/usr/bin:/bin"}, timeout=30)
    words = (result.stdout + result.stderr).split()
    return words[words.index("version") + 1] if "version" in words else "?"


def _check_routes(stage: Stage, amtool: str, rules: dict[str, dict[str, Any]]) -> None:
    config = stage.file(ALERTMANAGER)
    expected = expected_receivers(stage)
    for alert, rule in rules.items():
        labels = route_labels(rule, alert)
        result = _proc.run(
            [
                amtool,
                "config",
                "routes",
                "test",
                f"--config.file={config}",
                *(f"{k}={v}" for k, v in labels.items()),
            ],
            env={"PATH": "/usr/bin:/bin"},
            timeout=30,
        )
        got = result.stdout.strip()
        want = expected.get(alert, "an alert the design decided")
        stage.check(
            f"amtool routes {alert} to {want}",
            result.returncode == 0 and got == want,
            f"`amtool config routes test` with {', '.join(f'{k}={v}' for k, v in labels.items())}"
            ": the receiver of the channel the design decided for the alert",
            f"routed to {got or '(nothing)'} {result.stderr[-500:]}",
        )


def _prometheus_config(
    stage: Stage,
    pushgateway: int,
    alertmanager: int | None,
    serving: Any,
    *,
    evaluation: int = INTERVAL_SECONDS,
    name: str = "prometheus.yml",
) -> Path:
    scrape: list[dict[str, Any]] = [
        {
            "job_name": "pushgateway",
            "honor_labels": True,  # the pushed job's labels (model, feature), not the scrape's
            "static_configs": [{"targets": [f"{LOOPBACK}:{pushgateway}"]}],
        }
    ]
    if serving is not None:
        target = urlsplit(str(serving.metrics_url))
        kserve = (stage.project / INFERENCESERVICE).is_file()
        job: dict[str, Any] = {"job_name": "serving", "metrics_path": target.path or "/metrics"}
        if target.hostname not in (LOOPBACK, "localhost"):
            job["proxy_url"] = stage.network.proxy_url  # a Service name: the cluster network
        scrape.append(
            {
                **job,
                "static_configs": [
                    {
                        "targets": [target.netloc],
                        # What pod discovery's labelmap gives the serving pods.
                        "labels": monitoring.pod_labels(stage.project_name, kserve),
                    }
                ],
            }
        )
    config: dict[str, Any] = {
        "global": {
            "scrape_interval": f"{INTERVAL_SECONDS}s",
            "evaluation_interval": f"{evaluation}s",
        },
        "rule_files": [str(stage.file(ALERTS))],
        "scrape_configs": scrape,
    }
    if alertmanager is not None:
        config["alerting"] = {
            "alertmanagers": [{"static_configs": [{"targets": [f"{LOOPBACK}:{alertmanager}"]}]}]
        }
    path = stage.workspace / name
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


def _start_prometheus(stage: Stage, binary: str, config: Path, data: Path) -> Prometheus | None:
    port = _proc.free_port()
    service = _proc.start(
        [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={data}",
            f"--web.listen-address={LOOPBACK}:{port}",
            # The rehearsal's for-state restore (see the module docstring).
            "--rules.alert.for-grace-period=1s",
        ],
        name="prometheus",
        env={"PATH": "/usr/bin:/bin"},
        log=stage.workspace / f"prometheus-{data.name}.log",
        port=port,
    )
    stage.services.append(service)
    if not _ready(service, port):
        stage.check(
            "Prometheus starts with monitoring/alerts.yaml",
            False,
            f"--config.file with rule_files: [{ALERTS}]",
            service.log_tail(),
        )
        return None
    return Prometheus(service, port, data)


def _pod_run(stage: Stage, entry: str, extra: tuple[str, ...] = ()) -> Any:
    """An entry point run in a fresh restricted pod, as a pod of the cluster (kubelet variables)."""
    image = stage.shared["project_image"]
    commands = dict(image.commands)
    name = entry + ("-" + "-".join(a.strip("-") for a in extra) if extra else "")
    commands[name] = [*commands[entry], *extra]
    in_cluster = dataclasses.replace(image, env={**image.env, **KUBELET_ENV}, commands=commands)
    return in_cluster.run(stage, name)


def _pushed(pushgateway: int, metric: str, job: str) -> list[dict[str, str]]:
    """Label sets of ``metric`` in the Pushgateway's group of ``job``."""
    answer = http_call(pushgateway, "/api/v1/metrics")
    if answer.status != 200:
        return []
    found = []
    for group in json.loads(answer.body).get("data") or []:
        if group.get("labels", {}).get("job") != job or metric not in group:
            continue
        for sample in group[metric].get("metrics") or []:
            found.append({**sample.get("labels", {}), "value": str(sample.get("value"))})
    return found


def _drift_push(
    stage: Stage, prometheus: Prometheus, pushgateway: int, shifted: bool
) -> dict[str, Any] | None:
    """Run the drift check (on shifted data when ``shifted``) and wait until Prometheus holds
    the maximum PSI it reported; its report, or None when a handoff failed."""
    model = stage.project_name
    run = _pod_run(stage, "drift", ("--shifted",) if shifted else ())
    written = run.written("drift-report.json")
    label = "shifted data" if shifted else "the reference sample"
    metric = monitoring.PUSHED_METRICS["drift_psi"]
    pushed = _pushed(pushgateway, metric, "drift")
    config = _json(stage, CONFIG)
    ok = stage.check(
        f"drift on {label} pushes its PSI to the Pushgateway config/monitoring.json names",
        written is not None and any(p.get("model") == model for p in pushed),
        f"`{' '.join(run.command)}` in a restricted pod with KUBERNETES_SERVICE_HOST set, "
        f"pushing to {config.get('pushgateway')} (routed to the local Pushgateway)",
        f"exit {run.result.returncode}; {metric} in the Pushgateway: {pushed[:3]}\n"
        + run.output(1500),
    )
    if not ok or written is None:
        return None
    report: dict[str, Any] = json.loads(written.read_text(encoding="utf-8"))
    expr = monitoring.pushed_queries(model)["drift_psi_max"]
    want = float(report["max_psi"])

    def scraped() -> bool:
        got = prometheus.value(expr)
        return got is not None and abs(got - want) <= 1e-9 * max(1.0, abs(want))

    seen = _wait(prometheus.service, scraped)
    stage.check(
        f"Prometheus scrapes the PSI pushed for {label}",
        seen,
        f"`{expr}` equals the report's max_psi {want:.4g}",
        "" if seen else f"Prometheus answers {prometheus.query(expr)}",
    )
    return report if seen else None


def _states(prometheus: Prometheus, names: tuple[str, ...]) -> dict[str, str]:
    rules = prometheus.rules()
    return {n: str(rules.get(n, {}).get("state", "missing")) for n in names}


def _evaluated_after(prometheus: Prometheus, moment: float) -> bool:
    """Every alert rule evaluated (without error) after ``moment`` (epoch seconds)."""
    from datetime import datetime

    rules = prometheus.rules()
    return bool(rules) and all(
        r.get("health") == "ok"
        and datetime.fromisoformat(str(r["lastEvaluation"]).replace("Z", "+00:00")).timestamp()
        > moment
        for r in rules.values()
    )


def _check_rules(stage: Stage, prometheus: Prometheus, rules: dict[str, dict[str, Any]]) -> bool:
    loaded = prometheus.rules()
    missing = sorted(set(rules) - set(loaded))
    ok = stage.check(
        "Prometheus loads every rule of monitoring/alerts.yaml",
        bool(rules) and not missing and set(loaded) == set(rules),
        f"GET /api/v1/rules against the {len(rules)} alerts of {ALERTS}",
        f"missing: {missing}; loaded: {sorted(loaded)}",
    )
    start = time.time()
    evaluated = _wait(prometheus.service, lambda: _evaluated_after(prometheus, start))
    bad = {n: (r.get("health"), r.get("lastError")) for n, r in prometheus.rules().items()}
    stage.check(
        "every rule is evaluated without error",
        evaluated,
        "each rule's health is ok and its lastEvaluation later than the check's start",
        "" if evaluated else json.dumps(bad)[:1500],
    )
    return ok and evaluated


def _traffic(stage: Stage, serving: Any) -> str:
    """Send predictions to the serving runtime through the cluster network; what was sent."""
    target = urlsplit(str(serving.url))
    port = target.port or 80
    if target.hostname not in (LOOPBACK, "localhost"):
        port = stage.network.resolve(target.hostname or "", port) or port
    path = (target.path.rstrip("/") + "/" + str(serving.infer_path).lstrip("/")) or "/"
    body = json.dumps(serving.request).encode()
    statuses: dict[int, int] = {}
    for _ in range(TRAFFIC):
        answer = http_call(
            port,
            path,
            method="POST",
            host=target.netloc,
            headers={"Content-Type": "application/json"},
            body=body,
        )
        statuses[answer.status] = statuses.get(answer.status, 0) + 1
    return f"{TRAFFIC} POST {path}: " + ", ".join(f"{n}x {s}" for s, n in statuses.items())


def _check_dashboard(stage: Stage, prometheus: Prometheus, serving: Any, sent: str) -> None:
    queries = dashboard_queries(stage.file(DASHBOARD))
    empty: dict[str, str] = {}

    def answered() -> bool:
        empty.clear()
        for what, expr in queries:
            if not prometheus.query(expr):
                empty[what] = expr
        return not empty

    # rate() over the scrape needs two samples after the traffic.
    answered_all = _wait(prometheus.service, answered)
    runtime = "no serving runtime in this rehearsal" if serving is None else sent
    stage.check(
        "every query of monitoring/grafana-dashboard.json returns series",
        bool(queries) and answered_all,
        f"each of the {len(queries)} panel targets evaluated through /api/v1/query after the "
        f"pushes and the traffic ({runtime})",
        "\n".join(f"{w}: {e}" for w, e in empty.items()),
    )


def _check_drift_alerts(
    stage: Stage, prometheus: Prometheus, report: dict[str, Any], thresholds: dict[str, Any]
) -> None:
    psi = float(report["max_psi"])
    limit = float(thresholds["psi_investigate"])
    moment = time.time()
    _wait(prometheus.service, lambda: _evaluated_after(prometheus, moment + INTERVAL_SECONDS))
    if psi > limit:
        pending = _wait(
            prometheus.service,
            lambda: (
                _states(prometheus, ("ModelFeatureDrift",))["ModelFeatureDrift"]
                in ("pending", "firing")
            ),
        )
        states = _states(prometheus, DRIFT_ALERTS)
        retrain = psi > float(thresholds["psi_retrain"])
        stage.check(
            "drift alerts go pending when the pushed PSI exceeds the design's threshold",
            pending
            and (not retrain or states["ModelDriftRetrainingNeeded"] in ("pending", "firing")),
            f"max PSI {psi:.3g} > psi_investigate {limit}"
            + (f" and > psi_retrain {thresholds['psi_retrain']}" if retrain else "")
            + ": ModelFeatureDrift"
            + (" and ModelDriftRetrainingNeeded" if retrain else "")
            + " pending or firing (GET /api/v1/rules)",
            json.dumps(states),
        )
        return
    states = _states(prometheus, DRIFT_ALERTS)
    stage.check(
        "drift alerts stay inactive while the pushed PSI is below the design's threshold",
        all(s == "inactive" for s in states.values()),
        f"max PSI {psi:.3g} <= psi_investigate {limit}, evaluated after Prometheus held it",
        json.dumps(states),
    )


def _backfill_for_state(
    stage: Stage, promtool: str, prometheus: Prometheus, alert: str, hold: float, data: Path
) -> bool:
    """``ALERTS_FOR_STATE`` of the pending ``alert`` written into ``data`` as if it had been
    pending for ``hold`` seconds and more, up to a minute ago."""
    series = prometheus.query(f'ALERTS_FOR_STATE{{alertname="{alert}"}}')
    if not series:
        return False
    labels = series[0]["metric"]
    now = int(time.time())
    active = now - int(hold) - 120
    names = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()) if k != "__name__")
    lines = ["# TYPE ALERTS_FOR_STATE gauge"]
    lines += [f"ALERTS_FOR_STATE{{{names}}} {active} {t}" for t in range(active, now - 60, 15)]
    lines.append("# EOF")
    source = stage.workspace / "for-state.om"
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = _proc.run(
        [promtool, "tsdb", "create-blocks-from", "openmetrics", str(source), str(data)],
        env={"PATH": "/usr/bin:/bin"},
        timeout=120,
    )
    return result.returncode == 0


def _check_firing(
    stage: Stage,
    binaries: dict[str, str],
    prometheus: Prometheus,
    pushgateway: int,
    alertmanager: int,
    rules: dict[str, dict[str, Any]],
) -> None:
    """Prometheus restores a pending alert's activation time after its second evaluation from
    start; evaluating every RESTORE_EVALUATION seconds lets the Pushgateway be scraped first."""
    rule = rules.get(FIRING_ALERT)
    if rule is None:
        return
    config = _prometheus_config(
        stage,
        pushgateway,
        alertmanager,
        stage.shared.get("serving"),
        evaluation=RESTORE_EVALUATION,
        name="prometheus-restarted.yml",
    )
    hold = _duration_seconds(str(rule.get("for", "0s")))
    data = stage.workspace / "prometheus-restarted"
    data.mkdir()
    backfilled = _backfill_for_state(
        stage, binaries["promtool"], prometheus, FIRING_ALERT, hold, data
    )
    prometheus.service.stop()
    restarted = (
        _start_prometheus(stage, binaries["prometheus"], config, data) if backfilled else None
    )
    if restarted is None:
        stage.check(
            f"{FIRING_ALERT} fires and reaches Alertmanager",
            False,
            "Prometheus restarted with the alert's for-state",
            "the for-state could not be written" if not backfilled else "",
        )
        return
    receiver = expected_receivers(stage).get(FIRING_ALERT, "")

    def received() -> bool:
        answer = http_call(alertmanager, f"/api/v2/alerts?filter=alertname%3D%22{FIRING_ALERT}%22")
        alerts = json.loads(answer.body) if answer.status == 200 else []
        return any(
            a["labels"].get("alertname") == FIRING_ALERT
            and a["status"]["state"] == "active"
            and receiver in [r["name"] for r in a.get("receivers", [])]
            for a in alerts
        )

    stage.shared["prometheus"] = restarted
    arrived = _wait(restarted.service, received, SETTLE_SECONDS + 3 * RESTORE_EVALUATION)
    answer = http_call(alertmanager, "/api/v2/alerts")
    stage.check(
        f"{FIRING_ALERT} fires and reaches Alertmanager",
        arrived,
        f"Prometheus restarted with the pending alert's ALERTS_FOR_STATE dated "
        f"{hold:.0f} s back (its `for:`): the unchanged rule fires on the pushed PSI; "
        f"GET /api/v2/alerts of Alertmanager holds it, routed to {receiver}",
        f"rule state: {_states(restarted, (FIRING_ALERT,))}; Alertmanager: {answer.body[:800]}",
    )


def _duration_seconds(text: str) -> float:
    """A Prometheus duration (``15m``, ``1h30m``) in seconds."""
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}
    parts = re.findall(r"(\d+)(ms|s|m|h|d|w|y)", text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ProjectError(f"{ALERTS}: `for: {text}` is no Prometheus duration")
    return sum(int(n) * units[u] for n, u in parts)


def _route_pushgateway(stage: Stage, local: int) -> None:
    address = str(_json(stage, CONFIG).get("pushgateway") or "")
    target = urlsplit(address)
    if not target.hostname:
        raise ProjectError(
            f"{stage.project / CONFIG}: no pushgateway address",
            hint="regenerate it with `mlopsctl update`",
        )
    stage.network.add(target.hostname.split(".")[0], target.port or 80, local)


def rehearse_monitoring(stage: Stage) -> None:
    binaries = tools()
    rules = rules_of(stage.file(ALERTS))
    thresholds = _json(stage, DESIGN).get("thresholds") or {}
    started = _start_pushgateway(stage, binaries["pushgateway"])
    if started is None:
        return
    _pushgateway, pushgateway = started
    _route_pushgateway(stage, pushgateway)
    alertmanager = _start_alertmanager(stage, binaries)
    if alertmanager is not None:
        _check_routes(stage, binaries["amtool"], rules)
    serving = stage.shared.get("serving")
    config = _prometheus_config(stage, pushgateway, alertmanager, serving)
    data = stage.workspace / "prometheus"
    prometheus = _start_prometheus(stage, binaries["prometheus"], config, data)
    if prometheus is None or not _check_rules(stage, prometheus, rules):
        return
    stage.shared["prometheus"] = prometheus

    reference = _drift_push(stage, prometheus, pushgateway, shifted=False)
    if reference is not None:
        _check_drift_alerts(stage, prometheus, reference, thresholds)
    _check_retraining_push(stage, prometheus, pushgateway)
    sent = _traffic(stage, serving) if serving is not None else ""
    _check_dashboard(stage, prometheus, serving, sent)
    if serving is not None:
        _check_serving_alerts(stage, prometheus, rules, sent)
        _check_saturation(stage, prometheus, rules, serving)
    shifted = _drift_push(stage, prometheus, pushgateway, shifted=True)
    if shifted is None:
        return
    _check_drift_alerts(stage, prometheus, shifted, thresholds)
    if alertmanager is not None:
        _check_firing(stage, binaries, prometheus, pushgateway, alertmanager, rules)


def _check_serving_alerts(
    stage: Stage, prometheus: Prometheus, rules: dict[str, dict[str, Any]], sent: str
) -> None:
    """While the runtime answers its scrape and serves every request, no serving alert is
    active (ModelServingDown reads the runtime's `up`, which a missing scrape leaves absent)."""
    names = tuple(n for n, r in rules.items() if _group_of(n) == "serving")
    moment = time.time()
    _wait(prometheus.service, lambda: _evaluated_after(prometheus, moment + INTERVAL_SECONDS))
    states = _states(prometheus, names)
    stage.check(
        "serving alerts stay inactive while the runtime serves",
        bool(names) and all(s == "inactive" for s in states.values()),
        f"{', '.join(names)} after {sent}",
        json.dumps(states),
    )


def saturation_expected(stage: Stage) -> dict[str, Any] | None:
    """The saturation alert the recorded design implies (a measured capacity, a request counter
    of the runtime, a watched endpoint), or None."""
    from pydantic import ValidationError

    from mlopsctl.design import StackDesign

    path = stage.file(DESIGN)
    try:
        design = StackDesign.model_validate(_json(stage, DESIGN))
    except ValidationError as exc:
        raise ProjectError(
            f"{path}: not a design of this mlopsctl ({exc.error_count()} errors)",
            hint="regenerate it with `mlopsctl update`",
        ) from None
    found: dict[str, Any] | None = monitoring.monitoring_contract(design)["saturation"]
    return found


def _check_saturation(
    stage: Stage, prometheus: Prometheus, rules: dict[str, dict[str, Any]], serving: Any
) -> None:
    """With a measured capacity, the saturation rule compares the busiest replica's request rate,
    read from the runtime's own series, with the measured threshold; without one there is no such
    rule (and nothing to check)."""
    expected = saturation_expected(stage)
    rule = rules.get(SATURATION_ALERT)
    name = f"{SATURATION_ALERT} evaluates the runtime's request rate against the measured capacity"
    if expected is None and rule is None:
        return
    if expected is None or rule is None:
        stage.check(
            name,
            False,
            f"{ALERTS} against {DESIGN}: the alert exists where a capacity was measured and the "
            "runtime counts requests",
            f"in {ALERTS}: {rule is not None}; implied by the design: {expected is not None}",
        )
        return
    expr = str(rule.get("expr", ""))
    busiest, _, threshold = expr.rpartition(" > ")
    values: dict[str, Any] = {}

    def evaluated() -> bool:
        # rate() needs two scrapes that saw the counter grow: traffic between looks.
        _traffic(stage, serving)
        loaded = prometheus.rules().get(SATURATION_ALERT, {})
        values.update(state=loaded.get("state"), health=loaded.get("health"))
        values["busiest"] = prometheus.value(busiest) if busiest else None
        return loaded.get("health") == "ok" and values["busiest"] is not None

    seen = _wait(prometheus.service, evaluated)
    want = f"{expected['threshold']:.15g}"
    stage.check(
        name,
        seen and threshold == want and values.get("state") == "inactive",
        f"`{busiest}` answers from the runtime's series; the rule's threshold {threshold} is "
        f"{expected['fraction']:.0%} of the measured {expected['capacity']:g} rps "
        f"({expected['measured']}), inactive at the rehearsal's traffic",
        json.dumps(values | {"threshold": threshold, "expected": want}),
    )


def _group_of(alert: str) -> str:
    return next((g for _r, a, g, _b in monitoring._ALERTS if a == alert), "")


def _check_retraining_push(stage: Stage, prometheus: Prometheus, pushgateway: int) -> None:
    """A training run in a pod pushes its outcome; ModelRetrainingFailed stays inactive."""
    run = _pod_run(stage, "main")
    failed = monitoring.PUSHED_METRICS["retraining_failed"]
    success = monitoring.PUSHED_METRICS["retraining_success_time"]
    pushed = {m: _pushed(pushgateway, m, "retraining") for m in (failed, success)}
    model = stage.project_name
    ok = stage.check(
        "a training run pushes its outcome to the Pushgateway",
        run.result.returncode == 0
        and any(p.get("model") == model and float(p["value"]) == 0 for p in pushed[failed])
        and any(p.get("model") == model for p in pushed[success]),
        f"`{' '.join(run.command)}` in a restricted pod: {failed} 0 and {success}",
        f"exit {run.result.returncode}; pushed {json.dumps(pushed)[:600]}\n" + run.output(1200),
    )
    if not ok:
        return
    expr = monitoring.pushed_queries(model)["retraining_failed_max"]
    seen = _wait(prometheus.service, lambda: prometheus.value(expr) == 0.0)
    moment = time.time()
    _wait(prometheus.service, lambda: _evaluated_after(prometheus, moment + INTERVAL_SECONDS))
    state = _states(prometheus, ("ModelRetrainingFailed",))
    stage.check(
        "ModelRetrainingFailed stays inactive after a successful training run",
        seen and state["ModelRetrainingFailed"] == "inactive",
        f"`{expr}` is 0 in Prometheus; the rule evaluated after it",
        json.dumps(state),
    )
