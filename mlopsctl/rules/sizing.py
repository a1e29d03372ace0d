"""Concrete numbers from the scale requirements, each with the formula that produced it.

Each number is decided by one sizing rule of the catalog (``catalog/sizing/SIZnnn-*.yaml``: id,
formula, rationale, references, shown by ``mlopsctl rules list`` and ``explain``); the formulas
themselves are computed here.

The assumptions are stated here once, listed in ``Sizing.assumptions`` and shown by ``assess``:
- per-replica capacity by framework family and hardware (``CAPACITY_RPS``), unless the answers
  record a load test of the real runtime (``measured``, written by ``mlopsctl rehearse
  --measure``): then the measured capacity is used and named as measured,
- a 70 % target utilization, so a replica has headroom for bursts,
- with a measurement, a saturation alert at 80 % of the measured capacity (``SATURATION_FRACTION``):
  past the 70 % the replicas are sized for, the autoscaler is not keeping up; without one no
  saturation alert, since a threshold from an assumed capacity would fire on a healthy service
  or stay silent on a saturated one,
- memory of twice the model size plus a runtime overhead, limits 1.5x the requests,
- a latency target when none is given, by deployment pattern (``DEFAULT_LATENCY_MS``),
- a neural network's replica serves at most its memory bandwidth over the model's size
  (``MEMORY_BANDWIDTH_GB_S``: every prediction reads the weights once), and the serving
  containers' startup probe waits out the startup window (``STARTUP_PROBE_PERIOD_SECONDS``).

Replicas, autoscaling, the startup window and the latency and saturation alerts exist only where
something serves online (``serves_online``): a batch deployment gets the resources of its job
pods, an edge deployment the model's resources on the device, and no replica numbers.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Any

from mlopsctl.design import Decision, ReferenceOut, Sizing, Stack
from mlopsctl.errors import CatalogError
from mlopsctl.measured import MeasuredCapacity
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
# The memory bandwidth one serving replica reads a neural network's weights at, in GB/s: a
# forward pass reads every weight at least once, so one prediction takes at least
# model_size_gb / bandwidth (a generative model one pass per generated token). A CPU replica of
# one or two vCPUs gets about one core's share of a socket's bandwidth (STREAM), one GPU of the
# T4/L4 class about 300 GB/s. ABT009 reads the CPU figure (``weights_read_gb_per_s``).
MEMORY_BANDWIDTH_GB_S = {False: 10.0, True: 300.0}
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
# The share of the measured capacity one replica may serve before the saturation alert fires:
# above the target utilization the replicas are sized and autoscaled for, below the capacity at
# which the p95 latency reaches the SLA.
SATURATION_FRACTION = 0.8
DEFAULT_CANARY_PERCENT = 10
STARTUP_BASE_SECONDS = 30
STARTUP_SECONDS_PER_GB = 60
# The serving containers' startup probe checks this often; its failureThreshold covers the window.
STARTUP_PROBE_PERIOD_SECONDS = 10


# The assumptions about resources, stated for every deployment target.
_RESOURCE_ASSUMPTIONS = (
    f"a pod needs twice the model size in memory (loaded copy plus deserialization) plus "
    f"{RUNTIME_OVERHEAD_GB} GB of runtime; limits are {MEMORY_LIMIT_FACTOR}x the request",
    f"CPU request {CPU_REQUEST_MILLI['classic']}m for classic models and "
    f"{CPU_REQUEST_MILLI['deep']}m for neural networks; limits {CPU_LIMIT_FACTOR}x",
    "without a latency SLA the target is "
    + ", ".join(f"{v:g} ms for {k}" for k, v in DEFAULT_LATENCY_MS.items()),
)


def latency_target_ms(req: Requirements) -> float | None:
    """The latency a prediction must meet: the SLA given, else the deployment target's default;
    None for batch (no request waits for one prediction)."""
    if req.deployment_target == "batch":
        return None
    if req.scale_requirements.latency_ms is not None:
        return float(req.scale_requirements.latency_ms)
    pattern = "edge" if req.deployment_target in {"edge", "embedded"} else req.deployment_target
    return DEFAULT_LATENCY_MS.get(pattern, 200.0)


def weights_read_gb_per_s(req: Requirements) -> float | None:
    """The memory bandwidth one prediction within the latency target needs to read the model's
    weights once: model_size_gb / latency target in seconds (a derived fact ABT009 reads)."""
    latency = latency_target_ms(req)
    if latency is None or latency <= 0:
        return None
    return round(req.model_size_gb * 1000.0 / latency, 3)


def startup_probe_failures(startup_seconds: int) -> int:
    """The startup probe's failureThreshold: failureThreshold x periodSeconds covers the window."""
    return math.ceil(startup_seconds / STARTUP_PROBE_PERIOD_SECONDS)


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
    number: str,
    choice: float | int | str | list[int] | None,
    formula: str,
    *,
    kind: str = "sizing",
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


