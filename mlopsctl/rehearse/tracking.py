"""The MLflow tracking server as ``k8s/tracking-server.yaml`` runs it.

PostgreSQL and the S3-compatible store are started first and stand for what the manifest's
Secret points at; the server is then started with exactly the manifest's command, arguments and
environment, in the image ``deploy/mlflow/Dockerfile`` builds, as the pod's uid. Only what must
be local is substituted: the Secret's values (the local backend URI, store endpoint and keys),
the listen address (127.0.0.1, not 0.0.0.0) and the port (a free one for the container port).
Then it is called the way in-cluster clients call it: with the Service's DNS names as Host, and
probed the way the kubelet probes it.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from mlopsctl.names import resource_names
from mlopsctl.rehearse import _proc, images, manifests, objectstore, pod, postgres
from mlopsctl.rehearse._proc import http_call, wait_for
from mlopsctl.rehearse.errors import ProjectError
from mlopsctl.rehearse.stage import Stage

MANIFEST = "k8s/tracking-server.yaml"
DOCKERFILE = "deploy/mlflow/Dockerfile"
CONTAINER = "mlflow"
# A namespace the generated CI deploys to; clients in it use every form of the Service's name.
NAMESPACE = "production"
# A Host header the server must refuse (DNS rebinding protection).
FOREIGN_HOST = "rehearsal.invalid:5000"
# What the kubelet sends as Host when a probe sets none: the pod's IP and port.
POD_IP = "10.244.0.17"
API_PATH = "/api/2.0/mlflow/experiments/search?max_results=1"
STARTUP_SECONDS = 180
READY_SECONDS = 60


def applies(stage: Stage) -> bool:
    return (stage.project / MANIFEST).is_file()


def _secret_values(stage: Stage) -> dict[str, str]:
    pg: postgres.Postgres = stage.shared["postgres"]
    store: objectstore.ObjectStore = stage.shared["object_store"]
    documented = tracking_config(stage).get("backend_store", "postgresql://")
    return {
        # The Secret's URI in the form the project documents (its driver), pointed here.
        "backend-store-uri": pg.uri(str(documented).split("://")[0]),
        "s3-endpoint-url": store.endpoint,
        "aws-access-key-id": objectstore.ACCESS_KEY,
        "aws-secret-access-key": objectstore.SECRET_KEY,
    }


def tracking_config(stage: Stage) -> dict[str, object]:
    path = stage.file("config/experiment-tracking.json")
    try:
        loaded = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise ProjectError(f"{path}: not JSON ({exc})") from exc
    return loaded if isinstance(loaded, dict) else {}


def localized(
    argv: list[str], port: int, pg: postgres.Postgres | None = None
) -> tuple[list[str], list[str]]:
    """argv with the listen address and port made local and, given the local PostgreSQL, the
    ``postgres:5432`` address in a backend URI (PostgreSQL is no HTTP service the network proxy
    can route); with what was substituted."""
    out = list(argv)
    changed = []
    for flag, value in (
        ("--host", "127.0.0.1"),
        ("--port", str(port)),
        ("-h", "127.0.0.1"),
        ("-p", str(port)),
    ):
        if flag in out[:-1]:
            index = out.index(flag) + 1
            changed.append(f"{flag} {out[index]} -> {value}")
            out[index] = value
    if pg is None:
        return out, changed
    local = f"{_proc.LOOPBACK}:{pg.service.port}"
    for index, arg in enumerate(out):
        replaced = re.sub(r"@postgres(:5432)?/", f"@{local}/", arg)
        if replaced != arg:
            changed.append(f"postgres:5432 -> {local}")
            out[index] = replaced
    return out, changed


@dataclass(frozen=True)
class TrackingServer:
    """The started server and what was run."""

    service: _proc.Service
    argv: list[str]
    substituted: list[str]
    port: int
    uid: int
    artifact_root: str
    image_user: tuple[int, int] | None


def start_tracking_server(stage: Stage, container: manifests.Container) -> TrackingServer:
    """Start the object store, PostgreSQL and the server, as the manifest wires them."""
    dockerfile = stage.file(DOCKERFILE)
    image = images.read_dockerfile(dockerfile)
    uid = container.uid if container.uid is not None else (image.user or (0, 0))[0]
    gid = container.gid if container.gid is not None else (image.user or (0, 0))[1]
    python = images.interpreter(python_version(stage), uid, gid)
    venv = images.environment(image, stage.project, python, stage.cache)
    store_venv = images.install(
        [objectstore.SERVER_REQUIREMENT], python, stage.cache, "the S3-compatible server"
    )
    store = objectstore.start(store_venv, stage.workspace)
    stage.services.append(store.service)
    stage.network.add(objectstore.SERVICE, objectstore.SERVICE_PORT, store.port)
    stage.shared["object_store"] = store
    pg = postgres.start(stage.workspace)
    stage.services.append(pg.service)
    stage.shared["postgres"] = pg

    secrets = _secret_values(stage)
    env = dict(image.env)
    env.update(container.env)
    for variable, (_secret, key) in container.secret_env.items():
        if key not in secrets:
            raise ProjectError(
                f"{container.source}: {variable} reads Secret key {key}, which the rehearsal "
                "has no local value for"
            )
        env[variable] = secrets[key]
    artifact_root = env.get("MLFLOW_ARTIFACT_ROOT", "")
    if artifact_root.startswith("s3://"):
        store.create_bucket(artifact_root[len("s3://") :].split("/")[0])
    env["PATH"] = f"{venv / 'bin'}:{pod.SYSTEM_PATH}"
    # Cluster DNS: the pod's HTTP clients (boto3 to the store) resolve Service names through it.
    env["HTTP_PROXY"] = env["http_proxy"] = stage.network.proxy_url
    port = _proc.free_port()
    argv, substituted = localized(container.expanded(env), port)
    root = stage.workspace / "mlflow-image"
    workdir = images.lay_out(image, stage.project, root)
    server_pod = pod.Pod.create(
        "mlflow",
        uid=uid,
        gid=gid,
        workspace=stage.workspace,
        workdir=workdir,
        image_workdir=image.workdir if image.workdir != "/" else "",
        env=env,
        mounts=container.mounts,
        read_only_root=container.read_only_root,
    )
    service = server_pod.start(argv, log=stage.workspace / "mlflow.log", port=port)
    stage.services.append(service)
    return TrackingServer(service, argv, substituted, port, uid, artifact_root, image.user)


def python_version(stage: Stage) -> str:
    """The project's Python (python_env.yaml), which its images are built on."""
    import yaml

    loaded = yaml.safe_load(stage.file("python_env.yaml").read_text(encoding="utf-8"))
    version = loaded.get("python") if isinstance(loaded, dict) else None
    if not version:
        raise ProjectError("python_env.yaml: no python version")
    return str(version)


