"""Answer sets (and stack variants) the generated-repository tests render once per session.

Every deployment target, every governance level and several frameworks appear; the variants set
stack choices directly (as the rule catalog may decide them) to reach every template branch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlopsctl.design import StackDesign
from mlopsctl.render import generate
from mlopsctl.rules.components import components
from mlopsctl.rules.engine import evaluate
from tests.conftest import make_requirements

# Upstream schemas the tests check generated files against, vendored unchanged (see its README).
SCHEMAS = Path(__file__).resolve().parent / "fixtures" / "upstream"


@dataclass(frozen=True)
class Case:
    answers: dict[str, Any]
    tier: str | None = None  # the command's tier floor: None for init, T2 design, T3 lifecycle
    stack: dict[str, str] = field(default_factory=dict)
    sizing: dict[str, Any] = field(default_factory=dict)

    def design(self) -> StackDesign:
        design = evaluate(make_requirements(**self.answers), tier_floor=self.tier)
        if not (self.stack or self.sizing):
            return design
        stack = design.stack.model_copy(update=self.stack)
        sizing = design.sizing.model_copy(update=self.sizing)
        parts = components(design.requirements, stack, design.tier, design.governance, sizing)
        return design.model_copy(update={"stack": stack, "sizing": sizing, "components": parts})


# A replica's capacity as `mlopsctl rehearse --measure` records it.
MEASURED: dict[str, Any] = {
    "rps_per_replica": 180.0,
    "p95_ms": 41.0,
    "latency_target_ms": 200.0,
    "concurrency": 8,
    "cpu_cores": 1.0,
    "measured_on": "2026-12-02",
    "machine": "Example CPU (2 CPUs)",
    "runtime": "mlserver 1.7.1",
    "tool": "locust 2.47.0",
}

CASES: dict[str, Case] = {
    "defaults": Case({}),
    "design-defaults": Case({}, "T2"),
    # An explainability mandate: src/explain.py, `make explain` and the SHAP pin.
    "lifecycle-production-xgboost-gdpr": Case(
        {
            "governance_level": "production",
            "framework": "xgboost",
            "regulations": ["gdpr"],
            "explainability_required": True,
        },
        "T3",
    ),
    "production-lightgbm-gitlab": Case(
        {"governance_level": "production", "framework": "lightgbm", "ci_platform": "gitlab-ci"},
        "T2",
    ),
    "experimental-batch-jenkins": Case(
        {
            "governance_level": "experimental",
            "deployment_target": "batch",
            "ci_platform": "jenkins",
            "scale_requirements": {"data_volume_gb": 50},
        },
        "T2",
    ),
    "edge-onnx": Case(
        {
            "deployment_target": "edge",
            "framework": "onnx",
            "scale_requirements": {"latency_ms": 20},
        },
        "T2",
    ),
    "embedded-sklearn-lifecycle": Case({"deployment_target": "embedded"}, "T3"),
    # The ONNX export of a booster (onnxmltools), with optimization decided (SRV002).
    "embedded-lightgbm-fast": Case(
        {
            "deployment_target": "embedded",
            "framework": "lightgbm",
            "scale_requirements": {"latency_ms": 30},
        }
    ),
    "hybrid-pytorch-gpu-production": Case(
        {
            "deployment_target": "hybrid",
            "framework": "pytorch",
            "gpu": True,
            "governance_level": "production",
            "scale_requirements": {"rps": 1500, "latency_ms": 80},
        },
        "T3",
    ),
    "batch-without-kubernetes": Case({"deployment_target": "batch", "kubernetes": False}, "T2"),
    "online-without-kubernetes-huggingface": Case(
        {"kubernetes": False, "framework": "huggingface", "governance_level": "production"}, "T3"
    ),
    "tensorflow-maturity-zero": Case({"framework": "tensorflow", "maturity_level": 0}),
    # A replica's capacity measured under load (mlopsctl rehearse --measure): the saturation
    # alert, its unit tests and the dashboard's capacity line.
    "production-measured": Case(
        {
            "governance_level": "production",
            "measured": MEASURED,
        },
        "T2",
    ),
    # Stack variants: choices the catalog makes for other requirements.
    # Seldon Core v2 (SRV016): a Server and a Model, the production NetworkPolicy for its pods.
    "seldon-production": Case({"model_server": "seldon", "governance_level": "production"}),
    "variant-deployment-serving-production": Case(
        {"governance_level": "production", "framework": "custom"}, "T2", {"serving": "mlserver"}
    ),
    "variant-spark-kubeflow": Case(
        {"deployment_target": "batch", "scale_requirements": {"data_volume_gb": 5000}},
        "T3",
        {"batch_engine": "spark", "orchestration": "kubeflow"},
    ),
    "variant-canary-kubeflow": Case(
        {"governance_level": "production", "framework": "keras"},
        "T2",
        {"rollout": "canary", "orchestration": "kubeflow"},
        {"rollout_steps": [10, 100], "canary_percent": 10},
    ),
    "variant-progressive-lifecycle": Case(
        {"governance_level": "production", "project_name": "fraud-detection"},
        "T3",
        {"rollout": "progressive"},
        {"rollout_steps": [5, 25, 50, 100], "canary_percent": 5},
    ),
}


def render_all(root: Path) -> dict[str, tuple[StackDesign, Path]]:
    out = {}
    for name, case in CASES.items():
        design = case.design()
        dest = root / name
        generate(design, dest)
        out[name] = (design, dest)
    return out
