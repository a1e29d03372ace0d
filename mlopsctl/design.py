"""The engine's output: the chosen stack, every decision with its reason, thresholds and sizing.

``StackDesign`` is what ``assess`` prints (its JSON dump is versioned by ``schema_version``) and
what the templates see. Templates branch on these values only, never on raw requirements.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from mlopsctl.requirements import Requirements

DESIGN_SCHEMA_VERSION = 1

Tier = Literal["T1", "T2", "T3"]
TIER_COMMAND = {"T1": "assess", "T2": "design", "T3": "lifecycle"}


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ReferenceOut(_Frozen):
    title: str
    url: str
    accessed: str


class Decision(_Frozen):
    """One choice and why: the rule that made it, the reason, the sources, the formula if any."""

    rule: str
    capability: str
    choice: str | int | float | bool | list[int] | None
    reason: str
    references: list[ReferenceOut] = Field(default_factory=list)
    formula: str | None = None


class Alternative(_Frozen):
    """A choice that was not taken: proposed by a fired rule and overridden by another, or
    considered by the rule that made the choice (then ``overridden_by`` is that rule and
    ``reason`` says why not)."""

    capability: str
    choice: str
    proposed_by: str
    overridden_by: str
    reason: str | None = None


class Conflict(_Frozen):
    capability: str
    choices: dict[str, str]  # rule id -> choice
    resolved_to: str
    message: str


class Stack(_Frozen):
    tracking: str
    registry: str
    serving: str
    deployment_pattern: str
    rollout: str
    orchestration: str
    monitoring: str
    drift_detection: str
    retraining: str
    model_optimization: str
    autoscaling: str
    batch_engine: str
    caching: str


class Thresholds(_Frozen):
    """Monitoring thresholds. Drift, alert and retraining files all read these same numbers."""

    psi_monitor: float
    psi_investigate: float
    psi_retrain: float
    ks_pvalue: float
    accuracy_drop_investigate: float
    accuracy_drop_retrain: float
    # None where nothing serves online (batch, edge): no request latency to alert on.
    latency_p95_alert_ms: float | None = None
    latency_alert_for_minutes: int
    error_rate_alert: float
    error_rate_page: float
    # Requests per second one serving replica may serve before the saturation alert fires;
    # None without a measured capacity (``Requirements.measured``): no saturation alert then.
    saturation_rps_per_replica: float | None = None


class Sizing(_Frozen):
    """Numbers derived from the scale requirements; each has a decision with its formula."""

    latency_target_ms: float
    peak_rps: float
    # The replica numbers and the startup window are None where nothing serves online (batch,
    # edge deployments): no serving replicas, autoscaler or startup probe.
    per_replica_rps: float | None
    target_utilization: float
    min_replicas: int | None
    max_replicas: int | None
    scale_target_concurrency: int | None
    cpu_request: str
    cpu_limit: str
    memory_request: str
    memory_limit: str
    gpu_per_replica: int
    canary_percent: int
    rollout_steps: list[int]
    batch_schedule: str
    hpa_cpu_target_percent: int | None
    startup_seconds: int | None
    assumptions: list[str]


class Alert(_Frozen):
    """One alert of the monitoring setup: P0 serving down (page), P1 SLO violation, P2 drift
    (chat notification), P3 retraining failure. ``thresholds`` names the ``Thresholds`` fields
    whose values the alert compares against."""

    name: str
    priority: Literal["P0", "P1", "P2", "P3"]
    notify: Literal["page", "alert", "chat", "ticket"]
    signal: str
    thresholds: list[str]
    rule: str


class QuickStart(_Frozen):
    """The minimal configuration and first steps for the chosen stack."""

    tracking_uri: str
    artifact_store: str
    registered_model_name: str
    registry_alias: str
    model_uri: str
    deploy_command: str
    monitoring_queries: dict[str, str]
    checklist: list[str]


class Components(_Frozen):
    """What the generated repository contains. The engine derives each one from the design
    (stack, tier, governance controls, answers) in ``mlopsctl.rules.components``; the templates
    choose their files and sections by these and by nothing else."""

    kubernetes: bool  # Kubernetes manifests under k8s/
    kserve: bool  # a KServe InferenceService
    k8s_deployment: bool  # a Deployment, Service, HPA, PDB and policy (online, not KServe/Seldon)
    seldon: bool  # Seldon Core v2 Server and Model resources (online, Seldon decided)
    online: bool  # an online endpoint (online or hybrid deployment)
    edge: bool  # the model runs on a device (edge or embedded target): nothing serves it here
    # deploy/model/Dockerfile: the image the cluster's jobs and pipeline steps run (and the
    # rehearsal's entry points); an edge project has none unless a pipeline or job runs in it
    project_image: bool
    batch_job: bool  # a scheduled batch scoring job on the cluster
    spark: bool  # batch scoring with Spark
    canary: bool  # a first traffic step below 100 % (canary, progressive)
    progressive: bool  # progressive rollout with automated rollback
    shadow: bool  # a shadow deployment on mirrored traffic
    kubeflow: bool  # a Kubeflow retraining pipeline
    scheduled_retraining: bool  # retraining scheduled by CI instead of Kubeflow
    prometheus: bool  # Prometheus alerts, Alertmanager routes, Grafana dashboard
    github_actions: bool
    gitlab_ci: bool
    jenkins: bool
    production: bool  # production governance (authentication, approvals, two replicas)
    regulated: bool  # a regulation applies
    governance: bool  # the tier-3 governance set: approvals, lineage, changelog, cost notes
    model_card: bool
    rollback_runbook: bool
    audit_log: bool
    # The model exported to ONNX with a parity check and a device bundle (an edge or embedded
    # target on ONNX Runtime, a scikit-learn, XGBoost or LightGBM model)
    onnx_export: bool
    # Per-prediction SHAP explanations of the champion (src/explain.py) and its global importance
    # summary: an explainability mandate (GOV004) on a tabular classifier or regressor
    explanations: bool


class StackDesign(_Frozen):
    schema_version: int = DESIGN_SCHEMA_VERSION
    tier: Tier
    tier_floor: Tier | None = None  # the least tier the command asked for (design, lifecycle)
    stack: Stack
    decisions: list[Decision]
    thresholds: Thresholds
    sizing: Sizing
    governance: list[str]
    alerts: list[Alert]
    quickstart: QuickStart
    warnings: list[str]
    conflicts: list[Conflict]
    alternatives: list[Alternative]
    fired_rules: list[str]
    components: Components
    requirements: Requirements

    def json_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


def design_json_schema() -> dict[str, Any]:
    """The published JSON Schema of ``assess --format json`` (and ``.mlopsctl/design.json``)."""
    schema = StackDesign.model_json_schema(mode="serialization")
    schema["properties"]["schema_version"]["const"] = DESIGN_SCHEMA_VERSION
    schema["required"] = ["schema_version", *schema["required"]]
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://mlopsctl.dev/schemas/design.schema.json"
    return schema
