"""The tracking stack as ``deploy/mlflow/docker-compose.yaml`` runs it, for projects without
Kubernetes.

The compose file is read the way the command its header documents reads it (``docker compose
[--env-file F] -f deploy/mlflow/docker-compose.yaml up -d``, run from the repository root):
podman-compose (``config``, from PyPI) interpolates it from the env file Compose would read
(``--env-file``, else the ``.env`` beside the compose file), with nothing from this machine's
environment. The env file is the README's: ``.env.example`` copied to ``.env`` with every secret
filled in. Each service is then started in ``depends_on`` order, each condition awaited as Compose
awaits it (a healthcheck passing, a one-shot service exiting 0):

- ``postgres`` images: a local PostgreSQL cluster with the service's ``POSTGRES_USER``,
  ``POSTGRES_DB`` and ``POSTGRES_PASSWORD``; its healthcheck run as declared, pointed at it;
- ``minio`` images: replaced by moto's S3 server (MinIO is no PyPI or Debian package); its
  healthcheck stands as the server answering;
- ``build`` services: the image the Dockerfile in the build context describes
  (:mod:`~mlopsctl.rehearse.images`), running exactly the service's ``command`` with its
  ``environment``, ``user``, ``read_only`` and volumes, as a pod (:mod:`~mlopsctl.rehearse.pod`).

Only what must be local is substituted, and reported: the listen address and port, and the
``postgres:5432`` address in the command (PostgreSQL is no HTTP service the network proxy can
route). Every other service name is routed by the cluster network (``HTTP_PROXY``) by the names
Compose's DNS answers to: the service name, its network aliases and ``container_name``.
"""

from __future__ import annotations

import http.client
import os
import re
import secrets
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mlopsctl.rehearse import _proc, images, objectstore, pod, postgres
from mlopsctl.rehearse._proc import http_call, wait_for
from mlopsctl.rehearse.errors import NotRehearsable, ProjectError
from mlopsctl.rehearse.stage import Stage
from mlopsctl.rehearse.tracking import (
    API_PATH,
    FOREIGN_HOST,
    MANIFEST,
    _group_rss,
    check_backend,
    check_clients,
    localized,
    python_version,
    tracking_config,
)

COMPOSE_FILE = "deploy/mlflow/docker-compose.yaml"
ENV_EXAMPLE = ".env.example"
# The README: "copy .env.example to .env"; the documented command runs from the repository root.
ENV_FILE = ".env"
# Compose's own model of a compose file (interpolation, .env, normal form) without a daemon:
# ``podman-compose --dry-run config``. Installed into its own environment in the cache.
READER_REQUIREMENT = "podman-compose==1.6.0"
TRACKING_SERVICE = "mlflow"
STARTUP_SECONDS = 180
ONE_SHOT_SECONDS = 300
# The values the rehearsal gives the env file's secrets (the object store checks no keys).
_SECRETS = {
    "AWS_ACCESS_KEY_ID": objectstore.ACCESS_KEY,
    "AWS_SECRET_ACCESS_KEY": objectstore.SECRET_KEY,
}
_PASSWORD_KEYS = ("POSTGRES_PASSWORD", "PGPASSWORD")


def applies(stage: Stage) -> bool:
    project = stage.project
    return (project / COMPOSE_FILE).is_file() and not (project / MANIFEST).is_file()


