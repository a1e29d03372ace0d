"""Push job metrics (drift, retraining status) to a Prometheus Pushgateway when one is configured.

Set PROMETHEUS_PUSHGATEWAY (host:port) to enable; without it nothing is sent.
"""

from __future__ import annotations

import os

from settings import CONFIG


def push(job: str, values: dict[str, dict[tuple[str, ...], float]], labelnames: tuple[str, ...]) -> bool:
    gateway = os.environ.get("PROMETHEUS_PUSHGATEWAY")
    if not gateway:
        return False
    from prometheus_client import CollectorRegistry, Gauge, push_to_gateway

    registry = CollectorRegistry()
    for name, samples in values.items():
        gauge = Gauge(name, name.replace("_", " "), ("model", *labelnames), registry=registry)
        for labels, value in samples.items():
            gauge.labels(CONFIG["model_name"], *labels).set(value)
    push_to_gateway(gateway, job=job, registry=registry)
    return True
