"""``mlopsctl rehearse``: the generated default project's production half run as real processes.

The slow tests share one rehearsal (module fixture): PostgreSQL, moto's S3 server and the MLflow
tracking server started as ``k8s/tracking-server.yaml`` runs it, and the project image's entry
points run as the restricted pods run them (uid 1000 without a passwd entry, read-only root,
only /tmp writable). The fast tests check the generated files for what the rehearsal found.
"""

from __future__ import annotations

import fnmatch
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mlopsctl.api import generate
from mlopsctl.cli.app import app
from mlopsctl.rehearse import Handoff, Rehearsal, entrypoints, images, manifests, postgres
from mlopsctl.rehearse.network import ClusterNetwork
from mlopsctl.rehearse.pod import SYSTEM_PATH, Pod
from mlopsctl.rehearse.runner import run_components, session
from mlopsctl.rehearse.stage import Stage

from .conftest import make_requirements

NAME = "rehearsed"
SVC = f"{NAME}-mlflow"


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("rehearse") / NAME
    generate(make_requirements(project_name=NAME), root)
    return root


def _allowed(args: list[str]) -> list[str]:
    assert "--allowed-hosts" in args, "the tracking server sets no allowed hosts"
    return args[args.index("--allowed-hosts") + 1].split(",")


def _matches(allowed: list[str], host: str) -> bool:
    """MLflow's rule (mlflow.server.security_utils.is_allowed_host_header)."""
    return any(fnmatch.fnmatch(host, a) if "*" in a else host == a for a in allowed)


def test_tracking_server_allows_the_service_names_in_cluster_clients_use(project: Path) -> None:
    container = manifests.container(project / "k8s/tracking-server.yaml", SVC, "mlflow")
    service = manifests.service(project / "k8s/tracking-server.yaml", SVC)
    allowed = _allowed(container.args)
    for namespace in ("staging", "production"):
        for host in service.hosts(5000, namespace):
            assert _matches(allowed, host), host
    assert _matches(allowed, f"{SVC}.team-a.svc.cluster.local:5000")
    assert _matches(allowed, "localhost:5000")  # kubectl port-forward
    for foreign in ("attacker.example:5000", f"{SVC}.attacker.example:5000", "10.0.0.3:5000"):
        assert not _matches(allowed, foreign), foreign


def test_readiness_probe_sends_the_service_name_to_a_host_checked_route(project: Path) -> None:
    container = manifests.container(project / "k8s/tracking-server.yaml", SVC, "mlflow")
    readiness = container.probes["readinessProbe"]
    # /health is exempt from MLflow's host check: a probe there stays green while clients get 403.
    assert readiness.path.startswith("/api/")
    assert _matches(_allowed(container.args), readiness.headers["Host"])
    assert container.probes["livenessProbe"].path == "/health"


# Resident memory of one MLflow 3.17 uvicorn worker, and of the `mlflow server` process that
# starts them, measured idle (ps RSS): about 245 and 250 MB.
WORKER_MIB = 250


def test_tracking_server_workers_fit_the_containers_limits(project: Path) -> None:
    """MLflow starts 4 workers unless told: more than a 1-CPU, 1 Gi container holds."""
    path = project / "k8s/tracking-server.yaml"
    container = manifests.container(path, SVC, "mlflow")
    assert "--workers" in container.args, "MLflow's default of 4 workers is left in place"
    workers = int(container.args[container.args.index("--workers") + 1])
    cpus = manifests.cpu_cores(container.limits["cpu"])
    assert 1 <= workers <= max(1, 2 * cpus), (workers, cpus)
    memory = manifests.memory_mib(container.limits["memory"])
    assert (workers + 1) * WORKER_MIB <= memory, (workers, container.limits)
    # With a database backend MLflow also starts a job runner and seven huey consumers
    # (about 1.3 GB resident) unless job execution is off.
    assert container.env.get("MLFLOW_SERVER_ENABLE_JOB_EXECUTION") == "false"


def test_backend_store_uri_names_the_driver_the_image_carries(project: Path) -> None:
    import json

    tracking = json.loads((project / "config/experiment-tracking.json").read_text())
    # SQLAlchemy 2.1 maps plain postgresql:// to psycopg 3, which the image does not install.
    assert tracking["backend_store"].startswith("postgresql+psycopg2://")
    image = images.read_dockerfile(project / "deploy/mlflow/Dockerfile")
    assert any(r.startswith("psycopg2-binary==") for r in image.requirements(project))
    compose = (project / "deploy/mlflow/docker-compose.yaml").read_text()
    assert "postgresql+psycopg2://" in compose


def test_project_image_points_home_and_reports_at_the_writable_volume(project: Path) -> None:
    image = images.read_dockerfile(project / "deploy/model/Dockerfile")
    assert image.user == (1000, 1000)
    assert image.env["HOME"].startswith("/tmp")
    assert image.env["MLOPS_OUTPUT_DIR"].startswith("/tmp/")
    pipeline = (project / "pipelines/retraining_pipeline.py").read_text()
    assert "/app/evaluation.json" not in pipeline
    assert "MLOPS_OUTPUT_DIR" in pipeline


