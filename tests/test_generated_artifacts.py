"""Every generated file passes the real tool of its ecosystem.

Kubernetes kinds: kubernetes-validate --strict; InferenceServices: the upstream KServe v1beta1 CRD
schema with unknown fields rejected; Prometheus rules: promtool check + the generated promtool
unit tests; dashboards: the Grafana 11.6 JSON schema; workflows: check-jsonschema's vendor
schemas; the KFP pipeline: the kfp compiler; secrets: detect-secrets; the five output contracts:
the JSON Schemas mlopsctl publishes.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from mlopsctl.design import StackDesign
from mlopsctl.monitoring import runtime_metrics
from mlopsctl.render import flags, generate, serving_table
from tests.generated_cases import CASES, SCHEMAS, render_all

PACKAGE_SCHEMAS = Path(__file__).resolve().parent.parent / "mlopsctl" / "schemas"
BIN = Path(sys.executable).parent
K8S_VERSION = "1.33.0"
POD_KINDS = {"Deployment", "CronJob"}


@pytest.fixture(scope="session")
def projects(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[StackDesign, Path]]:
    return render_all(tmp_path_factory.mktemp("generated"))


def docs_of(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d is not None]


def manifests(root: Path) -> list[tuple[Path, dict[str, Any]]]:
    k8s = root / "k8s"
    return [(p, d) for p in sorted(k8s.glob("*.yaml")) for d in docs_of(p)] if k8s.is_dir() else []


# --- upstream schemas ------------------------------------------------------------------------


def _closed(schema: Any) -> Any:
    """Reject unknown fields wherever the CRD does not explicitly preserve them."""
    if isinstance(schema, dict):
        schema = {k: _closed(v) for k, v in schema.items()}
        if (
            schema.get("type") == "object"
            and "properties" in schema
            and "additionalProperties" not in schema
            and not schema.get("x-kubernetes-preserve-unknown-fields")
        ):
            schema["additionalProperties"] = False
        return schema
    if isinstance(schema, list):
        return [_closed(v) for v in schema]
    return schema


@cache
def kserve_validator() -> jsonschema.Draft7Validator:
    text = (SCHEMAS / "kserve" / "serving.kserve.io_inferenceservices.yaml").read_text()
    crd = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    (version,) = [v for v in crd["spec"]["versions"] if v["name"] == "v1beta1"]
    return jsonschema.Draft7Validator(_closed(version["schema"]["openAPIV3Schema"]))


@cache
def servingruntime_validator() -> jsonschema.Draft7Validator:
    text = (SCHEMAS / "kserve" / "serving.kserve.io_servingruntimes.yaml").read_text()
    crd = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    (version,) = [v for v in crd["spec"]["versions"] if v["name"] == "v1alpha1"]
    return jsonschema.Draft7Validator(_closed(version["schema"]["openAPIV3Schema"]))


@cache
def grafana_schema(name: str) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(
        (SCHEMAS / "grafana" / f"{name}.jsonschema.json").read_text()
    )
    return result


@cache
def contract_validator(name: str) -> jsonschema.Draft202012Validator:
    schema = json.loads((PACKAGE_SCHEMAS / f"{name}.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def errors_of(validator: Any, instance: Any) -> list[str]:
    return [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in validator.iter_errors(instance)
    ]


# --- the answer sets cover the questionnaire ---------------------------------------------------


def test_cases_cover_targets_governance_and_frameworks() -> None:
    answers = [c.answers for c in CASES.values()]
    assert {a.get("deployment_target", "online") for a in answers} == {
        "batch",
        "online",
        "edge",
        "embedded",
        "hybrid",
    }
    assert {a.get("governance_level", "staging") for a in answers} == {
        "experimental",
        "staging",
        "production",
    }
    assert len({a.get("framework", "sklearn") for a in answers}) >= 3


# --- Kubernetes ----------------------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES)
def test_kubernetes_kinds_pass_kubernetes_validate(projects: Any, case: str) -> None:
    design, root = projects[case]
    docs = manifests(root)
    assert bool(docs) == design.requirements.kubernetes
    for path, doc in docs:
        # Custom resources: the KServe CRDs below, the Spark operator's in test_rehearse_batch,
        # Seldon's below.
        if doc["apiVersion"].split("/")[0] in {
            "serving.kserve.io",
            "sparkoperator.k8s.io",
            "mlops.seldon.io",
        }:
            continue
        try:
            kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{path.name} {doc['kind']}: {exc.message} at {list(exc.path)}")


@pytest.mark.parametrize("case", CASES)
def test_seldon_resources_pass_the_seldon_schemas(projects: Any, case: str) -> None:
    from mlopsctl.checks.seldon import seldon_validator

    design, root = projects[case]
    found = [(p, d) for p, d in manifests(root) if d["apiVersion"].startswith("mlops.seldon.io/")]
    f = flags(design)
    challengers = int(f["canary"]) + int(f["shadow"])
    kinds = ["Server", "Model"] + ["Model"] * challengers + ["Experiment"] * bool(challengers)
    assert sorted(d["kind"] for _, d in found) == (sorted(kinds) if f["seldon"] else [])
    for path, doc in found:
        assert errors_of(seldon_validator(doc["kind"]), doc) == [], (path.name, doc["kind"])


@pytest.mark.parametrize("case", CASES)
def test_inference_services_pass_the_kserve_crd(projects: Any, case: str) -> None:
    design, root = projects[case]
    f = flags(design)
    services = [(p, d) for p, d in manifests(root) if d["kind"] == "InferenceService"]
    assert bool(services) == f["kserve"]
    for path, doc in services:
        assert errors_of(kserve_validator(), doc) == [], path.name
        predictor = doc["spec"]["predictor"]
        fmt = serving_table()["frameworks"][design.requirements.framework]["kserve_format"]
        assert predictor["model"]["modelFormat"]["name"] == fmt
        assert predictor["model"]["storageUri"].startswith("s3://")
        runtime = predictor["model"].get("runtime")
        runtimes = {
            d["metadata"]["name"]: d for _, d in manifests(root) if d["kind"] == "ServingRuntime"
        }
        if runtime is not None:  # the project's own ServingRuntime, generated beside it
            assert errors_of(servingruntime_validator(), runtimes[runtime]) == []
            formats = [f["name"] for f in runtimes[runtime]["spec"]["supportedModelFormats"]]
            assert fmt in formats
            protocol = predictor["model"].get("protocolVersion", "v1")
            assert protocol in runtimes[runtime]["spec"]["protocolVersions"]
        if path.name == "inferenceservice.yaml":
            assert predictor["minReplicas"] == design.sizing.min_replicas
            assert predictor["maxReplicas"] == design.sizing.max_replicas
            assert predictor["model"]["resources"]["limits"]["memory"] == design.sizing.memory_limit
            assert ("canaryTrafficPercent" in predictor) == f["canary"]
            if f["canary"]:
                first = next(s for s in design.sizing.rollout_steps if 0 < s < 100)
                assert predictor["canaryTrafficPercent"] == first


def test_kserve_check_rejects_unknown_fields() -> None:
    bad = {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {"name": "x"},
        "spec": {
            "predictor": {"model": {"modelFormat": {"name": "sklearn"}, "storgeUri": "s3://a"}}
        },
    }
    assert any("storgeUri" in e for e in errors_of(kserve_validator(), bad))


def _pod_specs(doc: dict[str, Any]) -> Iterator[dict[str, Any]]:
    if doc["kind"] == "Deployment":
        yield doc["spec"]["template"]["spec"]
    elif doc["kind"] == "CronJob":
        yield doc["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    elif doc["kind"] == "InferenceService":
        yield doc["spec"]["predictor"] | {"containers": [doc["spec"]["predictor"]["model"]]}


@pytest.mark.parametrize("case", CASES)
def test_secure_defaults(projects: Any, case: str) -> None:
    design, root = projects[case]
    kinds = set()
    for path, doc in manifests(root):
        kinds.add(doc["kind"])
        for pod in _pod_specs(doc):
            where = f"{path.name} {doc['kind']}"
            assert pod["securityContext"]["runAsNonRoot"] is True, where
            assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault", where
            assert pod["automountServiceAccountToken"] is False, where
            for c in pod["containers"] + pod.get("initContainers", []):
                sc = c["securityContext"]
                assert sc["allowPrivilegeEscalation"] is False, where
                assert sc["readOnlyRootFilesystem"] is True, where
                assert sc["capabilities"]["drop"] == ["ALL"], where
                assert {"cpu", "memory"} <= set(c["resources"]["requests"]), where
                assert {"cpu", "memory"} <= set(c["resources"]["limits"]), where
                if "image" in c:
                    assert re.search(r":[\w.][\w.-]*$", c["image"]), c["image"]
                    assert not c["image"].endswith(":latest"), c["image"]
                for env in c.get("env", []):
                    assert not re.search(r"(KEY|SECRET|PASSWORD|TOKEN)", env["name"]) or (
                        "valueFrom" in env
                    ), f"{where}: {env['name']} must come from a secret reference"
        if doc["kind"] == "Deployment":
            for c in doc["spec"]["template"]["spec"]["containers"]:
                assert "readinessProbe" in c and "livenessProbe" in c, path.name
    if design.requirements.kubernetes and design.requirements.governance_level == "production":
        assert {"PodDisruptionBudget", "NetworkPolicy"} <= kinds


# --- Prometheus ----------------------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES)
def test_prometheus_rules_pass_promtool_and_their_unit_tests(projects: Any, case: str) -> None:
    promtool = shutil.which("promtool")
    assert promtool, "promtool is required (Debian package prometheus)"
    _, root = projects[case]
    monitoring = root / "monitoring"
    check = subprocess.run(
        [promtool, "check", "rules", "alerts.yaml"], cwd=monitoring, capture_output=True, text=True
    )
    assert check.returncode == 0, check.stdout + check.stderr
    tests = subprocess.run(
        [promtool, "test", "rules", "alerts.test.yaml"],
        cwd=monitoring,
        capture_output=True,
        text=True,
    )
    assert tests.returncode == 0, tests.stdout + tests.stderr


@pytest.mark.parametrize("case", CASES)
def test_alerts_carry_priorities_and_runbooks(projects: Any, case: str) -> None:
    design, root = projects[case]
    rules = [
        r for g in docs_of(root / "monitoring" / "alerts.yaml")[0]["groups"] for r in g["rules"]
    ]
    by_name = {r["alert"]: r for r in rules}
    expected = {
        "ModelFeatureDrift": "P2",
        "ModelDriftRetrainingNeeded": "P2",
        "ModelRetrainingFailed": "P3",
    }
    if flags(design)["online"] and flags(design)["kubernetes"]:
        # Each request alert where the serving runtime exports what it reads.
        runtime = runtime_metrics(design.requirements.framework, flags(design)["kserve"])
        expected["ModelServingDown"] = "P0"
        if runtime["latency"]:
            expected["ModelLatencyP95High"] = "P1"
        if runtime["requests"] and runtime["errors"]:
            # ALR001: error-rate-critical is a P1 that pages (notify: page).
            expected |= {"ModelErrorRateHigh": "P1", "ModelErrorRateCritical": "P1"}
        if design.thresholds.saturation_rps_per_replica is not None and (
            runtime["requests"] or runtime["latency"]
        ):
            expected["ModelReplicaSaturation"] = "P2"  # ALR004, from the measured capacity
    assert {n: r["labels"]["severity"] for n, r in by_name.items()} == expected
    notify = {
        "ModelServingDown": "page",
        "ModelLatencyP95High": "alert",
        "ModelErrorRateHigh": "alert",
        "ModelErrorRateCritical": "page",
        "ModelFeatureDrift": "chat",
        "ModelDriftRetrainingNeeded": "chat",
        "ModelRetrainingFailed": "ticket",
        "ModelReplicaSaturation": "chat",
    }
    assert all(r["labels"]["notify"] == notify[r["alert"]] for r in rules)
    for rule in rules:
        assert (root / rule["annotations"]["runbook_url"]).is_file(), rule["alert"]
    routing = docs_of(root / "monitoring" / "alertmanager.yaml")[0]
    routes = {r["matchers"][0]: r["receiver"] for r in routing["route"]["routes"]}
    assert routes == {
        'notify="page"': "pager",
        'notify="alert"': "oncall-alerts",
        'notify="chat"': "chat",
        'notify="ticket"': "team-ticket",
    }
    text = (root / "monitoring" / "alertmanager.yaml").read_text()
    for receiver in routing["receivers"]:
        for configs in receiver.values():
            if isinstance(configs, list):
                # Every credential from a mounted file (a `*_file` key, or the HTTP client's).
                assert all(
                    any(k.endswith("_file") for k in c)
                    or "credentials_file" in c.get("http_config", {}).get("authorization", {})
                    for c in configs
                ), receiver
    assert "api_key:" not in text and "routing_key:" not in text


@pytest.mark.parametrize("case", CASES)
def test_thresholds_are_the_same_numbers_everywhere(projects: Any, case: str) -> None:
    design, root = projects[case]
    t = design.thresholds
    project = json.loads((root / "config" / "project.json").read_text())
    assert project["thresholds"] == t.model_dump()
    triggers = docs_of(root / "pipelines" / "retraining.yaml")[0]["triggers"]
    drift = {tr["metric"]: tr["threshold"] for tr in triggers if tr["type"] == "drift"}
    assert drift == {"psi": t.psi_retrain, "ks_pvalue": t.ks_pvalue}
    rules = {
        r["alert"]: r
        for g in docs_of(root / "monitoring" / "alerts.yaml")[0]["groups"]
        for r in g["rules"]
    }
    assert rules["ModelFeatureDrift"]["expr"].endswith(f"> {t.psi_investigate}")
    assert f"> {t.psi_retrain}" in rules["ModelDriftRetrainingNeeded"]["expr"]
    assert f"< {t.ks_pvalue}" in rules["ModelDriftRetrainingNeeded"]["expr"]
    if "ModelLatencyP95High" in rules:
        assert rules["ModelLatencyP95High"]["expr"].endswith(f"> {t.latency_p95_alert_ms}")
        assert rules["ModelLatencyP95High"]["for"] == f"{t.latency_alert_for_minutes}m"
    if "ModelErrorRateHigh" in rules:  # where the runtime counts failed requests
        assert rules["ModelErrorRateHigh"]["expr"].endswith(f"> {t.error_rate_alert}")
        assert rules["ModelErrorRateCritical"]["expr"].endswith(f"> {t.error_rate_page}")
    if "ModelReplicaSaturation" in rules:  # where a capacity was measured
        assert t.saturation_rps_per_replica is not None
        expr = rules["ModelReplicaSaturation"]["expr"]
        assert expr.endswith(f"> {t.saturation_rps_per_replica:.15g}")
    else:
        assert (
            t.saturation_rps_per_replica is None
            or not design.components.online
            or not (design.components.kubernetes)
        )


# --- Grafana -------------------------------------------------------------------------------------


def _metric_names(expr: str) -> set[str]:
    words = set(re.findall(r"(?<![\w:])([a-z_:][a-z0-9_:]*)\s*(?:\{|\[)", expr))
    return words - {"rate", "sum", "by", "max", "min", "histogram_quantile"}


@pytest.mark.parametrize("case", CASES)
def test_dashboard_passes_grafana_schema_and_queries_exported_metrics(
    projects: Any, case: str
) -> None:
    design, root = projects[case]
    dashboard = json.loads((root / "monitoring" / "grafana-dashboard.json").read_text())
    assert errors_of(jsonschema.Draft7Validator(grafana_schema("dashboard")), dashboard) == []
    options = grafana_schema("timeseries")["definitions"]["Options"] | {
        "definitions": grafana_schema("timeseries")["definitions"]
    }
    query = grafana_schema("prometheus")
    # What the serving runtime exports (data/serving.yaml), Prometheus' `up`, the pushed metrics.
    runtime = runtime_metrics(design.requirements.framework, flags(design)["kserve"])
    exported = {"up"}
    if runtime["latency"]:
        exported |= {runtime["latency"] + "_bucket", runtime["latency"] + "_count"}
    if runtime["requests"]:
        exported.add(runtime["requests"])
    pushed = json.loads((root / "config" / "project.json").read_text())["pushed_metrics"]
    exported = exported | set(pushed.values())
    titles = set()
    for panel in dashboard["panels"]:
        titles.add(panel["title"])
        assert errors_of(jsonschema.Draft7Validator(options), panel["options"]) == []
        for target in panel["targets"]:
            assert errors_of(jsonschema.Draft7Validator(query), target) == []
            assert _metric_names(target["expr"]) <= exported, target["expr"]
    assert "Feature drift (PSI)" in titles
    if flags(design)["online"] and flags(design)["kubernetes"]:
        assert ("Prediction latency (ms)" in titles) == bool(runtime["latency"])
        assert ("Error rate" in titles) == bool(runtime["requests"] and runtime["errors"])
        if runtime["latency"]:
            latency = next(
                p for p in dashboard["panels"] if p["title"] == "Prediction latency (ms)"
            )
            assert [t["legendFormat"] for t in latency["targets"]] == ["p50", "p95", "p99"]
    else:
        # Without Kubernetes the endpoint (`mlflow models serve`) exports no request metrics.
        assert not {"Prediction latency (ms)", "Throughput (requests/s)", "Error rate"} & titles


# --- contracts -----------------------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES)
def test_output_contracts_match_the_published_schemas(projects: Any, case: str) -> None:
    design, root = projects[case]
    f = flags(design)
    contracts = {
        "experiment-tracking": root / "config" / "experiment-tracking.json",
        "model-registry": root / "config" / "model-registry.json",
        "monitoring-dashboard": root / "config" / "monitoring.json",
        "retraining-pipeline": root / "pipelines" / "retraining.yaml",
    }
    for name, path in contracts.items():
        doc = docs_of(path)[0] if path.suffix == ".yaml" else json.loads(path.read_text())
        assert errors_of(contract_validator(name), doc) == [], path.name
        shipped = (root / "schemas" / f"{name}.schema.json").read_bytes()
        assert shipped == (PACKAGE_SCHEMAS / f"{name}.schema.json").read_bytes()
    registry = json.loads(contracts["model-registry"].read_text())
    assert registry["model_name"] == design.requirements.project_name
    limit = design.sizing.cpu_limit
    assert registry["requirements"]["cpu_cores"] == (
        int(limit[:-1]) / 1000 if limit.endswith("m") else float(limit)
    )
    assert registry["requirements"]["gpu_required"] == (design.sizing.gpu_per_replica > 0)
    deployment = [
        d
        for _, d in manifests(root)
        if d["kind"]
        in {"InferenceService", "Deployment", "Model", "CronJob", "ScheduledSparkApplication"}
        and d["metadata"]["name"]
        in {design.requirements.project_name, design.requirements.project_name + "-batch"}
    ]
    assert bool(deployment) == (f["kserve"] or f["k8s_deployment"] or f["seldon"] or f["batch_job"])
    for doc in deployment:
        assert errors_of(contract_validator("deployment-manifest"), doc) == []


def test_contract_schemas_reject_literal_credentials() -> None:
    tracking = {
        "tracking_uri": "http://mlflow:5000",
        "artifact_location": "s3://a/e",
        "backend_store": "postgresql://mlflow:hunter2@db:5432/mlflow",
        "default_artifact_root": "s3://a",
        "auth_enabled": True,
        "experiment_name": "x",
        "local": {"tracking_uri": "sqlite:///mlruns.db", "artifact_location": "./a"},
        "credentials_env": [],
    }
    assert errors_of(contract_validator("experiment-tracking"), tracking)
    tracking["backend_store"] = "postgresql://mlflow@db:5432/mlflow"
    assert errors_of(contract_validator("experiment-tracking"), tracking) == []


# --- Kubeflow ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "case", [n for n in CASES if CASES[n].stack.get("orchestration") == "kubeflow"]
)
def test_kubeflow_pipeline_compiles(projects: Any, case: str, tmp_path: Path) -> None:
    _, root = projects[case]
    source = root / "pipelines" / "retraining_pipeline.py"
    work = tmp_path / "retraining_pipeline.py"
    shutil.copy(source, work)
    run = subprocess.run([sys.executable, str(work)], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    # The pipeline spec, then the platform spec (kfp.kubernetes config).
    ir = next(yaml.safe_load_all(work.with_suffix(".yaml").read_text()))
    tasks = ir["root"]["dag"]["tasks"]
    assert {"validate-data", "train", "evaluate"} <= set(tasks)
    conditions = [t for t in tasks.values() if "triggerPolicy" in t]
    if not (root / "src" / "publish.py").is_file():
        # Nothing serves the project's runtime from a storageUri: evaluate ends the run.
        assert conditions == [] and set(tasks) == {"validate-data", "train", "evaluate"}
        return
    (condition,) = conditions
    assert "evaluate" in condition["triggerPolicy"]["condition"]
    assert condition["dependentTasks"] == ["evaluate"]


# --- CI --------------------------------------------------------------------------------------


def _check_jsonschema(schema: str, files: list[Path]) -> None:
    assert files, f"no files for {schema}"
    run = subprocess.run(
        [str(BIN / "check-jsonschema"), "--builtin-schema", schema, *map(str, files)],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stdout + run.stderr


def test_ci_files_pass_their_platform_schemas(projects: Any) -> None:
    github, gitlab, compose = [], [], []
    for design, root in projects.values():
        platform = design.requirements.ci_platform
        assert (root / ".github" / "workflows" / "ci.yaml").exists() == (
            platform == "github-actions"
        )
        assert (root / ".gitlab-ci.yml").exists() == (platform == "gitlab-ci")
        assert (root / "Jenkinsfile").exists() == (platform == "jenkins")
        github += sorted((root / ".github" / "workflows").glob("*.yaml"))
        gitlab += [p for p in [root / ".gitlab-ci.yml"] if p.exists()]
        compose.append(root / "deploy" / "mlflow" / "docker-compose.yaml")
    _check_jsonschema("vendor.github-workflows", github)
    _check_jsonschema("vendor.gitlab-ci", gitlab)
    _check_jsonschema("vendor.compose-spec", compose)


def test_production_deploys_only_after_manual_approval(projects: Any) -> None:
    _, root = projects["lifecycle-production-xgboost-gdpr"]
    ci = docs_of(root / ".github" / "workflows" / "ci.yaml")[0]
    assert ci["jobs"]["deploy-production"]["environment"] == "production"
    steps = " ".join(s.get("run", "") for s in ci["jobs"]["deploy-production"]["steps"])
    assert "src/rollout.py" in steps and "src/audit.py" in steps
    gitlab = docs_of(projects["production-lightgbm-gitlab"][1] / ".gitlab-ci.yml")[0]
    assert [r["when"] for r in gitlab["deploy-production"]["rules"]] == ["manual"]
    jenkins = (projects["experimental-batch-jenkins"][1] / "Jenkinsfile").read_text()
    assert jenkins.count("{") == jenkins.count("}") and "input {" in jenkins


# --- secrets ---------------------------------------------------------------------------------


# Cases whose files together are every file any case generates (checked below); scanning them
# keeps detect-secrets fast.
SECRET_SCAN = [
    "defaults",  # scikit-learn on KServe: the serving image, runtime and publish step
    "lifecycle-production-xgboost-gdpr",
    "production-lightgbm-gitlab",
    "experimental-batch-jenkins",
    "variant-deployment-serving-production",
    "seldon-production",  # Seldon Core v2 resources and the rclone storage secret they name
    "variant-spark-kubeflow",
    "online-without-kubernetes-huggingface",
    "embedded-sklearn-lifecycle",  # the ONNX export, its runner and config/edge.json
]


def test_detect_secrets_finds_nothing(projects: Any) -> None:
    def rel_files(root: Path) -> set[str]:
        return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}

    everything = set().union(*(rel_files(root) for _, root in projects.values()))
    scanned = set().union(*(rel_files(projects[n][1]) for n in SECRET_SCAN))
    assert scanned == everything
    roots = [str(projects[n][1]) for n in SECRET_SCAN]
    run = subprocess.run(
        [str(BIN / "detect-secrets"), "scan", "--all-files", *roots],
        capture_output=True,
        text=True,
        cwd=Path(roots[0]).parent,
    )
    assert run.returncode == 0, run.stderr
    results = json.loads(run.stdout)["results"]
    # The only tolerated hits are the SHA-256 digests of generated files that the project's state
    # records for regeneration; anything else is a finding.
    digest_line = re.compile(r'^\s*"[^"]+": "[0-9a-f]{64}",?$')
    for filename, hits in results.items():
        assert filename.endswith(".mlopsctl/state.json"), (filename, hits)
        lines = (Path(roots[0]).parent / filename).read_text().splitlines()
        for hit in hits:
            assert digest_line.match(lines[hit["line_number"] - 1]), (filename, hit)
    for _, root in projects.values():
        assert not (root / ".env").exists()
        assert (root / ".env.example").exists()


def test_detect_secrets_would_notice_a_literal_credential(tmp_path: Path) -> None:
    (tmp_path / "leak.yaml").write_text(
        'aws_secret_access_key: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY"\n'
    )
    run = subprocess.run(
        [str(BIN / "detect-secrets"), "scan", "--all-files", str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert json.loads(run.stdout)["results"] != {}


# --- tiers, determinism, the project's own Makefile -------------------------------------------

T3_ONLY = {
    "docs/lineage.md",
    "governance/approvals.yaml",
    "governance/README.md",
    "CHANGELOG.md",
    "docs/cost.md",
}
# Production governance requires these at any tier (and tier 3 always has them).
GOVERNED = {
    "docs/model-card.md": "model-card",
    "docs/runbooks/rollback.md": "rollback-procedure",
    "src/audit.py": "audit-log",
}


@pytest.mark.parametrize("case", CASES)
def test_tier_decides_the_governance_files(projects: Any, case: str) -> None:
    design, root = projects[case]
    files = {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}
    state = json.loads((root / ".mlopsctl" / "state.json").read_text())
    assert state["tier"] == design.tier
    if CASES[case].tier:
        assert design.tier >= CASES[case].tier
    if design.tier == "T3":
        assert files >= T3_ONLY
        online = flags(design)["online"] and design.requirements.kubernetes
        assert ("src/rollout.py" in files) == online
        project = json.loads((root / "config" / "project.json").read_text())
        assert project["rollout_steps"] == design.sizing.rollout_steps
        assert ("src/shadow_compare.py" in files) == online
        assert ("k8s/shadow-inferenceservice.yaml" in files) == (online and flags(design)["kserve"])
    else:
        assert not (T3_ONLY & files)
    for rel, requirement in GOVERNED.items():
        assert (rel in files) == (design.tier == "T3" or requirement in design.governance), rel
    makefile = (root / "Makefile").read_text()
    for target in ("install", "train", "drift", "validate", "test"):
        assert re.search(rf"^{target}:", makefile, re.M), target
    # nothing serves an edge model here: it runs on the device
    assert bool(re.search(r"^serve:", makefile, re.M)) is not flags(design)["edge"]
    readme = (root / "README.md").read_text()
    assert "make install train" in readme and "make test" in readme


def test_generation_is_byte_identical(tmp_path: Path) -> None:
    design = CASES["lifecycle-production-xgboost-gdpr"].design()
    a, b = tmp_path / "a", tmp_path / "b"
    generate(design, a)
    generate(design, b)
    files_a = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert files_a == sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    for rel in files_a:
        assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel


@pytest.mark.parametrize("case", [n for n in CASES if not CASES[n].stack and not CASES[n].sizing])
def test_mlopsctl_validate_finds_nothing(projects: Any, case: str) -> None:
    from typer.testing import CliRunner

    from mlopsctl.cli.app import app

    _, root = projects[case]
    result = CliRunner().invoke(app, ["validate", str(root)])
    assert result.exit_code == 0, result.output