def _probe_answer(port: int, probe: manifests.Probe, host: str | None = None) -> int:
    headers = dict(probe.headers)
    sent_host = host or headers.pop("Host", None) or headers.pop("host", None)
    headers.pop("Host", None)
    return http_call(
        port, probe.path, host=sent_host or f"{POD_IP}:{probe.port}", headers=headers
    ).status


def rehearse_tracking_server(stage: Stage) -> None:
    path = stage.file(MANIFEST)
    name = resource_names(stage.project_name)["mlflow"]
    container = manifests.container(path, name, CONTAINER)
    svc = manifests.service(path, name)
    server = start_tracking_server(stage, container)
    service, port = server.service, server.port
    pg: postgres.Postgres = stage.shared["postgres"]
    command = shlex.join(server.argv).replace(pg.password, "***")
    liveness = container.probes.get("livenessProbe")
    readiness = container.probes.get("readinessProbe")

    def live() -> bool:
        probe = liveness or readiness
        if probe is None:
            return http_call(port, "/health").status == 200
        return _probe_answer(port, probe) < 400

    started = wait_for(service, live, STARTUP_SECONDS)
    substituted = ", ".join(server.substituted) or "nothing"
    stage.check(
        "server starts as the manifest runs it",
        started,
        f"`{command}` as uid {server.uid} without a passwd entry, read-only root: "
        f"{container.read_only_root}, writable: {', '.join(container.mounts) or 'nothing'}; "
        f"substituted: {substituted}; the Secret's values are the local PostgreSQL and "
        "S3-compatible store",
        ""
        if started
        else f"the server did not answer its liveness probe within "
        f"{STARTUP_SECONDS} s:\n{service.log_tail()}",
    )
    if not started:
        return
    image_user = server.image_user
    stage.check(
        "the image's user is the pod's",
        image_user is None or image_user == (container.uid, container.gid),
        f"{DOCKERFILE} USER against the manifest's runAsUser/runAsGroup",
        f"image {image_user}, manifest ({container.uid}, {container.gid})",
    )
    if readiness is None:
        stage.check("readiness probe", False, "the container's readinessProbe", "none declared")
    else:
        # The kubelet probes until the pod is ready; only then does the Service route to it.
        wait_for(service, lambda: _probe_answer(port, readiness) < 400, READY_SECONDS)
        ready = _probe_answer(port, readiness)
        foreign = _probe_answer(port, readiness, host=FOREIGN_HOST)
        stage.check(
            "readiness probe passes",
            ready < 400,
            f"GET {readiness.path} with the probe's headers, as the kubelet sends it",
            f"answered {ready}",
        )
        stage.check(
            "readiness probe fails when the server refuses clients' hosts",
            foreign >= 400,
            f"GET {readiness.path} with Host {FOREIGN_HOST} must be refused: a probe the host "
            "check does not apply to stays green while every client gets 403",
            f"answered {foreign}",
        )
    check_clients(stage, "in-cluster clients are served", port, svc.hosts(5000, NAMESPACE))
    check_backend(stage, "the manifest's PostgreSQL", port, svc.hosts(5000, NAMESPACE)[0])
    _check_memory(stage, container, service)
    stage.network.add(svc.name, 5000, port)
    stage.shared["tracking"] = {
        "port": port,
        "host": svc.hosts(5000, NAMESPACE)[0],
        "artifact_root": server.artifact_root,
        "service": service,
    }