@dataclass
class ComposeService:
    """One service of the interpolated compose file."""

    name: str
    spec: dict[str, Any]

    @property
    def image(self) -> str:
        return str(self.spec.get("image") or "")

    @property
    def command(self) -> list[str]:
        command = self.spec.get("command")
        if isinstance(command, str):
            return shlex.split(command)
        return [str(a) for a in command or []]

    @property
    def environment(self) -> dict[str, str]:
        env = self.spec.get("environment") or {}
        if isinstance(env, list):
            env = dict(item.partition("=")[::2] for item in env)
        return {str(k): "" if v is None else str(v) for k, v in env.items()}

    @property
    def depends_on(self) -> dict[str, str]:
        """Dependency -> condition (service_started, service_healthy, ...)."""
        deps = self.spec.get("depends_on") or {}
        if isinstance(deps, list):
            return {str(d): "service_started" for d in deps}
        return {str(d): str((c or {}).get("condition", "service_started")) for d, c in deps.items()}

    @property
    def dns_names(self) -> list[str]:
        """The names Compose's DNS answers to on the project network for this service."""
        names = [self.name]
        networks = self.spec.get("networks") or {}
        if isinstance(networks, dict):
            for network in networks.values():
                names.extend(str(a) for a in (network or {}).get("aliases") or [])
        if self.spec.get("container_name"):
            names.append(str(self.spec["container_name"]))
        return list(dict.fromkeys(names))

    def ports(self) -> list[tuple[str, int, int]]:
        """(host address, published port, container port) of each published port."""
        found = []
        for entry in self.spec.get("ports") or []:
            if isinstance(entry, dict):
                host_ip = str(entry.get("host_ip", "0.0.0.0"))
                found.append((host_ip, int(entry.get("published", 0)), int(entry["target"])))
                continue
            parts = str(entry).split("/")[0].rsplit(":", 2)
            if len(parts) == 3:
                found.append((parts[0], int(parts[1]), int(parts[2])))
            elif len(parts) == 2:
                found.append(("0.0.0.0", int(parts[0]), int(parts[1])))
        return found

    def volume_targets(self) -> list[str]:
        """The container paths of its volumes and tmpfs mounts (writable, as Compose mounts
        them unless marked read-only)."""
        targets = []
        for entry in self.spec.get("volumes") or []:
            if isinstance(entry, dict):
                if not entry.get("read_only"):
                    targets.append(str(entry["target"]))
                continue
            parts = str(entry).split(":")
            if len(parts) >= 2 and not (len(parts) > 2 and "ro" in parts[2].split(",")):
                targets.append(parts[1])
        tmpfs = self.spec.get("tmpfs") or []
        targets.extend([tmpfs] if isinstance(tmpfs, str) else [str(t) for t in tmpfs])
        return [t.split(":")[0] for t in targets]

    @property
    def healthcheck(self) -> list[str] | None:
        """The healthcheck test as an argv (CMD-SHELL through /bin/sh), None when unset."""
        check = self.spec.get("healthcheck") or {}
        if check.get("disable"):
            return None
        test = check.get("test")
        if test is None:
            return None
        if isinstance(test, str):
            return ["/bin/sh", "-c", test]
        words = [str(t) for t in test]
        if not words or words[0] == "NONE":
            return None
        if words[0] == "CMD":
            return words[1:]
        if words[0] == "CMD-SHELL":
            return ["/bin/sh", "-c", " ".join(words[1:])]
        return words

    def memory_limit_mib(self) -> float | None:
        limits = ((self.spec.get("deploy") or {}).get("resources") or {}).get("limits") or {}
        value = limits.get("memory") or self.spec.get("mem_limit")
        return None if value is None else _bytes(str(value)) / 2**20


_UNITS = {"b": 1, "k": 2**10, "m": 2**20, "g": 2**30}


def _bytes(value: str) -> float:
    """A Compose byte value (``1g``, ``512m``, ``1gb``, plain bytes)."""
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([bkmg]?)b?", value.strip().lower())
    if match is None:
        raise ProjectError(f"{COMPOSE_FILE}: not a Compose byte value: {value!r}")
    return float(match.group(1)) * _UNITS[match.group(2) or "b"]


def documented_command(path: Path) -> list[str] | None:
    """The ``docker compose ...`` command the compose file's header comment documents."""
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.startswith("#"):
            break
        text = line.lstrip("#").strip()
        if text.startswith("docker compose "):
            return shlex.split(text)
    return None


def env_file_read(command: list[str], root: Path) -> Path:
    """The env file Compose interpolates from when ``command`` runs in ``root``: ``--env-file``
    (relative to the working directory), else ``.env`` in the project directory
    (``--project-directory``, else the directory of the first ``-f`` file)."""
    env_file = project_dir = first_file = None
    words = iter(command)
    for word in words:
        flag, _, value = word.partition("=")
        if flag in ("--env-file", "--project-directory", "-f", "--file"):
            value = value or next(words, "")
            if flag == "--env-file" and env_file is None:
                env_file = value
            elif flag == "--project-directory":
                project_dir = value
            elif first_file is None and flag in ("-f", "--file"):
                first_file = value
    if env_file is not None:
        return root / env_file
    directory = root / (project_dir or str(Path(first_file or COMPOSE_FILE).parent))
    return directory / ".env"


