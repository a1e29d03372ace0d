"""The Kubeflow retraining pipeline run end to end with the KFP SDK's local runner, its steps in
the project image's restricted pod against the rehearsed tracking server and object store.

Which runner: kfp.local has two. ``DockerRunner`` needs a Docker daemon and the image in a
registry, neither of which a rehearsal has; ``SubprocessRunner`` runs lightweight Python
components (all of the pipeline's steps) as subprocesses of the process that runs the pipeline,
with that process's interpreter for the command's ``python3``. So the local runner itself runs
inside the pod (``_kfp_local.py``, started with the project image's virtual environment, where
kfp is installed as the image installs it), with ``use_venv=False`` so that nothing is installed
per task: each step is a process of that pod, held to what a step's pod in the cluster is held
to: the image's uid without a passwd entry, a read-only root, only ``/tmp`` writable, the image's
``ENV`` and no route to a package index (a step that pip-installs at start fails, as it would).
The pipeline is called with no arguments, as a scheduled run is, so its steps reach the tracking
server at the pipeline's own default ``tracking_uri``: the Service name the cluster network
routes to the rehearsed server (the pod gets no ``MLFLOW_TRACKING_URI`` of its own).

What differs from the cluster, and why: the steps share one pod (one ``/tmp``) instead of one
each, since the local runner starts them as its own subprocesses; and the image's WORKDIR paths in
the compiled commands (``/app/src/train.py``) are pointed at the local copy of the image's files,
as every rehearsed pod's arguments are (see :meth:`mlopsctl.rehearse.pod.Pod.local`): the
machine has no ``/app`` to mount over. The publish step runs ``src/publish.py``; a project
without that file gets its handoff reported as not reached.

Credentials: the pod gets none of its own. The pipeline's platform config (``secretAsEnv``,
which the local runner ignores) maps keys of a Secret to each step's environment; the driver
does what the kubelet would with it, from the Secrets the rehearsed cluster holds: the one the
tracking server's manifest reads, with the values the tracking server was started with. A step
mapping a Secret or key that does not exist does not start, as its pod would not.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlopsctl.names import resource_names
from mlopsctl.rehearse import manifests, pod
from mlopsctl.rehearse import tracking as tracking_server
from mlopsctl.rehearse._proc import http_call
from mlopsctl.rehearse.entrypoints import WRITABLE, ProjectImage, registry_state
from mlopsctl.rehearse.objectstore import ObjectStore
from mlopsctl.rehearse.stage import Stage

PIPELINE = "pipelines/retraining_pipeline.py"
FUNCTION = "retraining_pipeline"
PUBLISH = "src/publish.py"
DRIVER = Path(__file__).with_name("_kfp_local.py")
# On the pod's writable volume (the path inside the pod).
RESULT = "/tmp/kfp-local-run.json"
PIPELINE_ROOT = "/tmp/kfp-local-outputs"
TIMEOUT = 1800
# The steps, in the order the pipeline's data dependencies run them; publish only on a win.
STEPS = ("validate-data", "train", "evaluate")
PUBLISH_STEP = "publish"
# What src/publish.py reads to write the serving copy to the object store (its docstring).
PUBLISH_STORE_ENV = ("MLFLOW_S3_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")


def applies(stage: Stage) -> bool:
    return (stage.project / PIPELINE).is_file()


@dataclass
class PipelineRun:
    """One run of the pipeline in the project image's pod, and what the driver recorded."""

    result: subprocess.CompletedProcess[str]
    pod: pod.Pod
    tasks: list[dict[str, Any]] = field(default_factory=list)
    executors: dict[str, dict[str, Any]] = field(default_factory=dict)
    # executor -> {variable: "secret/key"}, and what a step's pod could not get.
    secret_env: dict[str, dict[str, str]] = field(default_factory=dict)
    secret_problems: dict[str, list[str]] = field(default_factory=dict)
    error: str | None = None

    def output(self, chars: int = 3000) -> str:
        text = (self.result.stdout[-chars:] + "\n" + self.result.stderr[-chars:]).strip()
        return (self.error[-chars:] + "\n" + text) if self.error else text

    @property
    def steps(self) -> list[str]:
        """The steps that ran, in order (component names without kfp's ``comp-``)."""
        return [str(t["component"]).removeprefix("comp-") for t in self.tasks]

    def task(self, step: str) -> dict[str, Any] | None:
        found = [t for t in self.tasks if str(t["component"]).removeprefix("comp-") == step]
        return found[-1] if found else None

    def evaluation(self) -> dict[str, Any] | None:
        """evaluation.json as the evaluate step wrote it on the pod's volume."""
        for directory in self.pod.mounts.values():
            for found in sorted(directory.rglob("evaluation.json")):
                loaded = json.loads(found.read_text(encoding="utf-8"))
                return loaded if isinstance(loaded, dict) else None
        return None


