"""The tracking stack of a project without Kubernetes (``deploy/mlflow/docker-compose.yaml``), as
the rehearsal's compose component reads it. These tests check the generated file for what the
rehearsal found; the rehearsal itself runs in tests/test_rehearse_profiles.py (on-prem)."""

from __future__ import annotations

import fnmatch
import json
from pathlib import Path
from typing import Any, cast

import pytest
import yaml

from mlopsctl.api import generate
from mlopsctl.names import resource_names
from mlopsctl.rehearse import compose
from mlopsctl.rehearse.runner import ComponentSpec, run_components
from mlopsctl.rehearse.stage import Rehearsal, Stage

from .conftest import make_requirements

NAME = "onprem"
# Resident memory of one MLflow 3.17 uvicorn worker, and of the `mlflow server` process that
# starts them, measured idle: about 250 MB each (tests/test_rehearse.py).
WORKER_MIB = 250


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("compose") / NAME
    generate(make_requirements(project_name=NAME, kubernetes=False), root)
    return root


def _services(project: Path) -> dict[str, compose.ComposeService]:
    loaded = yaml.safe_load((project / compose.COMPOSE_FILE).read_text())
    return {n: compose.ComposeService(n, s) for n, s in loaded["services"].items()}


def _allowed(argv: list[str]) -> list[str]:
    assert "--allowed-hosts" in argv, "the tracking server sets no allowed hosts"
    return argv[argv.index("--allowed-hosts") + 1].split(",")


def _matches(allowed: list[str], host: str) -> bool:
    """MLflow's rule (mlflow.server.security_utils.is_allowed_host_header)."""
    return any(fnmatch.fnmatch(host, a) if "*" in a else host == a for a in allowed)


def test_the_compose_profile_is_rehearsed_by_the_compose_component(project: Path) -> None:
    assert not (project / "k8s").exists()
    stage = Stage(project, project, project, None, Rehearsal(project), {})  # type: ignore[arg-type]
    assert compose.applies(stage)


def test_documented_command_reads_the_env_file_the_readme_has_you_create(project: Path) -> None:
    """Compose reads .env from the compose file's directory unless told: from the root, the
    README's .env (copied from .env.example) needs --env-file, or ${POSTGRES_PASSWORD:?} stops
    `docker compose up`."""
    command = compose.documented_command(project / compose.COMPOSE_FILE)
    assert command is not None and command[:2] == ["docker", "compose"]
    assert compose.env_file_read(command, project) == project / ".env"
    assert "copy `.env.example` to `.env`" in (project / "README.md").read_text()


@pytest.mark.parametrize(
    ("command", "read"),
    [
        (["docker", "compose", "-f", "deploy/mlflow/docker-compose.yaml", "up"], "deploy/mlflow"),
        (["docker", "compose", "--file=deploy/x.yaml", "up"], "deploy"),
        (["docker", "compose", "--env-file", "conf/.env", "-f", "a/b.yaml", "up"], "conf"),
        (["docker", "compose", "--project-directory", ".", "-f", "a/b.yaml", "up"], "."),
        (["docker", "compose", "up"], "deploy/mlflow"),  # the rehearsed file, from the root
    ],
)
def test_env_file_is_found_as_compose_finds_it(command: list[str], read: str) -> None:
    root = Path("/repo")
    assert compose.env_file_read(command, root).parent == root / read


def test_tracking_server_allows_the_stacks_names_and_the_published_port(project: Path) -> None:
    """MLflow >= 3.5 answers 403 to a Host it does not allow; by default it allows localhost and
    private addresses only, not the compose service names the stack's containers use."""
    mlflow = _services(project)["mlflow"]
    allowed = _allowed(mlflow.command)
    for name in mlflow.dns_names:
        assert _matches(allowed, f"{name}:5000"), name
    for host, published, _ in mlflow.ports():
        assert host == "127.0.0.1"  # published on this host only
        assert _matches(allowed, f"localhost:{published}")
        assert _matches(allowed, f"127.0.0.1:{published}")
    for foreign in ("attacker.example:5000", "mlflow.attacker.example:5000", "10.0.0.3:5000"):
        assert not _matches(allowed, foreign), foreign