def fill_env_example(stage: Stage, password: str) -> str:
    """``.env.example`` with the secrets the compose file reads filled in (the README's step)."""
    lines = []
    for line in stage.file(ENV_EXAMPLE).read_text(encoding="utf-8").splitlines():
        key, sep, value = line.partition("=")
        if sep and not line.startswith("#") and not value:
            value = password if key in _PASSWORD_KEYS else _SECRETS.get(key, "")
        lines.append(f"{key}{sep}{value}" if sep else line)
    return "\n".join(lines) + "\n"


def read_compose(stage: Stage, python: Path, env_file: Path) -> dict[str, Any]:
    """The compose file as Compose reads it: interpolated from ``env_file`` alone."""
    venv = images.install([READER_REQUIREMENT], python, stage.cache, "the compose file reader")
    # An absent env file is no error to Compose: the variables it would set stay unset.
    source = env_file if env_file.is_file() else Path("/dev/null")
    result = _proc.run(
        [
            str(venv / "bin" / "podman-compose"),
            "--dry-run",
            "--env-file",
            str(source),
            "-f",
            str(stage.project / COMPOSE_FILE),
            "config",
        ],
        env={"PATH": f"{venv / 'bin'}:/usr/bin:/bin", "LANG": "C.UTF-8"},
        cwd=stage.project,
        timeout=120,
    )
    if result.returncode != 0:
        message = result.stderr.strip().splitlines()[-1:] or ["no output"]
        raise ComposeRefused(message[0])
    loaded = yaml.safe_load(result.stdout)
    if not isinstance(loaded, dict) or not isinstance(loaded.get("services"), dict):
        raise ProjectError(f"{COMPOSE_FILE}: no services")
    return loaded


class ComposeRefused(Exception):
    """Compose would refuse the file (an unset required variable, a bad reference)."""


def start_order(services: dict[str, ComposeService]) -> list[ComposeService]:
    """``depends_on`` order (dependencies first), as Compose starts them."""
    order: list[ComposeService] = []
    visiting: set[str] = set()

    def visit(name: str) -> None:
        if any(s.name == name for s in order):
            return
        if name in visiting:
            raise ProjectError(f"{COMPOSE_FILE}: depends_on forms a cycle through {name}")
        if name not in services:
            raise ProjectError(f"{COMPOSE_FILE}: depends_on names no service {name}")
        visiting.add(name)
        for dep in services[name].depends_on:
            visit(dep)
        order.append(services[name])

    for name in services:
        visit(name)
    return order


@dataclass
class Started:
    """What a service became here: its local port, process and whether Compose would count it
    healthy (or, for a one-shot service, completed)."""

    service: ComposeService
    kind: str
    port: int | None = None
    process: _proc.Service | None = None
    healthy: bool | None = None
    completed: bool | None = None
    substituted: list[str] = field(default_factory=list)


