"""Concrete numbers from the scale requirements, each with the formula that produced it.

Each number is decided by one sizing rule of the catalog (``catalog/sizing/SIZnnn-*.yaml``: id,
formula, rationale, references, shown by ``mlopsctl rules list`` and ``explain``); the formulas
themselves are computed here.

The assumptions are stated here once, listed in ``Sizing.assumptions`` and shown by ``assess``:
- per-replica capacity by framework family and hardware (``CAPACITY_RPS``),
- a 70 % target utilization, so a replica has headroom for bursts,
- memory of twice the model size plus a runtime overhead, limits 1.5x the requests,
- a latency target when none is given, by deployment pattern (``DEFAULT_LATENCY_MS``).
"""

from __future__ import annotations

import math
from functools import lru_cache

from mlopsctl.design import Decision, ReferenceOut, Sizing, Stack
from mlopsctl.errors import CatalogError
from mlopsctl.requirements import Requirements
from mlopsctl.rules.model import SizingRule, load_sizing_rules

CLASSIC_FRAMEWORKS = frozenset({"sklearn", "xgboost", "lightgbm", "onnx", "custom"})
# Requests per second one replica serves at full load: (family, gpu) -> rps.
CAPACITY_RPS = {
    ("classic", False): 100.0,
    ("classic", True): 100.0,  # tree and linear models do not use the GPU
    ("deep", False): 20.0,
    ("deep", True): 200.0,
}
TARGET_UTILIZATION = 0.7
DEFAULT_LATENCY_MS = {"online": 200.0, "hybrid": 200.0, "edge": 50.0, "batch": 60_000.0}
DEFAULT_RPS = 10.0
MAX_REPLICAS_CAP = 200
MAX_CONCURRENCY = 1000
WARM_FRACTION = 0.25  # share of the peak replicas kept warm when autoscaling on CPU (HPA)
RUNTIME_OVERHEAD_GB = 0.5
MEMORY_LIMIT_FACTOR = 1.5
CPU_REQUEST_MILLI = {"classic": 500, "deep": 1000}
CPU_LIMIT_FACTOR = 2
LATENCY_ALERT_FACTOR = 1.5
DEFAULT_CANARY_PERCENT = 10
STARTUP_BASE_SECONDS = 30
STARTUP_SECONDS_PER_GB = 60


def family(framework: str) -> str:
    """``classic`` for tree/linear models and exported graphs, ``deep`` for neural networks."""
    return "classic" if framework in CLASSIC_FRAMEWORKS else "deep"


def _mem(gb: float) -> str:
    mib = math.ceil(gb * 1024 / 64) * 64
    return f"{mib // 1024}Gi" if mib % 1024 == 0 else f"{mib}Mi"


def _cpu(milli: int) -> str:
    return f"{milli}m"


@lru_cache(maxsize=1)
def _rules() -> dict[str, SizingRule]:
    return {rule.capability: rule for rule in load_sizing_rules()}


def _d(
    number: str, choice: float | int | str | list[int], formula: str, *, kind: str = "sizing"
) -> Decision:
    """The decision on one number, by the sizing rule that decides it (``catalog/sizing/``):
    its id, rationale and sources, and the formula with this design's numbers."""
    rule = _rules().get(f"{kind}.{number}")
    if rule is None:
        raise CatalogError(f"no sizing rule decides {kind}.{number}")
    return Decision(
        rule=rule.id,
        capability=rule.capability,
        choice=choice,
        reason=" ".join(rule.rationale.split()),
        references=[
            ReferenceOut(title=r.title, url=r.url, accessed=r.accessed.isoformat())
            for r in rule.references
        ],
        formula=formula,
    )


