"""The serving handoff: the champion published, downloaded and served as KServe runs it.

``src/publish.py`` runs in the project image's pod (as the CI deploy job and the pipeline's
deploy step run it) against the rehearsed tracking server and object store, and prints the merge
patch it would send to the API server; the patch is applied to ``k8s/inferenceservice.yaml`` and
the result checked against the InferenceService schema (no API server runs here). The storageUri
the patched manifest names is then downloaded into a ``/mnt/models`` volume by KServe's own
storage initializer (PyPI ``kserve-storage``, the package behind its storage-initializer image),
and the serving runtime started exactly as the ``ServingRuntime`` container and the
InferenceService's model spec declare it (command, arguments, environment, ports), in the image
``deploy/serving/Dockerfile`` builds, in a restricted pod: only the listen address and ports are
made local. Then it is called the way clients and Prometheus call it (Open Inference Protocol V2):
model metadata, a prediction, requests the model's signature refuses, readiness and metrics.

A second release (training again, the new version promoted to the alias) is published the same
way: a new storageUri, a new revision serving the new version. The runtime of the last release
keeps running; ``stage.shared["serving"]`` describes it (:class:`ServingEndpoint`).
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlopsctl.names import resource_names
from mlopsctl.rehearse import _proc, images, manifests, objectstore, pod
from mlopsctl.rehearse._proc import http_call, wait_for
from mlopsctl.rehearse.entrypoints import ProjectImage, registry_state
from mlopsctl.rehearse.errors import ProjectError
from mlopsctl.rehearse.stage import Stage

MANIFEST = "k8s/inferenceservice.yaml"
RUNTIME_MANIFEST = "k8s/serving-runtime.yaml"
DOCKERFILE = "deploy/serving/Dockerfile"
PUBLISH = "src/publish.py"
# KServe's storage initializer of the release whose CRDs `validate` checks (KServe v0.20.0,
# tests/fixtures/upstream/kserve): its own tool, not one of the project's pins.
STORAGE_INITIALIZER_REQUIREMENT = "kserve-storage==0.20.0"
# Where KServe's storage initializer puts the model and the runtime container reads it.
MODEL_DIR = "/mnt/models"
# The environment KServe's S3 credential builder gives the storage initializer (from the serving
# service account's Secret and its annotations).
S3_CREDENTIALS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
# MLServer's listen settings (environment): made local, like the tracking server's.
PORT_VARIABLES = ("MLSERVER_HTTP_PORT", "MLSERVER_GRPC_PORT", "MLSERVER_METRICS_PORT")
HOST_VARIABLE = "MLSERVER_HOST"
STARTUP_SECONDS = 240
TIMEOUT = 600
# A column the model's signature does not name.
FOREIGN_COLUMN = "not_a_feature"


@dataclass(frozen=True)
class ServingEndpoint:
    """The running serving runtime, for the components after this one (Prometheus scraping,
    the load test): its base URL and Prometheus endpoint on this machine, the model it serves
    and a request it answers."""

    url: str  # base URL of the runtime's HTTP endpoint
    metrics_url: str  # its Prometheus /metrics
    model_name: str
    model_version: str
    protocol: str  # "v1" | "v2"
    infer_path: str  # path under url for a prediction
    request: dict[str, Any]  # a valid request body


def applies(stage: Stage) -> bool:
    return (stage.project / MANIFEST).is_file() and (stage.project / RUNTIME_MANIFEST).is_file()


def merge_patch(target: Any, patch: Any) -> Any:
    """``target`` with the JSON merge patch ``patch`` applied (RFC 7386), as the API server
    applies ``kubectl patch --type merge``."""
    if not isinstance(patch, dict):
        return patch
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge_patch(out.get(key), value)
    return out


def _document(path: Path, kind: str) -> dict[str, Any]:
    found = [d for d in manifests.documents(path) if d.get("kind") == kind]
    if len(found) != 1:
        raise ProjectError(f"{path}: expected one {kind}, found {len(found)}")
    return found[0]


@dataclass
class Runtime:
    """What the ServingRuntime container and the InferenceService's model spec declare, merged
    as KServe merges them (the model spec's fields over the runtime container's)."""

    name: str
    image: str
    command: list[str]
    env: dict[str, str]
    uid: int
    gid: int
    read_only_root: bool
    mounts: list[str]
    metrics_port: str | None  # the ServingRuntime's prometheus.kserve.io/port annotation
    memory_limit: str | None = (
        None  # resources.limits.memory (the model spec's, else the runtime's)
    )


def runtime_spec(isvc: dict[str, Any], runtime: dict[str, Any], source: Path) -> Runtime:
    predictor = (isvc.get("spec") or {}).get("predictor") or {}
    model = predictor.get("model") or {}
    spec = runtime.get("spec") or {}
    containers = [c for c in spec.get("containers") or [] if c.get("name") == "kserve-container"]
    if not containers:
        raise ProjectError(f"{source}: the ServingRuntime has no kserve-container")
    base = containers[0]
    env = {str(e["name"]): str(e.get("value", "")) for e in base.get("env") or []}
    env.update({str(e["name"]): str(e.get("value", "")) for e in model.get("env") or []})
    security = {**(base.get("securityContext") or {}), **(model.get("securityContext") or {})}
    pod_security = predictor.get("securityContext") or {}
    uid = security.get("runAsUser", pod_security.get("runAsUser"))
    gid = security.get("runAsGroup", pod_security.get("runAsGroup", uid))
    if uid is None:
        raise ProjectError(f"{source}: no runAsUser for the model container")
    mounts = [m["mountPath"] for m in (base.get("volumeMounts") or [])]
    mounts += [m["mountPath"] for m in (model.get("volumeMounts") or [])]
    command = [str(a) for a in model.get("command") or base.get("command") or []]
    command += [str(a) for a in model.get("args") or base.get("args") or []]
    annotations = spec.get("annotations") or {}
    return Runtime(
        name=str((runtime.get("metadata") or {}).get("name", "")),
        image=str(model.get("image") or base.get("image") or ""),
        command=command,
        env=env,
        uid=int(uid),
        gid=int(gid if gid is not None else uid),
        read_only_root=bool(security.get("readOnlyRootFilesystem")),
        mounts=[m for m in mounts if m != MODEL_DIR],
        metrics_port=annotations.get("prometheus.kserve.io/port"),
        memory_limit=(
            ((model.get("resources") or {}).get("limits") or {}).get("memory")
            or ((base.get("resources") or {}).get("limits") or {}).get("memory")
        ),
    )


def v2_request(signature_inputs: list[dict[str, Any]], rows: int = 2) -> dict[str, Any]:
    """A V2 inference request with one input per column of the model's signature."""
    types = {
        "double": ("FP64", 0.5),
        "float": ("FP32", 0.5),
        "long": ("INT64", 1),
        "integer": ("INT32", 1),
        "boolean": ("BOOL", True),
        "string": ("BYTES", "a"),
    }
    inputs = []
    for column in signature_inputs:
        datatype, value = types.get(str(column.get("type")), ("FP64", 0.5))
        inputs.append(
            {
                "name": str(column["name"]),
                "shape": [rows],
                "datatype": datatype,
                "data": [value] * rows,
            }
        )
    return {"inputs": inputs}