Call = Callable[..., _proc.HttpAnswer]


def check_clients(
    stage: Stage, name: str, port: int, hosts: list[str], call: Call = http_call
) -> None:
    """The server answers 200 to each of ``hosts`` as the Host header (each asked once)."""
    answers = {}
    for host in dict.fromkeys(hosts):
        answer = call(port, API_PATH, host=host)
        answers[host] = f"{answer.status} {answer.body[:80].strip()}"
    refused = {h: a for h, a in answers.items() if not a.startswith("200")}
    stage.check(
        name,
        not refused,
        f"GET {API_PATH} with Host " + ", ".join(answers),
        "; ".join(f"{h}: {a}" for h, a in refused.items()),
    )


def check_backend(stage: Stage, backend: str, port: int, host: str, call: Call = http_call) -> None:
    """An experiment created through the API with Host ``host`` is a row in the rehearsal's
    PostgreSQL, the backend store ``backend`` names."""
    experiment = call(
        port,
        "/api/2.0/mlflow/experiments/create",
        method="POST",
        host=host,
        headers={"Content-Type": "application/json"},
        body=json.dumps({"name": "rehearsal-backend-check"}).encode(),
    )
    stage.check(
        f"the backend store is {backend}",
        experiment.status == 200
        and "postgres" in stage.shared
        and _experiment_in_postgres(stage, "rehearsal-backend-check"),
        "an experiment created through the API is a row in PostgreSQL's experiments table",
        f"{experiment.status} {experiment.body[:200]}",
    )


def _group_rss(pgid: int) -> list[tuple[float, str]]:
    """(resident MiB, command line) of each process in process group ``pgid``."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text(encoding="utf-8").rsplit(")", 1)[1].split()
            if int(fields[2]) != pgid:  # fields after the name: state, ppid, pgrp
                continue
            status = (stat.parent / "status").read_text(encoding="utf-8")
            cmdline = (stat.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, IndexError, ValueError):
            continue  # exited meanwhile
        kib = sum(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:"))
        found.append((kib / 1024, cmdline.strip()))
    return sorted(found, reverse=True)


def _check_memory(stage: Stage, container: manifests.Container, service: _proc.Service) -> None:
    """The server's processes (the `mlflow server` parent and its workers), after serving the
    checks above, against the memory limit the kubelet OOM-kills the container at."""
    limit = container.limits.get("memory")
    if limit is None:
        stage.check(
            "the server's processes fit the container's memory limit",
            False,
            "the container's resources.limits.memory",
            "no memory limit declared",
        )
        return
    processes = _group_rss(service.process.pid)
    rss = sum(mib for mib, _ in processes)
    limit_mib = manifests.memory_mib(limit)
    stage.check(
        "the server's processes fit the container's memory limit",
        0 < rss <= limit_mib,
        f"resident memory (VmRSS) of the server's {len(processes)} processes after the checks "
        f"above: {rss:.0f} MiB against resources.limits.memory {limit}",
        f"{rss:.0f} MiB of {limit_mib:.0f} MiB: the kubelet OOM-kills the container\n"
        + "\n".join(f"{mib:.0f} MiB  {cmd[:160]}" for mib, cmd in processes),
    )


def _experiment_in_postgres(stage: Stage, name: str) -> bool:
    pg: postgres.Postgres = stage.shared["postgres"]
    bindir = postgres.binaries()
    result = _proc.run(
        [
            str(bindir / "psql") if (bindir / "psql").exists() else "psql",
            pg.uri(),
            "-tAc",
            f"SELECT count(*) FROM experiments WHERE name = '{name}'",
        ],
        env={"PATH": "/usr/bin:/bin"},
        timeout=30,
    )
    return bool(result.returncode == 0 and result.stdout.strip() == "1")
