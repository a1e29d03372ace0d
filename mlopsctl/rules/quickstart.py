"""The minimal configuration of a chosen stack: where runs and artifacts go, how the model is
named in the registry, how it is deployed, which queries watch it, and the first steps.

Everything here follows from the stack the rules chose; nothing here decides.
"""

from __future__ import annotations

from mlopsctl.design import QuickStart, Stack
from mlopsctl.monitoring import queries
from mlopsctl.names import resource_names
from mlopsctl.requirements import Requirements

CHAMPION_ALIAS = "champion"


def _tracking_uri(req: Requirements, stack: Stack) -> str:
    name = req.project_name
    if stack.tracking == "mlflow":
        return resource_names(name)["tracking_uri"]  # the repository's tracking server
    return {
        "databricks": "databricks",
        "sagemaker": "arn:aws:sagemaker:<region>:<account-id>:mlflow-tracking-server/" + name,
        "azure_ml": "azureml://<region>.api.azureml.ms/mlflow/v1.0/subscriptions/<subscription>/"
        "resourceGroups/<group>/providers/Microsoft.MachineLearningServices/workspaces/<ws>",
        "vertex_ai": f"vertex-ai-experiments://<gcp-project>/<region>/{name}",
        "neptune": f"neptune://<workspace>/{name}",
        "wandb": f"wandb://<entity>/{name}",
    }.get(stack.tracking, resource_names(name)["tracking_uri"])


def _artifact_store(req: Requirements) -> str:
    """Where the repository's tracking server keeps artifacts."""
    return resource_names(req.project_name)["artifact_root"]


def _deploy_command(req: Requirements, stack: Stack, model_uri: str) -> str:
    name = req.project_name
    if stack.deployment_pattern == "batch":
        if stack.batch_engine == "spark" and req.kubernetes:
            return (
                "kubectl apply -f k8s/spark-application.yaml  # the Spark operator runs "
                f"src/batch_score_spark.py: mlflow.pyfunc.spark_udf(spark, '{model_uri}')"
            )
        if stack.batch_engine == "spark":
            return (
                "spark-submit score.py  # scores with "
                f"mlflow.pyfunc.spark_udf(spark, '{model_uri}')"
            )
        return f"mlflow models predict -m '{model_uri}' -i input.csv -t csv -o predictions.csv"
    commands = {
        "kserve": "kubectl apply -f k8s/inferenceservice.yaml",
        "seldon": "kubectl apply -f k8s/serving-access.yaml -f k8s/seldon.yaml",
        "mlflow": f"mlflow models serve -m '{model_uri}' --host 0.0.0.0 --port 5001",
        "torchserve": f"torchserve --start --model-store model_store --models {name}={name}.mar",
        "tf_serving": (
            'docker run -p 8501:8501 -v "$PWD/saved_model:/models/'
            f'{name}" -e MODEL_NAME={name} tensorflow/serving'
        ),
        "triton": "tritonserver --model-repository=./model_repository",
        "vertex_ai": (
            "gcloud ai endpoints deploy-model <endpoint-id> --region=<region> "
            f"--model=<model-id> --display-name={name} --traffic-split=0=100"
        ),
        "sagemaker": (
            f"aws sagemaker create-endpoint --endpoint-name {name} "
            f"--endpoint-config-name {name}-config"
        ),
        "azure_ml": f"az ml online-deployment create --file deployment.yml --endpoint-name {name}",
        "databricks": "databricks serving-endpoints create --json @serving-endpoint.json",
        "onnxruntime": f"python -c \"import mlflow; mlflow.onnx.load_model('{model_uri}')\"  "
        "# export to model.onnx and ship it with the device build",
        "tflite": "tflite_convert --saved_model_dir=saved_model --output_file=model.tflite",
        "torchscript": 'python -c "import torch; torch.jit.save(torch.jit.script(model), '
        "'model.pt')\"",
    }
    return commands.get(stack.serving, f"mlflow models serve -m '{model_uri}'")