def _mlmodel(model_dir: Path) -> dict[str, Any]:
    import yaml

    mlmodel = yaml.safe_load((model_dir / "MLmodel").read_text(encoding="utf-8"))
    return mlmodel if isinstance(mlmodel, dict) else {}


def model_flavors(model_dir: Path) -> list[str]:
    """The MLflow flavors the model directory's MLmodel declares."""
    flavors = _mlmodel(model_dir).get("flavors")
    return sorted(str(f) for f in flavors) if isinstance(flavors, dict) else []


def signature_inputs(model_dir: Path) -> list[dict[str, Any]]:
    mlmodel = _mlmodel(model_dir)
    signature = mlmodel.get("signature") or {}
    inputs = json.loads(signature.get("inputs") or "[]")
    return [i for i in inputs if isinstance(i, dict) and i.get("name")]


@dataclass
class Release:
    """One published version and the runtime serving it."""

    version: str
    storage_uri: str
    service: _proc.Service | None = None
    port: int = 0
    metrics_port: int = 0
    model_dir: Path | None = None


class ServingRehearsal:
    def __init__(self, stage: Stage) -> None:
        self.stage = stage
        self.image: ProjectImage = stage.shared["project_image"]
        self.store: objectstore.ObjectStore = stage.shared["object_store"]
        config = json.loads(stage.file("config/project.json").read_text(encoding="utf-8"))
        registry = json.loads(stage.file("config/model-registry.json").read_text(encoding="utf-8"))
        self.model = str(registry.get("model_name", stage.project_name))
        self.alias = str(registry.get("alias", "champion"))
        self.root = str(config.get("serving_storage_root", ""))
        self.isvc_path = stage.file(MANIFEST)
        self.isvc = _document(self.isvc_path, "InferenceService")
        self.runtime_doc = _document(stage.file(RUNTIME_MANIFEST), "ServingRuntime")
        self.runtime = runtime_spec(self.isvc, self.runtime_doc, self.isvc_path)
        self.runs = 0

    def _pod(
        self,
        name: str,
        uid: int,
        gid: int,
        workdir: Path,
        image_workdir: str,
        env: dict[str, str],
        mounts: list[str],
    ) -> pod.Pod:
        self.runs += 1
        return pod.Pod.create(
            f"{name}-{self.runs}",
            uid=uid,
            gid=gid,
            workspace=self.stage.workspace,
            workdir=workdir,
            image_workdir=image_workdir,
            env=env,
            mounts=mounts,
            read_only_root=True,
        )

    def storage_env(self) -> dict[str, str]:
        return {
            "AWS_ACCESS_KEY_ID": objectstore.ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": objectstore.SECRET_KEY,
        }

    # --- publish -----------------------------------------------------------------------------

    def publish(self, label: str) -> Release | None:
        state = registry_state(self.stage, self.model, (self.alias,))
        expected = state.get(self.alias) or {}
        argv = ["python", PUBLISH, "--alias", self.alias, "--print-patch"]
        env = {
            **self.image.env,
            **self.storage_env(),
            "MLFLOW_S3_ENDPOINT_URL": self.store.endpoint,
        }
        job = self._pod(
            "publish",
            self.image.uid,
            self.image.gid,
            self.image.workdir,
            self.image.image.workdir,
            env,
            ["/tmp"],
        )
        result = job.run(argv, timeout=TIMEOUT)
        command = shlex.join(argv)
        ok = self.stage.check(
            f"{label}: `{command}` succeeds",
            result.returncode == 0,
            f"in the project image's pod (uid {self.image.uid}, read-only root, /tmp writable), "
            f"MLFLOW_TRACKING_URI={self.image.env.get('MLFLOW_TRACKING_URI')}, "
            f"MLFLOW_S3_ENDPOINT_URL={self.store.endpoint}",
            "" if ok_exit(result) else _output(result),
        )
        if not ok:
            return None
        try:
            patch = json.loads(result.stdout.strip().splitlines()[-1])
        except (ValueError, IndexError):
            self.stage.check(f"{label}: prints a merge patch", False, "stdout", _output(result))
            return None
        from mlopsctl.checks.kserve import kserve_validator

        patched = merge_patch(self.isvc, patch)
        errors = [
            f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
            for e in kserve_validator().iter_errors(patched)
        ]
        uri = str(
            ((patched.get("spec") or {}).get("predictor") or {})
            .get("model", {})
            .get("storageUri", "")
        )
        self.stage.check(
            f"{label}: the patched InferenceService matches the KServe schema",
            not errors and patch != {},
            f"{MANIFEST} with the merge patch {json.dumps(patch)} applied, against the "
            "InferenceService v1beta1 schema `validate` checks (what the API server would store)",
            "; ".join(errors[:5]) or ("empty patch" if patch == {} else ""),
        )
        version = str(expected.get("version", ""))
        want = f"{self.root.rstrip('/')}/{self.model}/v{version}"
        self.stage.check(
            f"{label}: storageUri names the {self.alias}'s version",
            bool(version) and uri == want,
            f"the patched storageUri against <serving_storage_root>/<model>/v<version of "
            f"@{self.alias}> = {want}",
            f"storageUri {uri}",
        )
        keys = self.store.keys(uri)
        names = {k.rsplit("/", 1)[-1] for k in keys}
        self.stage.check(
            f"{label}: the MLflow model is at the storageUri",
            {"MLmodel", "model-settings.json"} <= names,
            f"ListObjectsV2 under {uri}: MLmodel and model-settings.json",
            ", ".join(sorted(names)) or "no objects",
        )
        return Release(version, uri)

    # --- download and serve ------------------------------------------------------------------

    def download(self, release: Release, runtime: Runtime, label: str) -> bool:
        python = images.interpreter(self._python(), runtime.uid, runtime.gid)
        venv = images.install(
            [STORAGE_INITIALIZER_REQUIREMENT],
            python,
            self.stage.cache,
            "KServe's storage initializer",
        )
        env = {
            **self.storage_env(),
            "AWS_ENDPOINT_URL": self.store.endpoint,
            "S3_ENDPOINT": self.store.endpoint.split("://", 1)[1],
            "S3_USE_HTTPS": "0",
            "S3_VERIFY_SSL": "0",
            "AWS_DEFAULT_REGION": "us-east-1",
            "HTTP_PROXY": self.stage.network.proxy_url,
            "http_proxy": self.stage.network.proxy_url,
            "PATH": f"{venv / 'bin'}:{pod.SYSTEM_PATH}",
        }
        code = (
            "import sys; from kserve_storage import Storage; "
            "Storage.download_files(sys.argv[1::2], sys.argv[2::2])"
        )
        root = self.stage.workspace / f"storage-initializer-{self.runs + 1}"
        root.mkdir()
        job = self._pod(
            "storage-initializer", runtime.uid, runtime.gid, root, "", env, [MODEL_DIR, "/tmp"]
        )
        result = job.run(["python", "-c", code, release.storage_uri, MODEL_DIR], timeout=TIMEOUT)
        model_dir = job.volume(MODEL_DIR)
        present = sorted(p.name for p in model_dir.iterdir())
        ok = self.stage.check(
            f"{label}: KServe's storage initializer downloads the storageUri",
            result.returncode == 0 and {"MLmodel", "model-settings.json"} <= set(present),
            f"{STORAGE_INITIALIZER_REQUIREMENT} Storage.download_files({release.storage_uri} -> "
            f"{MODEL_DIR}) as uid {runtime.uid}, read-only root, with the S3 environment KServe "
            "gives it",
            f"exit {result.returncode}; {MODEL_DIR}: {', '.join(present) or 'empty'}\n"
            + _output(result),
        )
        if ok:
            # The runtime container mounts the model volume read-only.
            for path in [model_dir, *model_dir.rglob("*")]:
                path.chmod(0o755 if path.is_dir() else 0o644)
                os.chown(path, 0, 0)
            release.model_dir = model_dir
        return ok

    def _python(self) -> str:
        from mlopsctl.rehearse.tracking import python_version

        return python_version(self.stage)

    def serve(self, release: Release, runtime: Runtime, label: str) -> bool:
        assert release.model_dir is not None
        stage = self.stage
        dockerfile = stage.file(DOCKERFILE)
        image = images.read_dockerfile(dockerfile)
        names = resource_names(stage.project_name)
        stage.check(
            f"{label}: the ServingRuntime runs the serving image",
            runtime.image.rpartition(":")[0] == names["serving_image"],
            f"the ServingRuntime's image against {names['serving_image']}, which "
            f"{DOCKERFILE} builds",
            f"image {runtime.image}",
        )
        python = images.interpreter(self._python(), runtime.uid, runtime.gid)
        venv = images.environment(image, stage.project, python, stage.cache)
        workdir = images.lay_out(
            image, stage.project, stage.workspace / f"serving-image-{self.runs}"
        )
        env = dict(image.env)
        env.update(runtime.env)
        substituted = []
        ports: dict[str, int] = {}
        for variable in PORT_VARIABLES:
            ports[variable] = _proc.free_port()
            substituted.append(f"{variable} {env.get(variable, 'unset')} -> {ports[variable]}")
            env[variable] = str(ports[variable])
        substituted.append(f"{HOST_VARIABLE} {env.get(HOST_VARIABLE, '0.0.0.0')} -> 127.0.0.1")
        env[HOST_VARIABLE] = _proc.LOOPBACK
        env["PATH"] = f"{venv / 'bin'}:{pod.SYSTEM_PATH}"
        argv = manifests.Container(
            source=dockerfile,
            workload="",
            name="",
            image="",
            command=runtime.command,
            args=[],
            env={},
            secret_env={},
            uid=None,
            gid=None,
            read_only_root=True,
            mounts=[],
            ports={},
        ).expanded(env)
        server = self._pod(
            "serving", runtime.uid, runtime.gid, workdir, image.workdir, env, runtime.mounts
        )
        server.read_only_root = runtime.read_only_root
        server.mounts[MODEL_DIR] = release.model_dir
        port, metrics_port = ports["MLSERVER_HTTP_PORT"], ports["MLSERVER_METRICS_PORT"]
        service = server.start(argv, log=stage.workspace / f"serving-{self.runs}.log", port=port)
        stage.services.append(service)
        release.service, release.port, release.metrics_port = service, port, metrics_port
        model_ready = f"/v2/models/{self.model}/ready"
        started = wait_for(
            service, lambda: http_call(port, model_ready).status == 200, STARTUP_SECONDS
        )
        stage.check(
            f"{label}: the runtime starts as the ServingRuntime and InferenceService declare it",
            started,
            f"`{shlex.join(argv)}` ({RUNTIME_MANIFEST} {runtime.name}) in {DOCKERFILE}'s image "
            f"as uid {runtime.uid} without a passwd entry, read-only root: "
            f"{runtime.read_only_root}, writable: {', '.join(runtime.mounts) or 'nothing'}, "
            f"{MODEL_DIR} from the storage initializer; substituted: {', '.join(substituted)}",
            ""
            if started
            else f"{model_ready} not 200 within {STARTUP_SECONDS} s:\n" + service.log_tail(),
        )
        return started

    # --- handoffs ----------------------------------------------------------------------------

    def check_served(self, release: Release, label: str) -> dict[str, Any] | None:
        stage, port = self.stage, release.port
        assert release.model_dir is not None
        ready = http_call(port, "/v2/health/ready")
        stage.check(
            f"{label}: readiness endpoint",
            ready.status == 200,
            "GET /v2/health/ready (the V2 readiness endpoint KServe probes)",
            f"answered {ready.status} {ready.body[:200]}",
        )
        metadata = http_call(port, f"/v2/models/{self.model}")
        versions: list[str] = []
        if metadata.status == 200:
            versions = [str(v) for v in json.loads(metadata.body).get("versions") or []]
        stage.check(
            f"{label}: V2 model metadata names the version just published",
            versions == [release.version],
            f"GET /v2/models/{self.model}: versions against [{release.version}]",
            f"{metadata.status} {metadata.body[:300]}",
        )
        from mlopsctl.kinds import kind, table
        from mlopsctl.monitoring import DEPLOYMENT_RUNTIME, serving_table

        framework = str(stage.answers.get("framework", "sklearn"))
        flavor = (serving_table()["frameworks"].get(framework) or {}).get("mlflow_flavor")
        if framework in table().tabular_frameworks:  # the flavor the kind's model is logged in
            model_type = str(stage.answers.get("model_type", "classification"))
            flavor = kind(model_type, framework)["estimator"]["flavor"]
        flavors = model_flavors(release.model_dir)
        stage.check(
            f"{label}: the published model is the project's {framework} model",
            flavor in flavors,
            f"the downloaded MLmodel declares the {flavor} flavor (data/serving.yaml's "
            f"mlflow_flavor for {framework}), which MLServer's MLflow runtime loads through pyfunc",
            f"flavors {flavors}",
        )
        columns = signature_inputs(release.model_dir)
        request = v2_request(columns)
        infer = f"/v2/models/{self.model}/infer"
        answer = _post(port, infer, request)
        outputs: list[dict[str, Any]] = []
        served_version = ""
        if answer.status == 200:
            body = json.loads(answer.body)
            outputs = body.get("outputs") or []
            served_version = str(body.get("model_version", ""))
        predicted = bool(outputs) and all(len(o.get("data") or []) == 2 for o in outputs)
        stage.check(
            f"{label}: a valid V2 request gets predictions from the published version",
            predicted and served_version == release.version,
            f"POST {infer} with the signature's {len(columns)} columns, 2 rows: one prediction "
            f"per row, model_version {release.version}",
            f"{answer.status} {answer.body[:300]}",
        )
        if not columns:
            stage.check(f"{label}: the model has a signature", False, "MLmodel", "no inputs")
            return None
        wrong_column = v2_request(columns)
        wrong_column["inputs"][0]["name"] = FOREIGN_COLUMN
        wrong_type = v2_request(columns)
        wrong_type["inputs"][0].update({"datatype": "BYTES", "data": ["x", "y"]})
        for what, body in (("an unknown column", wrong_column), ("a wrong type", wrong_type)):
            refused = _post(port, infer, body)
            stage.check(
                f"{label}: a request with {what} is refused with 4xx",
                400 <= refused.status < 500,
                f"POST {infer} with {what} for {columns[0]['name']}: the signature enforced, "
                "answered as the client's error (a 5xx counts against the error-rate alerts)",
                f"{refused.status} {refused.body[:300]}",
            )
        self.check_memory(release, label)
        requests = serving_table()["runtime_metrics"][DEPLOYMENT_RUNTIME]["requests"]
        metrics = http_call(release.metrics_port, "/metrics")
        stage.check(
            f"{label}: metrics endpoint",
            metrics.status == 200 and requests in metrics.body,
            f"GET /metrics on MLSERVER_METRICS_PORT: {requests} exported",
            f"{metrics.status} {metrics.body[:200]}",
        )
        return request

    def check_memory(self, release: Release, label: str) -> None:
        """The runtime's processes, after loading the model and answering, against the memory
        limit the kubelet OOM-kills the container at."""
        from mlopsctl.rehearse.tracking import _group_rss

        assert release.service is not None
        limit = self.runtime.memory_limit
        processes = _group_rss(release.service.process.pid)
        rss = sum(mib for mib, _ in processes)
        limit_mib = manifests.memory_mib(limit) if limit else 0.0
        self.stage.check(
            f"{label}: the runtime's processes fit the container's memory limit",
            0 < rss <= limit_mib,
            f"resident memory (VmRSS) of the runtime's {len(processes)} processes after the "
            f"requests above: {rss:.0f} MiB against resources.limits.memory {limit}",
            f"{rss:.0f} MiB of {limit_mib:.0f} MiB\n"
            + "\n".join(f"{mib:.0f} MiB  {cmd[:160]}" for mib, cmd in processes),
        )

    def retrain_and_promote(self) -> bool:
        """Train again (a new version) and move the alias to it, as a won evaluation does."""
        run = self.image.run(self.stage, "main")
        state = registry_state(self.stage, self.model, ("challenger",))
        new = (state.get("challenger") or {}).get("version")
        tracking = self.stage.shared["tracking"]
        answer = http_call(
            tracking["port"],
            "/api/2.0/mlflow/registered-models/alias",
            method="POST",
            host=tracking["host"],
            headers={"Content-Type": "application/json"},
            body=json.dumps({"name": self.model, "alias": self.alias, "version": new}).encode(),
        )
        return self.stage.check(
            "release 2: training again registers a new version, promoted to the alias",
            run.result.returncode == 0 and new is not None and answer.status == 200,
            f"`python src/train.py` in the project image, then @{self.alias} set to its version "
            "through the registry API (the promotion src/evaluate.py makes when it wins)",
            f"exit {run.result.returncode}, version {new}, alias: {answer.status} {answer.body}"
            + ("" if run.result.returncode == 0 else "\n" + run.output()),
        )