def test_what_the_rehearsal_installs_is_documented() -> None:
    """The S3 server's requirement is one constant: the one installed and the one documented."""
    from mlopsctl.docsgen import render_all
    from mlopsctl.rehearse import objectstore, tracking

    page = render_all()["rehearse.md"]
    assert f"`{objectstore.SERVER_REQUIREMENT}`" in page
    assert "objectstore.SERVER_REQUIREMENT" in Path(tracking.__file__).read_text()
    assert "docs/rehearse.md" in CliRunner().invoke(app, ["rehearse", "--help"]).output


def test_cluster_network_resolves_every_form_of_a_service_name() -> None:
    network = ClusterNetwork()
    try:
        network.add("svc", 5000, 1234)
        for host in ("svc", "svc.ns", "svc.ns.svc", "svc.ns.svc.cluster.local", "SVC.ns.svc."):
            assert network.resolve(host, 5000) == 1234, host
        assert network.resolve("svc", 80) is None
        assert network.resolve("svc.attacker.example", 5000) is None
        assert network.resolve("other", 5000) is None
    finally:
        network.close()


def test_pod_paths_under_volumes_and_workdir_are_made_local(tmp_path: Path) -> None:
    pod = Pod.create(
        "job",
        uid=1000,
        gid=1000,
        workspace=tmp_path,
        workdir=tmp_path / "root/app",
        image_workdir="/app",
        env={},
        mounts=["/tmp", "/data-that-does-not-exist"],
        read_only_root=True,
    )
    assert pod.local("/app/src/train.py") == f"{tmp_path}/root/app/src/train.py"
    assert pod.local("/application") == "/application"
    data = pod.volume("/data-that-does-not-exist")
    assert pod.local("/data-that-does-not-exist/in.csv") == f"{data}/in.csv"
    assert pod.local("/tmp/x") == "/tmp/x"  # mounted over in the pod's namespace
    assert pod.env["HOME"] == "/"  # what container runtimes set when the image sets none


@pytest.fixture
def pod_workspace() -> Iterator[Path]:
    """A workspace the pods' uids can reach (pytest's own temporary directory is root's only)."""
    base = Path(tempfile.mkdtemp(prefix="mlopsctl-rehearse-test-", dir="/var/tmp"))
    base.chmod(0o755)
    try:
        yield base
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_audit_log_names_the_actor_of_a_uid_without_a_passwd_entry(pod_workspace: Path) -> None:
    """CI runs `src/audit.py` after a production deployment; a runner (or pod) whose uid has no
    passwd entry and sets no USER or LOGNAME still gets its entry, the actor named by uid."""
    root = pod_workspace / NAME
    generate(make_requirements(project_name=NAME, governance_level="production"), root)
    assert (root / "src/audit.py").is_file()
    for path in [root, *root.rglob("*")]:
        os.chown(path, 1000, 1000, follow_symlinks=False)  # the runner's checkout is its own
    runner = Pod.create(
        "audit",
        uid=1000,
        gid=1000,
        workspace=pod_workspace,
        workdir=root,
        image_workdir="",
        env={"PATH": SYSTEM_PATH},  # no USER, LOGNAME or CI actor variables
        mounts=[],
        read_only_root=False,
    )
    argv = ["python3", "src/audit.py", "deploy", "--version", "3", "--environment", "production"]
    result = runner.run(argv, timeout=120)
    assert result.returncode == 0, result.stderr
    (line,) = (root / "governance/audit-log.jsonl").read_text().splitlines()
    entry = json.loads(line)
    assert entry["actor"] == "uid 1000"
    assert (entry["event"], entry["version"]) == ("deploy", "3")


def test_rehearse_a_directory_that_is_no_project_exits_2(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["rehearse", str(tmp_path)])
    assert result.exit_code == 2
    assert "mlopsctl.yaml" in result.output