def pip_installs(executors: dict[str, dict[str, Any]]) -> list[str]:
    """The executors whose command installs a package when the step's pod starts."""
    return sorted(
        name
        for name, executor in executors.items()
        if any("pip install" in str(part) for part in [*executor["command"], *executor["args"]])
    )


def cluster_secrets(stage: Stage) -> dict[str, dict[str, str]]:
    """The Secrets the rehearsed cluster holds: each one the tracking server's manifest reads,
    with the values the rehearsal started the server with."""
    if not (stage.project / tracking_server.MANIFEST).is_file():
        return {}
    path = stage.file(tracking_server.MANIFEST)
    container = manifests.container(
        path, resource_names(stage.project_name)["mlflow"], tracking_server.CONTAINER
    )
    values = tracking_server._secret_values(stage)
    return {secret: dict(values) for secret, _key in container.secret_env.values()}


def run_pipeline(stage: Stage, image: ProjectImage, *, workdir: Path | None = None) -> PipelineRun:
    """Run the project's pipeline once with the local runner in a fresh pod of ``image``."""
    runs = stage.shared.setdefault("pod_runs", 0) + 1
    stage.shared["pod_runs"] = runs
    here = stage.workspace / f"kfp-local-{runs}"
    # The pipeline as submitted (it is not in the image); readable by the pod's uid.
    shutil.copytree(stage.file(PIPELINE).parent, here / "pipelines")
    shutil.copy2(DRIVER, here / DRIVER.name)
    for path in [here, *here.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    local_workdir = workdir or image.workdir
    spec = {
        "module": str(here / PIPELINE),
        "function": FUNCTION,
        "arguments": {},
        "pipeline_root": PIPELINE_ROOT,
        "paths": {image.image.workdir: str(local_workdir)},
        "secrets": cluster_secrets(stage),
        "result": RESULT,
    }
    (here / "spec.json").write_text(json.dumps(spec), encoding="utf-8")
    (here / "spec.json").chmod(0o600)
    os.chown(here / "spec.json", image.uid, image.gid)  # it holds the Secrets' values
    env = {k: v for k, v in image.env.items() if k != "MLFLOW_TRACKING_URI"}
    job = pod.Pod.create(
        f"pipeline-{runs}",
        uid=image.uid,
        gid=image.gid,
        workspace=stage.workspace,
        workdir=local_workdir,
        image_workdir=image.image.workdir,
        env=env,
        mounts=WRITABLE,
        read_only_root=True,
    )
    python = image.venv / "bin" / "python"
    result = job.run(
        [str(python), str(here / DRIVER.name), str(here / "spec.json")], timeout=TIMEOUT
    )
    run = PipelineRun(result, job)
    written = job.volume("/tmp") / Path(RESULT).relative_to("/tmp")
    if written.is_file():
        recorded = json.loads(written.read_text(encoding="utf-8"))
        run.tasks = list(recorded.get("tasks") or [])
        run.executors = dict(recorded.get("executors") or {})
        run.secret_env = dict(recorded.get("secret_env") or {})
        run.secret_problems = dict(recorded.get("secret_problems") or {})
        run.error = recorded.get("error")
    else:
        run.error = f"the local runner wrote no {RESULT} (exit {result.returncode})"
    return run


def _registry(stage: Stage) -> tuple[str, tuple[str, str]]:
    loaded = json.loads(stage.file("config/project.json").read_text(encoding="utf-8"))
    config = loaded if isinstance(loaded, dict) else {}
    model = str(config.get("model_name", stage.project_name))
    return model, (
        str(config.get("champion_alias", "champion")),
        str(config.get("challenger_alias", "challenger")),
    )


def _model_version(stage: Stage, model: str, version: str) -> dict[str, Any]:
    tracking = stage.shared["tracking"]
    answer = http_call(
        tracking["port"],
        f"/api/2.0/mlflow/model-versions/get?name={model}&version={version}",
        host=tracking["host"],
    )
    if answer.status != 200:
        return {}
    found = json.loads(answer.body).get("model_version")
    return found if isinstance(found, dict) else {}


def rehearse_pipeline(stage: Stage) -> None:
    image: ProjectImage = stage.shared["project_image"]
    model, aliases = _registry(stage)
    before = registry_state(stage, model, aliases)
    run = run_pipeline(stage, image)
    how = (
        f"`{FUNCTION}()` from {PIPELINE} with kfp.local.SubprocessRunner(use_venv=False), run in "
        f"the project image's pod (uid {image.uid}:{image.gid} without a passwd entry, read-only "
        f"root, writable {', '.join(WRITABLE)} only, no MLFLOW_TRACKING_URI but the pipeline's "
        "own default)"
    )
    installing = pip_installs(run.executors)
    stage.check(
        "the steps install nothing when their pods start",
        bool(run.executors) and not installing,
        "no `pip install` in any executor's command of the compiled pipeline (the pods have a "
        "read-only root and no route to a package index; kfp comes with the project image)",
        f"installing at start: {', '.join(installing)}"
        if installing
        else ("" if run.executors else run.output(1500)),
    )
    _check_credentials(stage, run)
    ran = stage.check(
        "the pipeline runs with the KFP local runner",
        run.result.returncode == 0 and run.error is None and bool(run.tasks),
        how,
        "" if run.error is None and run.result.returncode == 0 else run.output(),
    )
    evaluation = run.evaluation()
    promoted = bool(evaluation and evaluation.get("promoted"))
    # Projects without a publish step (no InferenceService of the project's runtime) end at
    # evaluate, which moves the champion alias.
    publishes = promoted and (stage.project / PUBLISH).is_file()
    expected = [*STEPS, *([PUBLISH_STEP] if publishes else [])]
    statuses = [f"{t['component']}: {t['status']}" for t in run.tasks]
    stage.check(
        "each step succeeded, in order",
        ran and run.steps == expected and all(t["status"] == "SUCCESS" for t in run.tasks),
        f"the tasks the local runner ran: {' -> '.join(expected)}, each SUCCESS",
        "; ".join(statuses) + ("\n" + run.output() if run.steps != expected else ""),
    )
    after = registry_state(stage, model, aliases)
    challenger = after.get(aliases[1])
    new = challenger is not None and challenger != before.get(aliases[1])
    stage.check(
        "the pipeline run registered a new model version",
        challenger is not None
        and new
        and after["versions"] == before["versions"] + 1
        and challenger["run_status"] == "FINISHED",
        f"the tracking server's registry of {model}: one more version, the {aliases[1]} alias on "
        "it, its run FINISHED",
        f"before {json.dumps(before)}, after {json.dumps(after)}",
    )
    evaluated = run.task("evaluate")
    said = evaluated["outputs"].get("Output") if evaluated else None
    stage.check(
        "the challenger-wins branch ran or was skipped as evaluation.json decided",
        evaluation is not None and said == promoted and (PUBLISH_STEP in run.steps) == publishes,
        "evaluation.json's `promoted` (written by the evaluate step on the pod's volume), the "
        "evaluate step's output and whether the publish step ran agree",
        f"evaluation.json {json.dumps(evaluation)}, evaluate returned {said}, steps {run.steps}",
    )
    _check_artifacts(stage, model, challenger if new else None)
    _check_publish(stage, run, promoted)


def _check_credentials(stage: Stage, run: PipelineRun) -> None:
    """The steps get the store's credentials from the platform config's Secret, which exists."""
    mapped = "; ".join(
        f"{executor.removeprefix('exec-')}: "
        + ", ".join(f"{var} <- {source}" for var, source in sorted(env.items()))
        for executor, env in sorted(run.secret_env.items())
    )
    publish = f"exec-{PUBLISH_STEP}"
    missing = (
        [v for v in PUBLISH_STORE_ENV if v not in run.secret_env.get(publish, {})]
        if publish in run.executors
        else []
    )
    problems = [f"{e}: {p}" for e, found in sorted(run.secret_problems.items()) for p in found]
    stage.check(
        "the steps get the object store's credentials from the manifests' Secret",
        bool(run.executors) and not problems and not missing,
        "the compiled pipeline's kubernetes secretAsEnv: every Secret and key it maps exists in "
        f"the rehearsed cluster ({', '.join(sorted(cluster_secrets(stage)))}, the tracking "
        f"server's), and the publish step gets {', '.join(PUBLISH_STORE_ENV)} from it",
        "; ".join([*problems, *([f"publish step without {', '.join(missing)}"] if missing else [])])
        or mapped
        or run.output(1500),
    )


def _check_artifacts(stage: Stage, model: str, version: dict[str, Any] | None) -> None:
    tracking = stage.shared["tracking"]
    store: ObjectStore = stage.shared["object_store"]
    root = str(tracking["artifact_root"])
    if version is None:
        stage.skip(
            "the run's artifacts are in the object store",
            f"objects under {root}",
            "not reached: the pipeline registered no new version",
        )
        return
    details = _model_version(stage, model, str(version["version"]))
    keys = store.keys(root)
    run_id = str(version["run_id"])
    of_run = [k for k in keys if f"/{run_id}/" in k]
    source = str(details.get("storage_location") or details.get("source") or "")
    # MLflow 3 logs a model apart from its run: the version's source is models:/<model id>.
    model_id = str(details.get("model_id") or "") or str(details.get("source", "")).removeprefix(
        "models:/"
    )
    models = [
        k
        for k in keys
        if k.endswith("/MLmodel") and ((model_id and f"/{model_id}/" in k) or f"/{run_id}/" in k)
    ]
    stage.check(
        "the run's artifacts are in the object store",
        bool(of_run) and bool(models),
        f"ListObjectsV2 under {root}: objects of run {run_id} and the MLmodel of the version it "
        f"registered ({source or 'no source'})",
        f"run objects: {', '.join(of_run[:4]) or 'none'}; models: {', '.join(models[:2]) or 'none'}"
        f" ({len(keys)} objects)",
    )


def _check_publish(stage: Stage, run: PipelineRun, promoted: bool) -> None:
    name = "the publish step runs src/publish.py"
    checked = f"the challenger-wins branch's step runs `python /app/{PUBLISH}` in the project image"
    if not (stage.project / PUBLISH).is_file():
        return  # no publish step: nothing serves the project's runtime from a storageUri
    if not promoted:
        return  # the branch handoff above says it was rightly skipped
    task = run.task(PUBLISH_STEP)
    stage.check(
        name,
        task is not None and task["status"] == "SUCCESS",
        checked,
        run.output() if task is None or task["status"] != "SUCCESS" else "",
    )