def ok_exit(result: subprocess.CompletedProcess[str]) -> bool:
    return result.returncode == 0


def _output(result: subprocess.CompletedProcess[str], chars: int = 2500) -> str:
    return (result.stdout[-chars:] + "\n" + result.stderr[-chars:]).strip()


def _post(port: int, path: str, body: dict[str, Any]) -> _proc.HttpAnswer:
    return http_call(
        port,
        path,
        method="POST",
        headers={"Content-Type": "application/json"},
        body=json.dumps(body).encode(),
        timeout=60,
    )


def _release(rehearsal: ServingRehearsal, runtime: Runtime, label: str) -> Release | None:
    release = rehearsal.publish(label)
    if release is None or not rehearsal.download(release, runtime, label):
        return None
    if not rehearsal.serve(release, runtime, label):
        return None
    return release


def rehearse_serving(stage: Stage) -> None:
    rehearsal = ServingRehearsal(stage)
    runtime = rehearsal.runtime
    metrics_variable = runtime.env.get("MLSERVER_METRICS_PORT")
    stage.check(
        "Prometheus scrapes the port the runtime serves metrics on",
        metrics_variable is not None and metrics_variable == runtime.metrics_port,
        "the ServingRuntime's prometheus.kserve.io/port annotation against its "
        "MLSERVER_METRICS_PORT",
        f"annotation {runtime.metrics_port}, MLSERVER_METRICS_PORT {metrics_variable}",
    )
    first = _release(rehearsal, runtime, "release 1")
    if first is None:
        return
    request = rehearsal.check_served(first, "release 1")
    if not rehearsal.retrain_and_promote():
        return
    second = _release(rehearsal, runtime, "release 2")
    if second is None:
        return
    stage.check(
        "release 2: a new storageUri, a new revision",
        second.storage_uri != first.storage_uri and second.version != first.version,
        "the second publish's storageUri against the first's",
        f"{first.storage_uri} (v{first.version}) -> {second.storage_uri} (v{second.version})",
    )
    if first.service is not None:
        first.service.stop()  # the previous revision is scaled down once the new one is ready
    request = rehearsal.check_served(second, "release 2") or request
    # KServe's predictor Service: in-cluster clients reach the new revision by its name.
    stage.network.add(resource_names(stage.project_name)["predictor_service"], 80, second.port)
    stage.shared["serving"] = ServingEndpoint(
        url=f"http://{_proc.LOOPBACK}:{second.port}",
        metrics_url=f"http://{_proc.LOOPBACK}:{second.metrics_port}/metrics",
        model_name=rehearsal.model,
        model_version=second.version,
        protocol=str(
            ((rehearsal.isvc.get("spec") or {}).get("predictor") or {})
            .get("model", {})
            .get("protocolVersion", "v1")
        ),
        infer_path=f"/v2/models/{rehearsal.model}/infer",
        request=request or {},
    )