def test_rehearse_without_postgresql_exits_2_naming_the_package(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(postgres, "DEBIAN_BINARIES", str(tmp_path / "none/*/bin/initdb"))
    monkeypatch.setattr("mlopsctl.rehearse.pod.require_isolation", lambda: None)
    result = CliRunner().invoke(app, ["rehearse", str(project)])
    assert result.exit_code == 2, result.output
    assert "apt-get install postgresql" in result.output


def test_rehearse_as_another_user_than_root_exits_2_saying_why(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("os.geteuid", lambda: 1000)
    result = CliRunner().invoke(app, ["rehearse", str(project)])
    assert result.exit_code == 2, result.output
    assert "needs root" in result.output and "sudo mlopsctl rehearse" in result.output


@pytest.mark.parametrize(("passed", "code"), [(True, 0), (False, 1)])
def test_rehearse_reports_each_handoff_and_exits_1_on_a_failed_one(
    project: Path, monkeypatch: pytest.MonkeyPatch, passed: bool, code: int
) -> None:
    report = Rehearsal(
        project,
        [
            Handoff(
                "tracking-server",
                "in-cluster clients are served",
                passed,
                "GET /api with Host svc:5000",
                "403 Invalid Host",
            )
        ],
    )
    monkeypatch.setattr("mlopsctl.rehearse.rehearse", lambda directory, keep: report)
    result = CliRunner().invoke(app, ["rehearse", str(project)])
    assert result.exit_code == code, result.output
    mark = "pass" if passed else "FAIL"
    assert f"{mark}  tracking-server: in-cluster clients are served" in result.output
    assert "checked: GET /api with Host svc:5000" in result.output
    assert ("403 Invalid Host" in result.output) is not passed
    assert f"{int(passed)} handoffs passed, {int(not passed)} failed" in result.output


# One rehearsal of the default profile, its services kept running for the tests below.
@pytest.fixture(scope="module")
def rehearsal(project: Path) -> Iterator[tuple[Stage, Rehearsal]]:
    with session(project) as stage:
        yield stage, run_components(stage)


def _handoff(report: Rehearsal, component: str, name: str) -> Handoff:
    found = [h for h in report.handoffs if h.component == component and h.name == name]
    assert found, f"no handoff {component}: {name} in {[h.name for h in report.handoffs]}"
    return found[0]


def _explain(report: Rehearsal) -> str:
    return "\n".join(
        f"{h.passed}  {h.component}: {h.name}\n  {h.checked}\n  {h.detail[-3000:]}"
        for h in report.handoffs
        if not h.passed
    )


@pytest.mark.slow
@pytest.mark.xdist_group("rehearse")
def test_every_handoff_of_the_default_profile_passes(rehearsal: tuple[Stage, Rehearsal]) -> None:
    _, report = rehearsal
    assert report.passed, _explain(report)
    assert len(report.handoffs) >= 12


@pytest.mark.slow
@pytest.mark.xdist_group("rehearse")
@pytest.mark.parametrize(
    "name",
    [
        "server starts as the manifest runs it",
        "in-cluster clients are served",
        "readiness probe passes",
        "readiness probe fails when the server refuses clients' hosts",
        "the backend store is the manifest's PostgreSQL",
        "the server's processes fit the container's memory limit",
    ],
)
def test_tracking_server_handoff(rehearsal: tuple[Stage, Rehearsal], name: str) -> None:
    _, report = rehearsal
    handoff = _handoff(report, "tracking-server", name)
    assert handoff.passed, _explain(report)


@pytest.mark.slow
@pytest.mark.xdist_group("rehearse")
@pytest.mark.parametrize(
    "name",
    [
        "main: `python src/train.py` succeeds",
        "main: aliases only on versions of finished runs",
        "main: the model's files are in the object store under the artifact root",
        "evaluate: `python src/evaluate.py` succeeds",
        "evaluate: writes evaluation.json to a writable volume",
        "drift: `python src/drift.py` succeeds",
        "drift: writes drift-report.json to a writable volume",
    ],
)
def test_entrypoint_handoff(rehearsal: tuple[Stage, Rehearsal], name: str) -> None:
    _, report = rehearsal
    assert _handoff(report, "entrypoints", name).passed, _explain(report)


@pytest.mark.slow
@pytest.mark.xdist_group("rehearse")
def test_the_server_command_is_the_manifests_with_only_local_substitutions(
    rehearsal: tuple[Stage, Rehearsal],
) -> None:
    _, report = rehearsal
    checked = _handoff(report, "tracking-server", "server starts as the manifest runs it").checked
    assert "--allowed-hosts" in checked and "--serve-artifacts" in checked
    assert "--host 0.0.0.0 -> 127.0.0.1" in checked
    assert "without a passwd entry" in checked and "***" in checked  # the password is not shown


@pytest.mark.slow
@pytest.mark.xdist_group("rehearse")
def test_a_training_run_that_fails_part_way_leaves_the_registry_as_it_was(
    rehearsal: tuple[Stage, Rehearsal],
) -> None:
    stage, report = rehearsal
    assert report.component_passed("entrypoints"), _explain(report)
    image: entrypoints.ProjectImage = stage.shared["project_image"]
    aliases = ("champion", "challenger")
    before = entrypoints.registry_state(stage, NAME, aliases)
    # The same image with one file the run reads late missing: the run fails after training.
    broken = stage.workspace / "broken-image" / "app"
    shutil.copytree(image.workdir, broken)
    (broken / "config" / "model-registry.json").unlink()
    run = image.run(stage, "main", workdir=broken)
    assert run.result.returncode != 0
    assert "model-registry.json" in run.result.stderr
    after = entrypoints.registry_state(stage, NAME, aliases)
    assert after == before, "a failed training run changed the registry"


def test_a_base_image_the_rehearsal_does_not_know_is_not_rehearsable(tmp_path: Path) -> None:
    from mlopsctl.rehearse.errors import NotRehearsable

    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text(
        "FROM nvcr.io/nvidia/tritonserver:25.09-py3\nUSER 185\nRUN pip install x==1\n"
    )
    image = images.read_dockerfile(dockerfile)
    assert image.user == (185, 185)
    with pytest.raises(NotRehearsable, match="tritonserver"):
        image.requirements(tmp_path)