class ComposeStack:
    """The services started so far, by name."""

    def __init__(self, stage: Stage) -> None:
        self.stage = stage
        self.started: dict[str, Started] = {}

    def start(self, service: ComposeService, python: Path, one_shot: bool) -> Started:
        image = service.image
        if service.spec.get("build"):
            return self._build_service(service, python, one_shot)
        if image.startswith(("postgres:", "docker.io/library/postgres:")):
            return self._postgres(service)
        if "minio/minio" in image:
            return self._object_store(service, python)
        raise NotRehearsable(
            f"{COMPOSE_FILE}: service {service.name}: the rehearsal does not know the image "
            f"{image} (it knows postgres, minio and services built from a Dockerfile)"
        )

    def _postgres(self, service: ComposeService) -> Started:
        env = service.environment
        user = env.get("POSTGRES_USER") or "postgres"
        pg = postgres.start(
            self.stage.workspace,
            user=user,
            database=env.get("POSTGRES_DB") or user,
            password=env.get("POSTGRES_PASSWORD") or None,
        )
        self.stage.services.append(pg.service)
        self.stage.shared["postgres"] = pg
        started = Started(service, "postgres", pg.service.port, pg.service)
        test = service.healthcheck
        if test is not None:
            # The declared test, with the server's address given the way libpq takes it.
            bindir = postgres.binaries()
            argv = [str(bindir / test[0]) if (bindir / test[0]).exists() else test[0], *test[1:]]
            result = _proc.run(
                argv,
                env={
                    "PATH": f"{bindir}:/usr/bin:/bin",
                    "PGHOST": _proc.LOOPBACK,
                    "PGPORT": str(pg.service.port),
                },
                timeout=30,
            )
            started.healthy = result.returncode == 0
            started.substituted.append(f"healthcheck `{shlex.join(test)}` with PGHOST/PGPORT local")
        return started

    def _object_store(self, service: ComposeService, python: Path) -> Started:
        venv = images.install(
            [objectstore.SERVER_REQUIREMENT], python, self.stage.cache, "the S3-compatible server"
        )
        store = objectstore.start(venv, self.stage.workspace)
        self.stage.services.append(store.service)
        self.stage.shared["object_store"] = store
        for name in service.dns_names:
            self.stage.network.add(name, 9000, store.port)
        # MinIO's healthcheck (mc) is no part of the stand-in: the server answering stands for it.
        return Started(service, "object-store", store.port, store.service, healthy=True)

    def _build_service(self, service: ComposeService, python: Path, one_shot: bool) -> Started:
        build = service.spec["build"]
        context = Path(str(build if isinstance(build, str) else build.get("context", ".")))
        if not context.is_absolute():
            context = self.stage.project / Path(COMPOSE_FILE).parent / context
        dockerfile = context / str(
            "Dockerfile" if isinstance(build, str) else build.get("dockerfile", "Dockerfile")
        )
        image = images.read_dockerfile(dockerfile)
        uid, gid = image.user or (0, 0)
        user = service.spec.get("user")
        if user is not None:
            u, _, g = str(user).partition(":")
            if not u.isdigit() or (g and not g.isdigit()):
                raise ProjectError(f"{COMPOSE_FILE}: {service.name}: user {user} is not numeric")
            uid, gid = int(u), int(g or u)
        interpreter = images.interpreter(python_version(self.stage), uid, gid)
        venv = images.environment(image, context, interpreter, self.stage.cache)
        env = dict(image.env)
        env.update(service.environment)
        env["PATH"] = f"{venv / 'bin'}:{pod.SYSTEM_PATH}"
        env["HTTP_PROXY"] = env["http_proxy"] = self.stage.network.proxy_url
        pg = self.stage.shared.get("postgres")
        port = _proc.free_port()
        argv, substituted = localized(service.command or image.cmd, port, pg)
        root = self.stage.workspace / f"{service.name}-image"
        workdir = images.lay_out(image, context, root)
        job = pod.Pod.create(
            service.name,
            uid=uid,
            gid=gid,
            workspace=self.stage.workspace,
            workdir=workdir,
            image_workdir=image.workdir if image.workdir != "/" else "",
            env=env,
            mounts=service.volume_targets(),
            read_only_root=bool(service.spec.get("read_only")),
        )
        started = Started(service, "build", substituted=substituted)
        started.substituted.insert(0, f"uid {uid}:{gid} without a passwd entry")
        if one_shot:
            result = job.run(argv, timeout=ONE_SHOT_SECONDS)
            started.completed = result.returncode == 0
            tail = "" if started.completed else f":\n{result.stderr[-2000:]}"
            started.substituted.append(f"exit {result.returncode}{tail}")
            return started
        process = job.start(argv, log=self.stage.workspace / f"{service.name}.log", port=port)
        self.stage.services.append(process)
        started.port, started.process = port, process
        for _host, _published, target in service.ports():
            for name in service.dns_names:
                self.stage.network.add(name, target, port)
        return started