def assumptions(req: Requirements | None = None, *, online: bool = True) -> list[str]:
    """The stated assumptions behind every derived number (the capacity of one replica is
    measured instead when the answers record a load test). Without an online endpoint (batch,
    edge) only those about resources and the latency target."""
    if not online:
        return [
            *_RESOURCE_ASSUMPTIONS,
            "no online endpoint: no serving replicas, autoscaling, startup probe, latency or "
            "saturation alert",
        ]
    measured = req.measured if req is not None else None
    capacity = (
        f"one replica serves {measured.rps_per_replica:g} rps: {measured.summary()} against a "
        f"{measured.latency_target_ms:g} ms SLA ({measured.concurrency} requests in flight; "
        f"{measured.runtime}, {measured.tool}, {measured.machine}); measure again when the "
        "model or its runtime changes"
        if measured is not None
        else None
    )
    return [
        capacity
        or f"one replica serves {CAPACITY_RPS[('classic', False)]:g} rps for classic models "
        f"(sklearn, xgboost, lightgbm, onnx, custom), {CAPACITY_RPS[('deep', False)]:g} rps for "
        f"neural networks on CPU and {CAPACITY_RPS[('deep', True)]:g} rps on one GPU; measure "
        "your model and adjust",
        f"replicas run at {TARGET_UTILIZATION:.0%} of that capacity to absorb bursts",
        (
            f"a replica serving more than {SATURATION_FRACTION:.0%} of its measured capacity "
            f"({saturation_threshold(measured):.15g} rps) raises the saturation "
            "alert"
            if measured is not None
            else "no saturation alert while the capacity of one replica is assumed: a threshold "
            "from an assumption would fire on a healthy service or stay silent on a saturated "
            "one; a measurement (mlopsctl rehearse --measure, or a load test recorded in the "
            "`measured` section of mlopsctl.yaml) followed by mlopsctl update adds it at "
            f"{SATURATION_FRACTION:.0%} of the measured capacity"
        ),
        *_RESOURCE_ASSUMPTIONS,
        f"with autoscaling on CPU (HPA), {WARM_FRACTION:.0%} of the peak replicas stay warm",
        f"a model loads in {STARTUP_BASE_SECONDS} s plus {STARTUP_SECONDS_PER_GB} s per GB; the "
        f"serving containers' startup probe (every {STARTUP_PROBE_PERIOD_SECONDS} s) allows that "
        "long",
    ]


