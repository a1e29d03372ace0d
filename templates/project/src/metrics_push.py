"""Push job metrics (drift, retraining status) to a Prometheus Pushgateway.

Where: PROMETHEUS_PUSHGATEWAY (host:port or URL) when set, an empty value disabling pushing; in a
Kubernetes pod (KUBERNETES_SERVICE_HOST, which the kubelet sets in every pod) the in-cluster
Pushgateway config/monitoring.json names; elsewhere nothing is sent.
"""

from __future__ import annotations

import json
import os

from settings import CONFIG, ROOT


def gateway() -> str | None:
    if "PROMETHEUS_PUSHGATEWAY" in os.environ:
        return os.environ["PROMETHEUS_PUSHGATEWAY"] or None
    config = ROOT / "config" / "monitoring.json"
    if os.environ.get("KUBERNETES_SERVICE_HOST") and config.is_file():
        address: str | None = json.loads(config.read_text(encoding="utf-8")).get("pushgateway")
        return address
    return None


def push(job: str, values: dict[str, dict[tuple[str, ...], float]], labelnames: tuple[str, ...]) -> bool:
    address = gateway()
    if not address:
        return False
    from prometheus_client import CollectorRegistry, Gauge, push_to_gateway

    registry = CollectorRegistry()
    for name, samples in values.items():
        gauge = Gauge(name, name.replace("_", " "), ("model", *labelnames), registry=registry)
        for labels, value in samples.items():
            gauge.labels(CONFIG["model_name"], *labels).set(value)
    push_to_gateway(address, job=job, registry=registry)
    return True
