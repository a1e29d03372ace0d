"""The names of the generated resources: one table, read by the templates (``names`` in the
render context), the quick start and the checks that look for them."""

from __future__ import annotations

BUCKET = "mlops-artifacts"
REGISTRY = "registry.example.com"


def resource_names(project: str) -> dict[str, str]:
    """Every generated resource name, derived from the project name."""
    artifact_root = f"s3://{BUCKET}/{project}"
    return {
        "project": project,
        "model": project,
        "namespace": project,
        "predictor_service": f"{project}-predictor",
        "shadow": f"{project}-shadow",
        "canary": f"{project}-canary",
        "mlflow": f"{project}-mlflow",
        "batch": f"{project}-batch",
        "batch_app": f"{project}-batch-score",
        "spark_account": f"{project}-spark",
        "serving_account": f"{project}-serving",
        # The pipeline runs' identity and its publish Role (k8s/pipeline-access.yaml).
        "pipeline_account": f"{project}-pipeline",
        "publish_role": f"{project}-publish",
        "tracking_compose": f"{project}-tracking",
        "retraining_pipeline": f"{project}-retraining",
        "alert_group_serving": f"{project}-serving",
        "alert_group_model": f"{project}-model-quality",
        "alert_channel": f"#{project}-alerts",
        "dashboard_uid": f"{project}-model",
        "secret_mlflow": f"{project}-mlflow",
        "secret_storage": f"{project}-storage",
        # Seldon Core v2's storage secret: the object store as an rclone remote (k8s/seldon.yaml).
        "secret_storage_rclone": f"{project}-storage-rclone",
        # The Seldon Experiment that splits or mirrors traffic to a challenger Model.
        "seldon_experiment": f"{project}-rollout",
        "bucket": BUCKET,
        "artifact_root": artifact_root,
        # Where src/publish.py copies each published model version (<root>/<model>/v<version>);
        # the InferenceService names that copy. Until the first publish it names `unpublished`.
        "serving_root": f"{artifact_root}/serving",
        "storage_uri": f"{artifact_root}/serving/{project}/unpublished",
        "serving_runtime": f"{project}-mlserver",
        "shadow_storage_uri": f"{artifact_root}/serving/{project}/unpublished",
        "tracking_uri": f"http://{project}-mlflow:5000",
        "image_registry": f"{REGISTRY}/{project}",
        "mlflow_server_image": f"{REGISTRY}/{project}/mlflow-server",
        "model_image": f"{REGISTRY}/{project}/model",
        "serving_image": f"{REGISTRY}/{project}/serving",
    }
