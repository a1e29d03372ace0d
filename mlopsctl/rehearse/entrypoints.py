"""The project image's entry points (training, evaluation, drift) run as the pipeline's pods run
them, against the rehearsed tracking server.

The image is ``deploy/model/Dockerfile`` (its ``USER``, ``WORKDIR``, ``ENV`` and ``COPY``-ed
files, its packages in a virtual environment); the commands are the ``MLproject`` entry points,
which the retraining pipeline's steps run in that image, started in its WORKDIR. Each runs in a
pod of its own held to the restricted profile every generated pod spec declares: the image's
uid without a passwd entry, a read-only root, and one writable ``emptyDir`` at ``/tmp``. The
tracking URI is the in-cluster one from ``config/experiment-tracking.json``; the cluster network
routes its Service name to the local server.
"""

from __future__ import annotations

import json
import shlex
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from mlopsctl.rehearse import images, pod
from mlopsctl.rehearse._proc import http_call
from mlopsctl.rehearse.errors import ProjectError
from mlopsctl.rehearse.objectstore import ObjectStore
from mlopsctl.rehearse.stage import Stage

DOCKERFILE = "deploy/model/Dockerfile"
MLPROJECT = "MLproject"
# The writable volumes of the restricted pod profile (the generated pod specs' emptyDir).
WRITABLE = ("/tmp",)
TIMEOUT = 900
# Entry point -> the report it writes into MLOPS_OUTPUT_DIR (or the project root without it).
REPORTS = {"evaluate": "evaluation.json", "drift": "drift-report.json"}


@dataclass
class PodRun:
    name: str
    command: list[str]
    result: subprocess.CompletedProcess[str]
    pod: pod.Pod

    def output(self, chars: int = 2500) -> str:
        return (self.result.stdout[-chars:] + "\n" + self.result.stderr[-chars:]).strip()

    def written(self, name: str) -> Path | None:
        """The report ``name`` if the command wrote it into one of its writable volumes."""
        for directory in self.pod.mounts.values():
            found = sorted(directory.rglob(name))
            if found:
                return found[0]
        return None


@dataclass
class ProjectImage:
    """The project image laid out once per rehearsal; each run gets a fresh pod."""

    image: images.Image
    venv: Path
    workdir: Path
    uid: int
    gid: int
    env: dict[str, str]
    commands: dict[str, list[str]]

    def run(self, stage: Stage, name: str, *, workdir: Path | None = None) -> PodRun:
        command = self.commands[name]
        runs = stage.shared.setdefault("pod_runs", 0) + 1
        stage.shared["pod_runs"] = runs
        job = pod.Pod.create(
            f"{name}-{runs}",
            uid=self.uid,
            gid=self.gid,
            workspace=stage.workspace,
            workdir=workdir or self.workdir,
            image_workdir=self.image.workdir,
            env=self.env,
            mounts=WRITABLE,
            read_only_root=True,
            accounts=self.image.accounts,
        )
        return PodRun(name, command, job.run(command, timeout=TIMEOUT), job)


def applies(stage: Stage) -> bool:
    """Wherever a tracking server is rehearsed (the Kubernetes manifest's or the compose one)
    and the project has an image (an edge project without a cluster job has none)."""
    from mlopsctl.rehearse import compose, tracking

    return (tracking.applies(stage) or compose.applies(stage)) and (
        stage.project / DOCKERFILE
    ).is_file()


def _entry_points(stage: Stage) -> dict[str, list[str]]:
    path = stage.file(MLPROJECT)
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ProjectError(f"{path}: not YAML ({exc})") from exc
    points = (loaded or {}).get("entry_points") if isinstance(loaded, dict) else None
    if not isinstance(points, dict):
        raise ProjectError(f"{path}: no entry_points")
    return {
        str(name): shlex.split(str(spec.get("command", "")))
        for name, spec in points.items()
        if isinstance(spec, dict) and spec.get("command")
    }


def project_image(stage: Stage) -> ProjectImage:
    from mlopsctl.rehearse.tracking import python_version, tracking_config

    dockerfile = stage.file(DOCKERFILE)
    image = images.read_dockerfile(dockerfile)
    if image.user is None or image.user[0] == 0:
        raise ProjectError(
            f"{dockerfile}: no USER, or USER root, last: the image would run as root, which a "
            "restricted pod refuses"
        )
    uid, gid = image.user
    python = images.interpreter(python_version(stage), uid, gid)
    venv = images.environment(image, stage.project, python, stage.cache)
    workdir = images.lay_out(image, stage.project, stage.workspace / "model-image")
    env = dict(image.env)
    env["MLFLOW_TRACKING_URI"] = str(tracking_config(stage).get("tracking_uri", ""))
    env["HTTP_PROXY"] = env["http_proxy"] = stage.network.proxy_url
    env["PATH"] = f"{venv / 'bin'}:{pod.SYSTEM_PATH}"
    return ProjectImage(image, venv, workdir, uid, gid, env, _entry_points(stage))