class _Numbers:
    """The numbers derived so far and one decision for each, in the order they were derived."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}
        self.decisions: list[Decision] = []

    def set(self, number: str, value: Any, formula: str, *, kind: str = "sizing") -> Any:
        self.decisions.append(_d(number, value, formula, kind=kind))
        self.values[f"{kind}.{number}"] = value
        return value

    def __getitem__(self, number: str) -> Any:
        return self.values[f"sizing.{number}"]


def derive_sizing(
    req: Requirements, stack: Stack, rollout_steps: list[int]
) -> tuple[Sizing, list[Decision], dict[str, float]]:
    """Derive replicas, resources, rollout steps and the alert thresholds that follow from
    them: the p95 latency alert, and the saturation alert where a capacity was measured.

    Returns the sizing, one decision per number with its formula, and those thresholds (by
    ``Thresholds`` field).
    """
    n = _Numbers()
    online = serves_online(stack)
    _throughput(req, stack, n)
    if online:
        _replicas(req, stack, n)
    else:
        _no_replicas(stack, n)
    _resources(req, stack, n)
    _rollout(stack, rollout_steps, n)
    latency = n["latency_target_ms"]
    thresholds: dict[str, float | None] = {}
    if online:
        thresholds["latency_p95_alert_ms"] = n.set(
            "latency_p95_alert_ms",
            round(latency * LATENCY_ALERT_FACTOR, 3),
            f"{LATENCY_ALERT_FACTOR} x latency_target_ms = {LATENCY_ALERT_FACTOR} x {latency:g}",
            kind="thresholds",
        )
        saturation = _saturation(req.measured, n)
        if saturation is not None:
            thresholds["saturation_rps_per_replica"] = saturation
    else:
        thresholds["latency_p95_alert_ms"] = n.set(
            "latency_p95_alert_ms",
            None,
            f"{_no_endpoint(stack)}: no request latency to alert on",
            kind="thresholds",
        )
        n.set(
            "saturation_rps_per_replica",
            None,
            f"{_no_endpoint(stack)}: no replica to saturate",
            kind="thresholds",
        )
    n.set(
        "batch_schedule",
        "0 2 * * *" if stack.deployment_pattern in {"batch", "hybrid"} else "0 2 * * 0",
        "daily at 02:00 for batch and hybrid scoring, weekly (Sunday 02:00) otherwise",
    )
    sizing = Sizing(
        **{k.removeprefix("sizing."): v for k, v in n.values.items() if k.startswith("sizing.")},
        target_utilization=TARGET_UTILIZATION,
        assumptions=assumptions(req, online=online),
    )
    return sizing, n.decisions, {k: v for k, v in thresholds.items() if v is not None}


def serves_online(stack: Stack) -> bool:
    """Whether something serves requests online (an online or hybrid deployment): only then are
    there replicas to size and autoscale, a startup probe and a request latency to alert on."""
    return stack.deployment_pattern in {"online", "hybrid"}


def _no_endpoint(stack: Stack) -> str:
    if stack.deployment_pattern == "edge":
        return "edge deployment: the model runs on the device, no endpoint serves it"
    return "batch deployment: a scheduled job scores stored data, no endpoint serves it"


def _no_replicas(stack: Stack, n: _Numbers) -> None:
    """No online endpoint (batch, edge): no serving replicas, autoscaling or startup window."""
    why = _no_endpoint(stack)
    n.set("per_replica_rps", None, f"{why}: no replica serves requests")
    n.set("scale_target_concurrency", None, f"{why}: nothing autoscales on concurrency")
    n.set("max_replicas", None, f"{why}: no serving replicas")
    n.set("min_replicas", None, f"{why}: no serving replicas")
    n.set("hpa_cpu_target_percent", None, f"{why}: nothing autoscales on CPU")


def saturation_threshold(measured: MeasuredCapacity) -> float:
    """``SATURATION_FRACTION`` of the measured capacity of one replica, in requests per second."""
    return round(measured.rps_per_replica * SATURATION_FRACTION, 3)


def _saturation(measured: MeasuredCapacity | None, n: _Numbers) -> float | None:
    """The per-replica request rate past which replicas are saturated: a share of the measured
    capacity; None (no saturation alert) without a measurement (see the module's assumptions)."""
    if measured is None:
        n.set(
            "saturation_rps_per_replica",
            None,
            "no measured capacity: no saturation alert (a threshold from the assumed capacity "
            "would fire on a healthy service or stay silent on a saturated one); measure one "
            "replica (mlopsctl rehearse --measure) and run mlopsctl update",
            kind="thresholds",
        )
        return None
    rps = measured.rps_per_replica
    value: float = n.set(
        "saturation_rps_per_replica",
        saturation_threshold(measured),
        f"{SATURATION_FRACTION} x measured rps_per_replica = {SATURATION_FRACTION} x {rps:g} "
        f"({measured.summary()})",
        kind="thresholds",
    )
    return value


def _throughput(req: Requirements, stack: Stack, n: _Numbers) -> None:
    """The latency target, the peak load, one replica's capacity and its concurrency target."""
    scale = req.scale_requirements
    pattern = stack.deployment_pattern
    if scale.latency_ms is not None:
        latency = n.set("latency_target_ms", float(scale.latency_ms), "latency_ms as given")
    else:
        latency = n.set(
            "latency_target_ms",
            DEFAULT_LATENCY_MS.get(pattern, 200.0),
            f"default for {pattern} deployments",
        )

    if scale.rps is not None:
        n.set("peak_rps", float(scale.rps), "rps as given")
    elif scale.concurrent_users is not None:
        n.set(
            "peak_rps",
            round(scale.concurrent_users * 1000.0 / latency, 2),
            f"concurrent_users x 1000 / latency_target_ms = {scale.concurrent_users} x 1000 / "
            f"{latency:g} (Little's law: every user has one request in flight)",
        )
    else:
        n.set("peak_rps", DEFAULT_RPS, f"no rps or concurrent_users given: default {DEFAULT_RPS:g}")
    if not serves_online(stack):
        return

    capacity = n.set("per_replica_rps", *_capacity(req, latency))
    measured = req.measured
    if measured is not None:
        # The load test found the requests in flight at which one replica sustained its
        # capacity within the SLA: the autoscaler aims below that, not at the SLA's bound.
        n.set(
            "scale_target_concurrency",
            max(1, min(MAX_CONCURRENCY, math.floor(measured.concurrency * TARGET_UTILIZATION))),
            f"max(1, min({MAX_CONCURRENCY}, floor(measured concurrency x {TARGET_UTILIZATION}))) "
            f"= floor({measured.concurrency} x {TARGET_UTILIZATION}): {measured.concurrency} "
            f"requests in flight sustained {measured.rps_per_replica:g} rps at p95 "
            f"{measured.p95_ms:g} ms",
        )
        return
    n.set(
        "scale_target_concurrency",
        max(1, min(MAX_CONCURRENCY, math.floor(capacity * TARGET_UTILIZATION * latency / 1000.0))),
        f"max(1, min({MAX_CONCURRENCY}, floor(per_replica_rps x {TARGET_UTILIZATION} x "
        f"latency_target_ms / 1000))) = floor({capacity:g} x {TARGET_UTILIZATION} x "
        f"{latency:g} / 1000) (Little's law, every request taking the whole latency target)",
    )


def _capacity(req: Requirements, latency_target_ms: float) -> tuple[float, str]:
    """One replica's capacity and where it comes from: the load test recorded in the answers
    (``measured``), else the assumption for the model family and hardware."""
    measured = req.measured
    if measured is None:
        fam = family(req.framework)
        hardware = "GPU" if req.gpu else "CPU"
        assumed = CAPACITY_RPS[(fam, req.gpu)]
        if fam == "deep":
            # A forward pass reads every weight: one replica cannot answer more predictions a
            # second than its memory bandwidth reads the model.
            bandwidth = MEMORY_BANDWIDTH_GB_S[req.gpu]
            bound = round(bandwidth / req.model_size_gb, 3)
            if bound < assumed:
                return (
                    bound,
                    f"{bandwidth:g} GB/s of {hardware} memory bandwidth / model_size_gb = "
                    f"{bandwidth:g} / {req.model_size_gb:g} (every prediction reads the weights "
                    f"once; below the assumed {assumed:g} rps for deep models on {hardware})",
                )
        return assumed, f"assumed capacity of one replica for {fam} models on {hardware}"
    formula = (
        f"{measured.summary()} (SLA {measured.latency_target_ms:g} ms; {measured.runtime}, "
        f"{measured.tool}, {measured.machine})"
    )
    if measured.p95_ms > latency_target_ms:
        formula += (
            f"; its p95 of {measured.p95_ms:g} ms is above today's latency target of "
            f"{latency_target_ms:g} ms: measure again (mlopsctl rehearse --measure)"
        )
    return measured.rps_per_replica, formula


def _replicas(req: Requirements, stack: Stack, n: _Numbers) -> None:
    """How many replicas at most and at least, and the CPU autoscaling target."""
    peak, capacity = n["peak_rps"], n["per_replica_rps"]
    floor_replicas = 2 if req.governance_level == "production" else 1
    for_rps = math.ceil(peak / (capacity * TARGET_UTILIZATION)) if peak > 0 else 1
    users = req.scale_requirements.concurrent_users or 0
    for_users = math.ceil(users / n["scale_target_concurrency"]) if users else 0
    needed = max(for_rps, for_users, 1)
    max_replicas = n.set(
        "max_replicas",
        min(MAX_REPLICAS_CAP, max(floor_replicas + 1, needed)),
        f"min({MAX_REPLICAS_CAP}, max(min_replicas_floor + 1, ceil(peak_rps / "
        f"(per_replica_rps x {TARGET_UTILIZATION})), ceil(concurrent_users / "
        f"scale_target_concurrency))) = min({MAX_REPLICAS_CAP}, max({floor_replicas + 1}, "
        f"ceil({peak:g} / ({capacity:g} x {TARGET_UTILIZATION})), "
        f"{for_users}))",
    )
    if stack.autoscaling == "hpa":
        n.set(
            "min_replicas",
            min(max_replicas, max(floor_replicas, math.ceil(needed * WARM_FRACTION))),
            f"max({floor_replicas}, ceil(needed_replicas x {WARM_FRACTION})) = "
            f"max({floor_replicas}, ceil({needed} x {WARM_FRACTION}))",
        )
    else:
        n.set(
            "min_replicas",
            floor_replicas,
            "2 for production (survives a node loss with a PodDisruptionBudget), else 1",
        )
    n.set("hpa_cpu_target_percent", round(TARGET_UTILIZATION * 100), f"{TARGET_UTILIZATION} x 100")


def _resources(req: Requirements, stack: Stack, n: _Numbers) -> None:
    """Memory, CPU and GPUs per replica (per job pod in batch), and how long a serving replica
    may take to start."""
    mem_request_gb = req.model_size_gb * 2 + RUNTIME_OVERHEAD_GB
    n.set(
        "memory_request",
        _mem(mem_request_gb),
        f"model_size_gb x 2 + {RUNTIME_OVERHEAD_GB} GB = {req.model_size_gb:g} x 2 + "
        f"{RUNTIME_OVERHEAD_GB}, rounded up to 64 MiB",
    )
    n.set(
        "memory_limit",
        _mem(mem_request_gb * MEMORY_LIMIT_FACTOR),
        f"memory_request x {MEMORY_LIMIT_FACTOR}",
    )
    fam = family(req.framework)
    cpu_request_m = CPU_REQUEST_MILLI[fam]
    n.set("cpu_request", _cpu(cpu_request_m), f"{cpu_request_m}m for {fam} models")
    n.set("cpu_limit", _cpu(cpu_request_m * CPU_LIMIT_FACTOR), f"cpu_request x {CPU_LIMIT_FACTOR}")
    n.set(
        "gpu_per_replica",
        1 if req.gpu and fam == "deep" else 0,
        "1 when GPUs are available and the model is a neural network, else 0",
    )
    if not serves_online(stack):
        n.set("startup_seconds", None, f"{_no_endpoint(stack)}: no startup probe")
        return
    startup = STARTUP_BASE_SECONDS + math.ceil(STARTUP_SECONDS_PER_GB * req.model_size_gb)
    n.set(
        "startup_seconds",
        startup,
        f"{STARTUP_BASE_SECONDS} + ceil({STARTUP_SECONDS_PER_GB} x model_size_gb) = "
        f"{STARTUP_BASE_SECONDS} + ceil({STARTUP_SECONDS_PER_GB} x {req.model_size_gb:g}); the "
        f"startup probe checks every {STARTUP_PROBE_PERIOD_SECONDS} s and allows "
        f"ceil({startup} / {STARTUP_PROBE_PERIOD_SECONDS}) = {startup_probe_failures(startup)} "
        "failures",
    )


def _rollout(stack: Stack, rollout_steps: list[int], n: _Numbers) -> None:
    """The traffic steps of the rollout decision and the first share a new version gets."""
    steps = n.set(
        "rollout_steps", list(rollout_steps), f"the steps of the {stack.rollout} rollout decision"
    )
    n.set(
        "canary_percent",
        steps[0] if stack.rollout in {"canary", "progressive", "ab"} and steps else 0,
        "first rollout step for canary, progressive and A/B rollouts, else 0",
    )