# Metrics of the managed endpoints, in each cloud's monitoring service.
CLOUD_METRICS: dict[str, dict[str, str]] = {
    "sagemaker": {
        "latency_p95_ms": "CloudWatch AWS/SageMaker ModelLatency, statistic p95 (microseconds) "
        "/ 1000, dimension EndpointName={name}",
        "error_rate": "CloudWatch AWS/SageMaker Invocation5XXErrors / Invocations, "
        "EndpointName={name}",
        "requests_per_second": "CloudWatch AWS/SageMaker Invocations (Sum per 60 s) / 60",
    },
    "vertex_ai": {
        "latency_p95_ms": "Cloud Monitoring aiplatform.googleapis.com/prediction/online/"
        "prediction_latencies, 95th percentile, endpoint {name}",
        "error_rate": "Cloud Monitoring aiplatform.googleapis.com/prediction/online/error_count "
        "/ prediction_count, endpoint {name}",
        "requests_per_second": "Cloud Monitoring aiplatform.googleapis.com/prediction/online/"
        "prediction_count, rate",
    },
    "azure_ml": {
        "latency_p95_ms": "Azure Monitor online endpoint metric RequestLatency_P95, endpoint "
        "{name}",
        "error_rate": "Azure Monitor online endpoint metric RequestsPerMinute split by "
        "statusCodeClass (5xx / all)",
        "requests_per_second": "Azure Monitor online endpoint metric RequestsPerMinute / 60",
    },
    "databricks": {
        "latency_p95_ms": "serving endpoint metrics export /api/2.0/serving-endpoints/{name}/"
        "metrics (Prometheus format)",
        "error_rate": "serving endpoint metrics export: 4xx/5xx responses over requests",
        "requests_per_second": "serving endpoint metrics export: request rate",
    },
}


def _queries(req: Requirements, stack: Stack) -> dict[str, str]:
    """The queries of the monitoring contract, on the labels the generated manifests set."""
    name = req.project_name
    kserve = req.kubernetes and stack.serving == "kserve"
    seldon = req.kubernetes and stack.serving == "seldon"
    contract = queries(name, kserve, framework=req.framework, seldon=seldon)
    drift = {"drift_psi_max": contract["drift_psi_max"]}
    if stack.monitoring == "cloud" and stack.serving in CLOUD_METRICS:
        return {k: v.format(name=name) for k, v in CLOUD_METRICS[stack.serving].items()} | drift
    if stack.deployment_pattern in {"online", "hybrid"} and req.kubernetes:
        # Only what the serving runtime exports (data/serving.yaml: runtime_metrics); without
        # Kubernetes the endpoint (`mlflow models serve`) exports none.
        wanted = ("latency_p95_ms", "error_rate", "requests_per_second")
        return {k: contract[k] for k in wanted if k in contract} | drift
    return drift


def quickstart(req: Requirements, stack: Stack, governance: list[str]) -> QuickStart:
    name = req.project_name
    model_uri = f"models:/{name}@{CHAMPION_ALIAS}"
    checklist = [
        f"install the experiment tracker ({stack.tracking}) and point MLFLOW_TRACKING_URI (or the "
        "platform's client) at the tracking URI below",
        f"register every trained model as '{name}' with a signature; promote a version by moving "
        f"the '{CHAMPION_ALIAS}' alias (registry: {stack.registry})",
        f"deploy with {stack.serving} ({stack.deployment_pattern}); roll out with {stack.rollout}",
        "collect latency (p50/p95/p99), throughput and error rate"
        + (" with Prometheus" if stack.monitoring == "prometheus" else " in the cloud console"),
    ]
    if stack.drift_detection != "none":
        checklist.append(f"schedule drift checks ({stack.drift_detection}: PSI and KS tests)")
    if stack.orchestration not in {"none", "ci"}:
        checklist.append(f"run retraining as a {stack.orchestration} pipeline ({stack.retraining})")
    if governance:
        checklist.append("put the governance controls in place: " + ", ".join(governance))
    return QuickStart(
        tracking_uri=_tracking_uri(req, stack),
        artifact_store=_artifact_store(req),
        registered_model_name=name,
        registry_alias=CHAMPION_ALIAS,
        model_uri=model_uri,
        deploy_command=_deploy_command(req, stack, model_uri),
        monitoring_queries=_queries(req, stack),
        checklist=checklist,
    )
