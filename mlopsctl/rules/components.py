"""What the generated repository contains, read off the decisions the rules made.

Each component is a fact of the design: a stack choice, the tier, a governance control the rules
require, or an answer. Nothing here decides anything the rules have not decided; the tier, for
example, reaches the files only through the rules that read it (ROL002's progressive rollout,
ROL007's shadow deployment, GOV008's model card, audit log and rollback procedure).
"""

from __future__ import annotations

from mlopsctl.design import Components, Sizing, Stack
from mlopsctl.kinds import edge_export
from mlopsctl.requirements import Requirements

# The frameworks whose models skl2onnx (with onnxmltools' converters) exports to ONNX.
ONNX_EXPORT_FRAMEWORKS = frozenset({"sklearn", "xgboost", "lightgbm"})
# The model types whose predictions src/explain.py attributes to tabular input features: one
# number per row, so SHAP's attributions of a row add up (with the base value) to its prediction.
EXPLAINED_MODEL_TYPES = frozenset({"classification", "regression"})


def components(
    req: Requirements, stack: Stack, tier: str, governance: list[str], sizing: Sizing
) -> Components:
    online = stack.deployment_pattern in {"online", "hybrid"}
    k8s = req.kubernetes
    kserve = k8s and stack.serving == "kserve"
    seldon = k8s and online and stack.serving == "seldon"
    edge = stack.deployment_pattern == "edge"
    batch_job = k8s and stack.batch_engine in {"cronjob", "spark"}
    return Components(
        kubernetes=k8s,
        kserve=kserve,
        k8s_deployment=k8s and online and not kserve and not seldon and stack.serving != "none",
        seldon=seldon,
        online=online,
        edge=edge,
        project_image=not edge or stack.orchestration == "kubeflow" or batch_job,
        batch_job=batch_job,
        spark=k8s and stack.batch_engine == "spark",
        # A first traffic share below 100 % (canary, progressive, A/B): KServe's canary split.
        canary=online and 0 < sizing.canary_percent < 100,
        # Progressive rollout and shadow traffic act on cluster serving (KServe or a Deployment).
        progressive=k8s and online and stack.rollout == "progressive",
        shadow=k8s and online and (stack.rollout == "shadow" or "shadow-deployment" in governance),
        kubeflow=stack.orchestration == "kubeflow",
        scheduled_retraining=stack.orchestration != "kubeflow",
        prometheus=stack.monitoring == "prometheus",
        github_actions=req.ci_platform == "github-actions",
        gitlab_ci=req.ci_platform == "gitlab-ci",
        jenkins=req.ci_platform == "jenkins",
        production=req.governance_level == "production",
        regulated=bool(req.regulations),
        governance=tier == "T3",
        model_card="model-card" in governance,
        rollback_runbook="rollback-procedure" in governance,
        audit_log="audit-log" in governance,
        onnx_export=stack.deployment_pattern == "edge"
        and stack.serving == "onnxruntime"
        and req.framework in ONNX_EXPORT_FRAMEWORKS
        and edge_export(req.model_type),
        explanations="explainability-report" in governance
        and req.model_type in EXPLAINED_MODEL_TYPES,
    )