def rehearse_compose(stage: Stage) -> None:

    path = stage.file(COMPOSE_FILE)
    command = documented_command(path)
    stage.check(
        "the compose file documents how to start it",
        command is not None,
        f"a `docker compose ... up` line in the header comment of {COMPOSE_FILE}",
        "none: nobody knows from which directory, with which env file, it is started",
    )
    env_file = env_file_read(command or ["docker", "compose", "-f", COMPOSE_FILE], stage.project)
    shown_env = os.path.relpath(env_file, stage.project)
    readme_env = stage.project / ENV_FILE
    reads_readme_env = os.path.normpath(env_file) == os.path.normpath(readme_env)
    stage.check(
        "the documented command reads the .env the README has you create",
        reads_readme_env,
        f"`{shlex.join(command or [])}` run from the repository root, as Compose resolves it: "
        "--env-file, else .env in the compose file's directory",
        f"Compose reads {shown_env}, not {ENV_FILE} (copied from {ENV_EXAMPLE}): every "
        "${VAR:?} in the file stops it",
    )
    if reads_readme_env:
        # The README's step: .env.example copied to .env, its secrets filled in.
        local_env_file = stage.workspace / "dotenv"
        local_env_file.write_text(fill_env_example(stage, secrets.token_hex(12)), encoding="utf-8")
    else:
        # What a fresh checkout has there (the rehearsal never writes into the project).
        local_env_file = env_file
    python = images.interpreter(python_version(stage), 0, 0)
    try:
        config = read_compose(stage, python, local_env_file)
    except ComposeRefused as exc:
        stage.check(
            "Compose accepts the file with the env file it reads",
            False,
            f"podman-compose config of {COMPOSE_FILE} with {shown_env}",
            str(exc),
        )
        return
    services = {n: ComposeService(n, s or {}) for n, s in config["services"].items()}
    stage.check(
        "Compose accepts the file with the env file it reads",
        True,
        f"podman-compose config of {COMPOSE_FILE} with {shown_env}: services "
        + ", ".join(services),
    )
    awaited_completion = {
        dep
        for s in services.values()
        for dep, condition in s.depends_on.items()
        if condition == "service_completed_successfully"
    }
    stack = ComposeStack(stage)
    stage.shared["compose"] = stack
    order = start_order(services)
    for service in order:
        unmet = _unmet(stack, service)
        if unmet:
            stage.check(
                f"{service.name}: its depends_on conditions hold",
                False,
                ", ".join(f"{d}: {c}" for d, c in service.depends_on.items()),
                "; ".join(unmet),
            )
            return
        started = stack.start(service, python, service.name in awaited_completion)
        stack.started[service.name] = started
        if started.kind == "object-store":
            stage.check(
                f"{service.name}: the S3 API answers",
                True,
                f"moto's S3 server stands for the image {service.image} (MinIO is no PyPI or "
                f"Debian package), reached as {', '.join(service.dns_names)}:9000; its "
                "healthcheck is not run (the server answering stands for it)",
            )
        elif started.healthy is not None:
            stage.check(
                f"{service.name}: its healthcheck passes",
                started.healthy,
                f"{'; '.join(started.substituted)}",
                "" if started.healthy else "the healthcheck failed",
            )
        if started.completed is not None:
            stage.check(
                f"{service.name}: runs to completion",
                started.completed,
                f"`{shlex.join(service.command)}` ({'; '.join(started.substituted[:1])})",
                started.substituted[-1],
            )
    _check_tracking(stage, stack, services)


def _unmet(stack: ComposeStack, service: ComposeService) -> list[str]:
    unmet = []
    for dep, condition in service.depends_on.items():
        started = stack.started.get(dep)
        if started is None:
            unmet.append(f"{dep} did not start")
        elif condition == "service_healthy" and started.healthy is None:
            unmet.append(f"{dep} has no healthcheck: Compose refuses the condition")
        elif condition == "service_healthy" and not started.healthy:
            unmet.append(f"{dep} is not healthy")
        elif condition == "service_completed_successfully" and not started.completed:
            unmet.append(f"{dep} did not complete successfully")
    return unmet