def test_the_tracking_uri_names_the_server_on_the_stacks_network(project: Path) -> None:
    """The project image's jobs reach the tracking URI of config/experiment-tracking.json: its
    host must be a name Compose's DNS answers to for the mlflow service."""
    tracking = json.loads((project / "config/experiment-tracking.json").read_text())
    host = tracking["tracking_uri"].split("://")[1].split(":")[0]
    assert host == resource_names(NAME)["mlflow"]
    assert host in _services(project)["mlflow"].dns_names


def test_tracking_server_workers_fit_the_services_limits(project: Path) -> None:
    """Unbounded, MLflow starts 4 workers plus a job runner and seven huey consumers: the
    rehearsal measured 2.3 GB resident in 15 processes before the first training run."""
    mlflow = _services(project)["mlflow"]
    argv = mlflow.command
    assert "--workers" in argv, "MLflow's default of 4 workers is left in place"
    workers = int(argv[argv.index("--workers") + 1])
    limits = mlflow.spec["deploy"]["resources"]["limits"]
    assert 1 <= workers <= 2 * float(limits["cpus"])
    memory = mlflow.memory_limit_mib()
    assert memory is not None and (workers + 1) * WORKER_MIB <= memory
    assert mlflow.environment["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] == "false"


def test_the_artifact_bucket_exists_before_the_tracking_server_starts(project: Path) -> None:
    """MinIO starts with no bucket, and MLflow cannot store an artifact without one: a one-shot
    service creates it, and the tracking server waits for it to complete."""
    services = _services(project)
    bucket = resource_names(NAME)["bucket"]
    creators = [
        s
        for s in services.values()
        if s.spec.get("build") and f"create_bucket(Bucket='{bucket}')" in " ".join(s.command)
    ]
    assert len(creators) == 1, "nothing creates the artifact bucket"
    (creator,) = creators
    assert services["mlflow"].depends_on[creator.name] == "service_completed_successfully"
    assert creator.environment["AWS_ENDPOINT_URL_S3"] == "http://minio:9000"
    assert services[creator.name].depends_on["minio"] == "service_healthy"
    assert services["minio"].healthcheck is not None  # service_healthy needs one
    assert f"s3://{bucket}/" in " ".join(services["mlflow"].command)


def test_start_order_follows_depends_on(project: Path) -> None:
    order = [s.name for s in compose.start_order(_services(project))]
    assert order.index("postgres") < order.index("mlflow")
    assert order.index("minio") < order.index("create-bucket") < order.index("mlflow")


def test_compose_service_forms_are_read_as_compose_reads_them() -> None:
    service = compose.ComposeService(
        "svc",
        {
            "command": "serve --port 80",
            "environment": ["A=1", "B="],
            "depends_on": ["db"],
            "ports": ["8080:80", {"target": 90, "published": 9090, "host_ip": "127.0.0.1"}],
            "volumes": ["data:/data", "./conf:/conf:ro", {"type": "volume", "target": "/x"}],
            "tmpfs": "/run",
            "healthcheck": {"test": "curl -f localhost"},
            "networks": {"default": {"aliases": ["other"]}},
            "container_name": "fixed",
            "mem_limit": "512m",
        },
    )
    assert service.command == ["serve", "--port", "80"]
    assert service.environment == {"A": "1", "B": ""}
    assert service.depends_on == {"db": "service_started"}
    assert service.ports() == [("0.0.0.0", 8080, 80), ("127.0.0.1", 9090, 90)]
    assert service.volume_targets() == ["/data", "/x", "/run"]
    assert service.healthcheck == ["/bin/sh", "-c", "curl -f localhost"]
    assert service.dns_names == ["svc", "other", "fixed"]
    assert service.memory_limit_mib() == 512
    assert compose.ComposeService("n", {"healthcheck": {"test": ["NONE"]}}).healthcheck is None


def test_a_depends_on_cycle_is_invalid_input() -> None:
    from mlopsctl.rehearse.errors import ProjectError

    services = {
        "a": compose.ComposeService("a", {"depends_on": ["b"]}),
        "b": compose.ComposeService("b", {"depends_on": ["a"]}),
    }
    with pytest.raises(ProjectError, match="cycle"):
        compose.start_order(services)


def test_a_need_on_a_component_that_does_not_apply_is_no_need(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The entry points need the tracking server: the compose one where the project has no
    Kubernetes manifest; a need on a component that applies and failed still stops them."""
    ran: list[str] = []

    def component(name: str, passed: bool) -> Any:
        def run(stage: Stage) -> None:
            ran.append(name)
            stage.check("handoff", passed, "checked")

        return run

    def specs(compose_passes: bool) -> list[ComponentSpec]:
        return [
            ComponentSpec("k8s", component("k8s", True), applies=lambda s: False),
            ComponentSpec("compose", component("compose", compose_passes)),
            ComponentSpec("jobs", component("jobs", True), needs=("k8s", "compose")),
        ]

    for compose_passes, expected in ((True, ["compose", "jobs"]), (False, ["compose"])):
        ran.clear()
        monkeypatch.setattr(
            "mlopsctl.rehearse.runner._components", lambda cp=compose_passes: specs(cp)
        )
        stage = Stage(project, project, project, None, Rehearsal(project), {})  # type: ignore[arg-type]
        report = run_components(stage)
        assert ran == expected
        assert report.component_passed("jobs") is compose_passes


def test_the_compose_reader_the_rehearsal_installs_is_documented() -> None:
    from mlopsctl.docsgen import render_all

    page = render_all()["rehearse.md"]
    assert f"`{compose.READER_REQUIREMENT}`" in page
    assert "images.install([READER_REQUIREMENT]" in Path(compose.__file__).read_text()


def test_an_image_that_installs_as_root_and_runs_as_a_uid_is_read(tmp_path: Path) -> None:
    """`USER root` before the installs and a numeric USER last (the Spark image) is a valid
    image for a restricted pod: only the last USER is the pod's."""
    from mlopsctl.rehearse import images
    from mlopsctl.rehearse.errors import ProjectError

    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text("FROM python:3.11-slim\nUSER root\nRUN pip install x\nUSER 1000:1000\n")
    assert images.read_dockerfile(dockerfile).user == (1000, 1000)
    dockerfile.write_text("FROM python:3.11-slim\nUSER spark\n")
    with pytest.raises(ProjectError, match="numeric uid"):
        images.read_dockerfile(dockerfile)


def test_the_server_command_is_made_local_only_in_its_listen_address_port_and_postgres() -> None:
    """One rewrite for the manifest's and the compose file's server: the listen address and
    port, and (given the local PostgreSQL) the ``postgres`` service in a backend URI."""
    from types import SimpleNamespace

    from mlopsctl.rehearse import postgres
    from mlopsctl.rehearse.tracking import localized

    argv = ["mlflow", "server", "--host", "0.0.0.0", "--port", "5000"]
    argv += ["--backend-store-uri", "postgresql://u:p@postgres:5432/mlflow", "--workers", "2"]
    pg = cast(postgres.Postgres, SimpleNamespace(service=SimpleNamespace(port=6543)))
    local, changed = localized(argv, 8123, pg)
    assert local == [
        *["mlflow", "server", "--host", "127.0.0.1", "--port", "8123"],
        *["--backend-store-uri", "postgresql://u:p@127.0.0.1:6543/mlflow", "--workers", "2"],
    ]
    assert changed == [
        "--host 0.0.0.0 -> 127.0.0.1",
        "--port 5000 -> 8123",
        "postgres:5432 -> 127.0.0.1:6543",
    ]
    # Without a local PostgreSQL (the manifest's server gets its URI from the Secret) the URI
    # stays as it is; a flag that ends the command has no value to replace.
    kept, changed = localized([*argv[:-2], "-p"], 8123)
    assert kept[7] == "postgresql://u:p@postgres:5432/mlflow" and kept[-1] == "-p"
    assert changed == ["--host 0.0.0.0 -> 127.0.0.1", "--port 5000 -> 8123"]
    assert argv[3] == "0.0.0.0"  # the caller's list is not changed
