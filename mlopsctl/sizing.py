"""Concrete numbers from the scale requirements, each with the formula that produced it.

The assumptions are stated here once and show up in every explanation:
- per-replica capacity by framework family and hardware (``CAPACITY_RPS``),
- a 70 % target utilization, so a replica has headroom for bursts,
- memory of twice the model size plus a runtime overhead, limits 1.5x the requests,
- a latency target when none is given, by deployment pattern (``DEFAULT_LATENCY_MS``).
"""

from __future__ import annotations

import math

from mlopsctl.design import Decision, Sizing, Stack
from mlopsctl.requirements import Requirements

_CLASSIC = {"sklearn", "xgboost", "lightgbm", "onnx", "custom"}
CAPACITY_RPS = {("classic", False): 100.0, ("classic", True): 100.0,
                ("deep", False): 20.0, ("deep", True): 200.0}
TARGET_UTILIZATION = 0.7
DEFAULT_LATENCY_MS = {"online": 200.0, "hybrid": 200.0, "edge": 50.0, "batch": 60_000.0}
DEFAULT_RPS = 10.0
MAX_REPLICAS_CAP = 200
RUNTIME_OVERHEAD_GB = 0.5
LATENCY_ALERT_FACTOR = 1.5
DEFAULT_CANARY_PERCENT = 10


def _family(framework: str) -> str:
    return "classic" if framework in _CLASSIC else "deep"


def _mem(gb: float) -> str:
    mib = math.ceil(gb * 1024 / 64) * 64
    return f"{mib // 1024}Gi" if mib % 1024 == 0 else f"{mib}Mi"


def _sizing_decision(capability: str, choice: float | int | str | list[int], formula: str,
                     reason: str) -> Decision:
    return Decision(rule="SIZING", capability=f"sizing.{capability}", choice=choice,
                    reason=reason, formula=formula)


def derive_sizing(
    req: Requirements, stack: Stack, rollout_steps: list[int], thresholds: dict[str, float]
) -> tuple[Sizing, list[Decision], float]:
    scale = req.scale_requirements
    decisions: list[Decision] = []
    pattern = stack.deployment_pattern

    if scale.latency_ms is not None:
        latency = float(scale.latency_ms)
        decisions.append(_sizing_decision("latency_target_ms", latency, "latency_ms as given",
                                          "the latency SLA is the p95 target"))
    else:
        latency = DEFAULT_LATENCY_MS.get(pattern, 200.0)
        decisions.append(_sizing_decision(
            "latency_target_ms", latency, f"default for {pattern} deployments",
            "no latency SLA was given, so the pattern's usual target is assumed"))

    if scale.rps is not None:
        peak = float(scale.rps)
        peak_formula = "rps as given"
    elif scale.concurrent_users is not None:
        peak = round(scale.concurrent_users * 1000.0 / latency, 2)
        peak_formula = (f"concurrent_users x 1000 / latency_target_ms = {scale.concurrent_users}"
                        f" x 1000 / {latency:g}")
    else:
        peak = DEFAULT_RPS
        peak_formula = f"no rps or concurrency given: default {DEFAULT_RPS:g}"
    decisions.append(_sizing_decision("peak_rps", peak, peak_formula,
                                      "peak throughput the serving tier must carry (Little's law "
                                      "when derived from concurrency)"))

    family = _family(req.framework)
    capacity = CAPACITY_RPS[(family, req.gpu)]
    decisions.append(_sizing_decision(
        "per_replica_rps", capacity,
        f"assumed capacity of one replica for {family} models on {'GPU' if req.gpu else 'CPU'}",
        "a stated assumption; measure your model and adjust"))

    production = req.governance_level == "production"
    min_replicas = 2 if production else 1
    needed = math.ceil(peak / (capacity * TARGET_UTILIZATION)) if peak > 0 else 1
    max_replicas = min(MAX_REPLICAS_CAP, max(min_replicas + 1, needed))
    decisions.append(_sizing_decision(
        "min_replicas", min_replicas,
        "2 for production (survives a node loss with a PodDisruptionBudget), else 1",
        "availability floor"))
    decisions.append(_sizing_decision(
        "max_replicas", max_replicas,
        f"max(min_replicas + 1, ceil(peak_rps / (per_replica_rps x {TARGET_UTILIZATION}))) = "
        f"max({min_replicas + 1}, ceil({peak:g} / ({capacity:g} x {TARGET_UTILIZATION}))), "
        f"capped at {MAX_REPLICAS_CAP}",
        "enough replicas for the peak at the target utilization"))

    concurrency = max(1, math.floor(capacity * TARGET_UTILIZATION * latency / 1000.0))
    decisions.append(_sizing_decision(
        "scale_target_concurrency", concurrency,
        f"max(1, floor(per_replica_rps x {TARGET_UTILIZATION} x latency_target_ms / 1000))",
        "in-flight requests per replica at the target utilization (Little's law)"))

    mem_request_gb = req.model_size_gb * 2 + RUNTIME_OVERHEAD_GB
    memory_request = _mem(mem_request_gb)
    memory_limit = _mem(mem_request_gb * 1.5)
    decisions.append(_sizing_decision(
        "memory_request", memory_request,
        f"model_size_gb x 2 + {RUNTIME_OVERHEAD_GB} GB = {req.model_size_gb:g} x 2 + "
        f"{RUNTIME_OVERHEAD_GB}; limit 1.5x the request ({memory_limit})",
        "the model is held in memory once loaded and once while deserializing"))
    cpu_request_m = 500 if family == "classic" else 1000
    cpu_request = f"{cpu_request_m}m"
    cpu_limit = f"{cpu_request_m * 2}m"
    decisions.append(_sizing_decision(
        "cpu_request", cpu_request,
        f"{cpu_request_m}m for {family} models; limit twice the request ({cpu_limit})",
        "a stated assumption per framework family"))
    gpu_per_replica = 1 if req.gpu and family == "deep" else 0

    steps = rollout_steps or ([DEFAULT_CANARY_PERCENT, 100] if stack.rollout == "canary" else [100])
    canary = steps[0] if stack.rollout in {"canary", "progressive"} else 0
    decisions.append(_sizing_decision("rollout_steps", steps,
                                      "from the rollout decision",
                                      "traffic percentages the new version receives in turn"))

    factor = LATENCY_ALERT_FACTOR
    latency_alert = round(latency * factor, 3)
    decisions.append(Decision(
        rule="SIZING", capability="thresholds.latency_p95_alert_ms", choice=latency_alert,
        formula=f"{factor} x latency_target_ms = {factor} x {latency:g}",
        reason="alert when p95 latency exceeds 1.5x the target"))

    schedule = "0 2 * * *" if pattern in {"batch", "hybrid"} else "0 2 * * 0"
    sizing = Sizing(
        latency_target_ms=latency,
        peak_rps=peak,
        per_replica_rps=capacity,
        target_utilization=TARGET_UTILIZATION,
        min_replicas=min_replicas,
        max_replicas=max_replicas,
        scale_target_concurrency=concurrency,
        cpu_request=cpu_request,
        cpu_limit=cpu_limit,
        memory_request=memory_request,
        memory_limit=memory_limit,
        gpu_per_replica=gpu_per_replica,
        canary_percent=canary,
        rollout_steps=steps,
        batch_schedule=schedule,
    )
    del thresholds
    return sizing, decisions, latency_alert