def _ask(port: int, path: str, **kwargs: Any) -> _proc.HttpAnswer:
    """An HTTP call whose failure (a time-out, a reset) is an answer to report, status 0."""
    try:
        return http_call(port, path, timeout=30, **kwargs)
    except (OSError, http.client.HTTPException) as exc:
        return _proc.HttpAnswer(0, f"no answer: {exc!r}")


def _check_tracking(stage: Stage, stack: ComposeStack, services: dict[str, ComposeService]) -> None:
    started = stack.started.get(TRACKING_SERVICE)
    if started is None or started.process is None or started.port is None:
        stage.check(
            "the tracking server is a service",
            False,
            f"a long-running service {TRACKING_SERVICE} in {COMPOSE_FILE}",
            f"services: {', '.join(services)}",
        )
        return
    service, process, port = started.service, started.process, started.port
    pg: postgres.Postgres | None = stage.shared.get("postgres")
    argv = service.command
    shown = shlex.join(argv).replace(pg.password, "***") if pg else shlex.join(argv)
    up = wait_for(process, lambda: http_call(port, "/health").status == 200, STARTUP_SECONDS)
    stage.check(
        "server starts as the compose file runs it",
        up,
        f"`{shown}` ({', '.join(started.substituted)})",
        "" if up else f"no answer on /health within {STARTUP_SECONDS} s:\n{process.log_tail()}",
    )
    if not up:
        return
    tracking_uri = str(tracking_config(stage).get("tracking_uri", ""))
    uri_host = tracking_uri.split("://", 1)[-1].split("/")[0]
    uri_name = uri_host.split(":")[0]
    target = next((t for _h, _p, t in service.ports()), None)
    published = [(h, p) for h, p, _t in service.ports()]
    stage.check(
        "the tracking URI names the server on the stack's network",
        uri_name in service.dns_names and uri_host.endswith(f":{target}"),
        f"config/experiment-tracking.json tracking_uri {tracking_uri} against the names "
        f"Compose's DNS gives {TRACKING_SERVICE} ({', '.join(service.dns_names)}) and its port",
        f"{uri_host} does not resolve to the server on the stack's network",
    )
    hosts = [f"{n}:{target}" for n in service.dns_names]
    hosts += [f"{'localhost' if h in ('127.0.0.1', '0.0.0.0') else h}:{p}" for h, p in published]
    hosts += [f"{h}:{p}" for h, p in published if h not in ("0.0.0.0", "")]
    check_clients(
        stage, "clients by the stack's names and the published port are served", port, hosts, _ask
    )
    foreign = _ask(port, API_PATH, host=FOREIGN_HOST)
    stage.check(
        "the server refuses a foreign Host header",
        foreign.status >= 400,
        f"GET {API_PATH} with Host {FOREIGN_HOST} (DNS rebinding protection)",
        f"answered {foreign.status}",
    )
    check_backend(stage, "the compose file's PostgreSQL", port, hosts[0], _ask)
    limit = service.memory_limit_mib()
    processes = _group_rss(process.process.pid)
    rss = sum(mib for mib, _ in processes)
    stage.check(
        "the server's processes fit the service's memory limit",
        limit is not None and 0 < rss <= limit,
        f"resident memory (VmRSS) of the server's {len(processes)} processes after the checks "
        f"above: {rss:.0f} MiB against deploy.resources.limits.memory "
        f"{'unset' if limit is None else f'{limit:.0f} MiB'}",
        "no memory limit: MLflow's default workers and job runner take what the host has"
        if limit is None
        else f"{rss:.0f} MiB of {limit:.0f} MiB: the container is OOM-killed\n"
        + "\n".join(f"{mib:.0f} MiB  {cmd[:160]}" for mib, cmd in processes),
    )
    artifact_root = ""
    for flag in ("--artifacts-destination", "--default-artifact-root"):
        if flag in argv[:-1]:
            artifact_root = argv[argv.index(flag) + 1]
            break
    stage.shared["tracking"] = {
        "port": port,
        "host": uri_host,
        "artifact_root": artifact_root,
        "service": process,
    }