def registry_state(stage: Stage, model: str, aliases: tuple[str, ...]) -> dict[str, Any]:
    """alias -> {version, run_id, run_status} (None when unset), and the number of versions."""
    tracking = stage.shared["tracking"]
    port, host = tracking["port"], tracking["host"]
    state: dict[str, Any] = {}
    for alias in aliases:
        answer = http_call(
            port, f"/api/2.0/mlflow/registered-models/alias?name={model}&alias={alias}", host=host
        )
        if answer.status != 200:
            state[alias] = None
            continue
        version = json.loads(answer.body)["model_version"]
        run = http_call(port, f"/api/2.0/mlflow/runs/get?run_id={version['run_id']}", host=host)
        status = json.loads(run.body)["run"]["info"]["status"] if run.status == 200 else "?"
        state[alias] = {
            "version": version["version"],
            "run_id": version["run_id"],
            "run_status": status,
        }
    search = http_call(
        port,
        f"/api/2.0/mlflow/model-versions/search?filter=name%3D%27{model}%27&max_results=1000",
        host=host,
    )
    versions = json.loads(search.body).get("model_versions", []) if search.status == 200 else []
    state["versions"] = len(versions)
    return state


def _config(stage: Stage) -> dict[str, Any]:
    loaded = json.loads(stage.file("config/project.json").read_text(encoding="utf-8"))
    return loaded if isinstance(loaded, dict) else {}


def _account(image: ProjectImage) -> str:
    own = [a for a in image.image.accounts.get("passwd", []) if a.split(":")[2] == str(image.uid)]
    return f"with the image's passwd entry {own[0]}" if own else "without a passwd entry"


def rehearse_entrypoints(stage: Stage) -> None:
    image = project_image(stage)
    stage.shared["project_image"] = image
    config = _config(stage)
    model = str(config.get("model_name", stage.project_name))
    aliases = (
        str(config.get("champion_alias", "champion")),
        str(config.get("challenger_alias", "challenger")),
    )
    how = (
        f"as uid {image.uid}:{image.gid} {_account(image)}, read-only root, writable "
        f"{', '.join(WRITABLE)} only, in {image.image.workdir}, "
        f"MLFLOW_TRACKING_URI={image.env['MLFLOW_TRACKING_URI']}"
    )
    for name in ("main", "evaluate", "drift"):
        if name not in image.commands:
            stage.check(f"entry point {name}", False, f"{MLPROJECT} entry_points", "not declared")
            continue
        run = image.run(stage, name)
        command = shlex.join(run.command)
        passed = stage.check(
            f"{name}: `{command}` succeeds",
            run.result.returncode == 0,
            how,
            "" if run.result.returncode == 0 else f"exit {run.result.returncode}:\n{run.output()}",
        )
        if name == "main":
            _check_registered(stage, model, aliases, run, passed)
        report = REPORTS.get(name)
        if report:
            written = run.written(report)
            stage.check(
                f"{name}: writes {report} to a writable volume",
                written is not None,
                f"{report} under {', '.join(WRITABLE)} (MLOPS_OUTPUT_DIR="
                f"{image.env.get('MLOPS_OUTPUT_DIR', 'unset')})",
                "" if written else "not written:\n" + run.output(1500),
            )


def _check_registered(
    stage: Stage, model: str, aliases: tuple[str, ...], run: PodRun, passed: bool
) -> None:
    state = registry_state(stage, model, aliases)
    held = {a: s for a, s in state.items() if a in aliases and s is not None}
    unfinished = {a: s for a, s in held.items() if s["run_status"] != "FINISHED"}
    stage.check(
        "main: aliases only on versions of finished runs",
        not unfinished and (bool(held) == passed),
        f"registry aliases {', '.join(aliases)} of {model}: each on a version whose run is "
        "FINISHED, none when training failed",
        json.dumps(state),
    )
    if not passed:
        return
    tracking = stage.shared["tracking"]
    store: ObjectStore = stage.shared["object_store"]
    keys = store.keys(str(tracking["artifact_root"]))
    models = [k for k in keys if k.endswith("/MLmodel")]
    stage.check(
        "main: the model's files are in the object store under the artifact root",
        bool(models),
        f"ListObjectsV2 under {tracking['artifact_root']}: an MLmodel file (logged through the "
        "tracking server's artifact proxy)",
        ", ".join(models[:3]) or f"{len(keys)} objects, no MLmodel",
    )