def assumptions() -> list[str]:
    """The stated assumptions behind every derived number."""
    return [
        f"one replica serves {CAPACITY_RPS[('classic', False)]:g} rps for classic models "
        f"(sklearn, xgboost, lightgbm, onnx, custom), {CAPACITY_RPS[('deep', False)]:g} rps for "
        f"neural networks on CPU and {CAPACITY_RPS[('deep', True)]:g} rps on one GPU; measure "
        "your model and adjust",
        f"replicas run at {TARGET_UTILIZATION:.0%} of that capacity to absorb bursts",
        f"a pod needs twice the model size in memory (loaded copy plus deserialization) plus "
        f"{RUNTIME_OVERHEAD_GB} GB of runtime; limits are {MEMORY_LIMIT_FACTOR}x the request",
        f"CPU request {CPU_REQUEST_MILLI['classic']}m for classic models and "
        f"{CPU_REQUEST_MILLI['deep']}m for neural networks; limits {CPU_LIMIT_FACTOR}x",
        "without a latency SLA the target is "
        + ", ".join(f"{v:g} ms for {k}" for k, v in DEFAULT_LATENCY_MS.items()),
        f"with autoscaling on CPU (HPA), {WARM_FRACTION:.0%} of the peak replicas stay warm",
        f"a model loads in {STARTUP_BASE_SECONDS} s plus {STARTUP_SECONDS_PER_GB} s per GB",
    ]


def derive_sizing(
    req: Requirements, stack: Stack, rollout_steps: list[int]
) -> tuple[Sizing, list[Decision], float]:
    """Derive replicas, resources, rollout steps and the latency alert from the answers.

    Returns the sizing, one decision per number with its formula, and the p95 latency alert
    threshold in milliseconds.
    """
    scale = req.scale_requirements
    decisions: list[Decision] = []
    pattern = stack.deployment_pattern

    if scale.latency_ms is not None:
        latency = float(scale.latency_ms)
        decisions.append(
            _d(
                "latency_target_ms",
                latency,
                "latency_ms as given",
            )
        )
    else:
        latency = DEFAULT_LATENCY_MS.get(pattern, 200.0)
        decisions.append(
            _d(
                "latency_target_ms",
                latency,
                f"default for {pattern} deployments",
            )
        )

    if scale.rps is not None:
        peak = float(scale.rps)
        peak_formula = "rps as given"
    elif scale.concurrent_users is not None:
        peak = round(scale.concurrent_users * 1000.0 / latency, 2)
        peak_formula = (
            f"concurrent_users x 1000 / latency_target_ms = {scale.concurrent_users} x 1000 / "
            f"{latency:g} (Little's law: every user has one request in flight)"
        )
    else:
        peak = DEFAULT_RPS
        peak_formula = f"no rps or concurrent_users given: default {DEFAULT_RPS:g}"
    decisions.append(_d("peak_rps", peak, peak_formula))

    fam = family(req.framework)
    capacity = CAPACITY_RPS[(fam, req.gpu)]
    decisions.append(
        _d(
            "per_replica_rps",
            capacity,
            f"assumed capacity of one replica for {fam} models on {'GPU' if req.gpu else 'CPU'}",
        )
    )

    concurrency = max(
        1, min(MAX_CONCURRENCY, math.floor(capacity * TARGET_UTILIZATION * latency / 1000.0))
    )
    decisions.append(
        _d(
            "scale_target_concurrency",
            concurrency,
            f"max(1, min({MAX_CONCURRENCY}, floor(per_replica_rps x {TARGET_UTILIZATION} x "
            f"latency_target_ms / 1000))) = floor({capacity:g} x {TARGET_UTILIZATION} x "
            f"{latency:g} / 1000)",
        )
    )

    floor_replicas = 2 if req.governance_level == "production" else 1
    for_rps = math.ceil(peak / (capacity * TARGET_UTILIZATION)) if peak > 0 else 1
    users = scale.concurrent_users or 0
    for_users = math.ceil(users / concurrency) if users else 0
    needed = max(for_rps, for_users, 1)
    max_replicas = min(MAX_REPLICAS_CAP, max(floor_replicas + 1, needed))
    decisions.append(
        _d(
            "max_replicas",
            max_replicas,
            f"min({MAX_REPLICAS_CAP}, max(min_replicas_floor + 1, ceil(peak_rps / "
            f"(per_replica_rps x {TARGET_UTILIZATION})), ceil(concurrent_users / "
            f"scale_target_concurrency))) = min({MAX_REPLICAS_CAP}, max({floor_replicas + 1}, "
            f"ceil({peak:g} / ({capacity:g} x {TARGET_UTILIZATION})), "
            f"{for_users}))",
        )
    )
    if stack.autoscaling == "hpa":
        min_replicas = min(max_replicas, max(floor_replicas, math.ceil(needed * WARM_FRACTION)))
        min_formula = (
            f"max({floor_replicas}, ceil(needed_replicas x {WARM_FRACTION})) = "
            f"max({floor_replicas}, ceil({needed} x {WARM_FRACTION}))"
        )
    else:
        min_replicas = floor_replicas
        min_formula = "2 for production (survives a node loss with a PodDisruptionBudget), else 1"
    decisions.append(
        _d(
            "min_replicas",
            min_replicas,
            min_formula,
        )
    )
    hpa_target = round(TARGET_UTILIZATION * 100)
    decisions.append(
        _d(
            "hpa_cpu_target_percent",
            hpa_target,
            f"{TARGET_UTILIZATION} x 100",
        )
    )

    mem_request_gb = req.model_size_gb * 2 + RUNTIME_OVERHEAD_GB
    memory_request = _mem(mem_request_gb)
    memory_limit = _mem(mem_request_gb * MEMORY_LIMIT_FACTOR)
    decisions.append(
        _d(
            "memory_request",
            memory_request,
            f"model_size_gb x 2 + {RUNTIME_OVERHEAD_GB} GB = {req.model_size_gb:g} x 2 + "
            f"{RUNTIME_OVERHEAD_GB}, rounded up to 64 MiB",
        )
    )
    decisions.append(
        _d(
            "memory_limit",
            memory_limit,
            f"memory_request x {MEMORY_LIMIT_FACTOR}",
        )
    )
    cpu_request_m = CPU_REQUEST_MILLI[fam]
    cpu_request = _cpu(cpu_request_m)
    cpu_limit = _cpu(cpu_request_m * CPU_LIMIT_FACTOR)
    decisions.append(
        _d(
            "cpu_request",
            cpu_request,
            f"{cpu_request_m}m for {fam} models",
        )
    )
    decisions.append(
        _d(
            "cpu_limit",
            cpu_limit,
            f"cpu_request x {CPU_LIMIT_FACTOR}",
        )
    )
    gpu_per_replica = 1 if req.gpu and fam == "deep" else 0
    decisions.append(
        _d(
            "gpu_per_replica",
            gpu_per_replica,
            "1 when GPUs are available and the model is a neural network, else 0",
        )
    )
    startup = STARTUP_BASE_SECONDS + math.ceil(STARTUP_SECONDS_PER_GB * req.model_size_gb)
    decisions.append(
        _d(
            "startup_seconds",
            startup,
            f"{STARTUP_BASE_SECONDS} + ceil({STARTUP_SECONDS_PER_GB} x model_size_gb) = "
            f"{STARTUP_BASE_SECONDS} + ceil({STARTUP_SECONDS_PER_GB} x {req.model_size_gb:g})",
        )
    )

    steps = list(rollout_steps)
    canary = steps[0] if stack.rollout in {"canary", "progressive", "ab"} and steps else 0
    decisions.append(
        _d(
            "rollout_steps",
            steps,
            f"the steps of the {stack.rollout} rollout decision",
        )
    )
    decisions.append(
        _d(
            "canary_percent",
            canary,
            "first rollout step for canary, progressive and A/B rollouts, else 0",
        )
    )

    latency_alert = round(latency * LATENCY_ALERT_FACTOR, 3)
    decisions.append(
        _d(
            "latency_p95_alert_ms",
            latency_alert,
            f"{LATENCY_ALERT_FACTOR} x latency_target_ms = {LATENCY_ALERT_FACTOR} x {latency:g}",
            kind="thresholds",
        )
    )

    schedule = "0 2 * * *" if pattern in {"batch", "hybrid"} else "0 2 * * 0"
    decisions.append(
        _d(
            "batch_schedule",
            schedule,
            "daily at 02:00 for batch and hybrid scoring, weekly (Sunday 02:00) otherwise",
        )
    )
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
        hpa_cpu_target_percent=hpa_target,
        startup_seconds=startup,
        assumptions=assumptions(),
    )
    return sizing, decisions, latency_alert
