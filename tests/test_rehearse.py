"""``mlopsctl rehearse``: the generated default project's production half run as real processes.

The slow tests share the session's rehearsal of the default profile (``default_rehearsal`` in
tests/conftest.py, also read by tests/test_rehearse_pipeline.py): PostgreSQL, moto's S3 server
and the MLflow tracking server started as ``k8s/tracking-server.yaml`` runs it, and the project
image's entry points run as the restricted pods run them (uid 1000 without a passwd entry,
read-only root, only /tmp writable). The fast tests check the generated files for what the
rehearsal found.
"""

from __future__ import annotations

import fnmatch
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import pytest
from typer.testing import CliRunner

from mlopsctl.api import generate
from mlopsctl.cli.app import app
from mlopsctl.rehearse import Handoff, Rehearsal, entrypoints, images, manifests, postgres
from mlopsctl.rehearse.network import ClusterNetwork
from mlopsctl.rehearse.pod import SYSTEM_PATH, Pod
from mlopsctl.rehearse.runner import run_components
from mlopsctl.rehearse.stage import Stage

from .conftest import (
    DEFAULT_NAME,
    REHEARSAL_GROUP,
    explain,
    handoff,
    make_requirements,
    outside_the_rehearsal_group,
    ungrouped,
)

NAME = DEFAULT_NAME
SVC = f"{NAME}-mlflow"


@pytest.fixture
def project(default_project: Path) -> Path:
    return default_project


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


@dataclass
class _Collected:
    """What the collection check reads of a collected test."""

    nodeid: str
    fixturenames: list[str]
    group: str | None = None

    def get_closest_marker(self, name: str) -> pytest.Mark | None:
        if name != "xdist_group" or self.group is None:
            return None
        return pytest.mark.xdist_group(self.group).mark


def test_a_test_using_the_default_rehearsal_outside_its_xdist_group_is_named() -> None:
    """Such a test would rehearse the default profile again on another worker (the session
    fixture runs once per worker that needs it); collection stops naming it."""
    items = [
        _Collected("a", ["default_rehearsal"], REHEARSAL_GROUP),
        _Collected("b", ["default_rehearsal"], "rehearse-b"),
        _Collected("c", ["default_rehearsal", "tmp_path"]),
        _Collected("d", ["default_project"]),
    ]
    assert outside_the_rehearsal_group(cast(list[pytest.Item], items)) == ["b", "c"]


def test_a_grouped_test_whose_node_id_lacks_its_group_is_named() -> None:
    items = [
        _Collected(f"a@{REHEARSAL_GROUP}", ["default_rehearsal"], REHEARSAL_GROUP),
        _Collected("b", ["default_rehearsal"], REHEARSAL_GROUP),
        _Collected("c", ["default_project"]),
    ]
    assert ungrouped(cast(list[pytest.Item], items)) == ["b"]


def test_the_installed_pytest_and_xdist_run_a_group_on_one_worker(tmp_path: Path) -> None:
    """`make test`'s ``--dist loadgroup`` with the installed pytest and pytest-xdist: the tests
    of one group run on one worker (where grouping silently stops, each worker would rehearse
    the default profile)."""
    (tmp_path / "test_grouped.py").write_text(
        "import os\n"
        "import pytest\n\n"
        "@pytest.mark.xdist_group('one')\n"
        "@pytest.mark.parametrize('i', range(6))\n"
        "def test_grouped(i):\n"
        "    with open('workers.txt', 'a') as out:\n"
        "        out.write(os.environ['PYTEST_XDIST_WORKER'] + '\\n')\n"
    )
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-n",
            "2",
            "--dist",
            "loadgroup",
            "-q",
            "-p",
            "no:cacheprovider",
            "test_grouped.py",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stdout[-2000:]
    workers = (tmp_path / "workers.txt").read_text().split()
    assert len(workers) == 6
    assert len(set(workers)) == 1, workers


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
    monkeypatch.setattr("mlopsctl.rehearse.rehearse", lambda directory, **options: report)
    result = CliRunner().invoke(app, ["rehearse", str(project)])
    assert result.exit_code == code, result.output
    mark = "pass" if passed else "FAIL"
    assert f"{mark}  tracking-server: in-cluster clients are served" in result.output
    assert "checked: GET /api with Host svc:5000" in result.output
    assert ("403 Invalid Host" in result.output) is not passed
    assert f"{int(passed)} handoffs passed, {int(not passed)} failed" in result.output


@pytest.mark.slow
@pytest.mark.xdist_group("rehearse")
def test_every_handoff_of_the_default_profile_passes(
    default_rehearsal: tuple[Stage, Rehearsal],
) -> None:
    _, report = default_rehearsal
    assert report.passed, explain(report)
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
def test_tracking_server_handoff(default_rehearsal: tuple[Stage, Rehearsal], name: str) -> None:
    _, report = default_rehearsal
    found = handoff(report, "tracking-server", name)
    assert found.passed, explain(report)


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
def test_entrypoint_handoff(default_rehearsal: tuple[Stage, Rehearsal], name: str) -> None:
    _, report = default_rehearsal
    assert handoff(report, "entrypoints", name).passed, explain(report)


@pytest.mark.slow
@pytest.mark.xdist_group("rehearse")
def test_the_server_command_is_the_manifests_with_only_local_substitutions(
    default_rehearsal: tuple[Stage, Rehearsal],
) -> None:
    _, report = default_rehearsal
    checked = handoff(report, "tracking-server", "server starts as the manifest runs it").checked
    assert "--allowed-hosts" in checked and "--serve-artifacts" in checked
    assert "--host 0.0.0.0 -> 127.0.0.1" in checked
    assert "without a passwd entry" in checked and "***" in checked  # the password is not shown


@pytest.mark.slow
@pytest.mark.xdist_group("rehearse")
def test_a_training_run_that_fails_part_way_leaves_the_registry_as_it_was(
    default_rehearsal: tuple[Stage, Rehearsal],
) -> None:
    stage, report = default_rehearsal
    assert report.component_passed("entrypoints"), explain(report)
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


# --- the serving handoff ---------------------------------------------------------------------


def _yaml_doc(path: Path, kind: str) -> dict[str, Any]:
    import yaml

    (doc,) = [d for d in yaml.safe_load_all(path.read_text()) if d and d["kind"] == kind]
    return dict(doc)


def _publish_module(project: Path) -> Any:
    """The generated src/publish.py, imported from the project (its top level reads only the
    project's config files; MLflow is imported where it is used)."""
    import importlib
    import sys

    sys.path.insert(0, str(project / "src"))
    try:
        for name in ("publish", "settings"):
            sys.modules.pop(name, None)
        return importlib.import_module("publish")
    finally:
        sys.path.remove(str(project / "src"))


def test_inferenceservice_names_the_projects_mlflow_runtime_on_v2(project: Path) -> None:
    """MLflow 3 logs scikit-learn models as model.skops, which KServe's scikit-learn server does
    not load: the model is served as the MLflow model it was registered as."""
    isvc = _yaml_doc(project / "k8s/inferenceservice.yaml", "InferenceService")
    model = isvc["spec"]["predictor"]["model"]
    runtime = _yaml_doc(project / "k8s/serving-runtime.yaml", "ServingRuntime")
    assert model["modelFormat"]["name"] == "mlflow"
    assert model["runtime"] == runtime["metadata"]["name"] == f"{NAME}-mlserver"
    assert model["protocolVersion"] == "v2"
    assert runtime["spec"]["protocolVersions"] == ["v2"]
    assert [f["name"] for f in runtime["spec"]["supportedModelFormats"]] == ["mlflow"]
    # The restricted profile: the only writable path is the declared emptyDir.
    assert model["securityContext"]["readOnlyRootFilesystem"] is True
    assert [m["mountPath"] for m in model["volumeMounts"]] == ["/tmp"]
    assert isvc["spec"]["predictor"]["volumes"] == [{"name": "tmp", "emptyDir": {}}]


def test_serving_runtime_matches_the_crd_and_runs_the_projects_serving_image(
    project: Path,
) -> None:
    from mlopsctl.checks.kserve import servingruntime_validator
    from mlopsctl.render import versions

    runtime = _yaml_doc(project / "k8s/serving-runtime.yaml", "ServingRuntime")
    assert list(servingruntime_validator().iter_errors(runtime)) == []
    (container,) = runtime["spec"]["containers"]
    assert container["image"] == f"registry.example.com/{NAME}/serving:3.17.2".replace(
        "3.17.2", versions()["packages"]["mlflow"]
    )
    assert container["command"] == ["mlserver", "start", "/mnt/models"]
    image = images.read_dockerfile(project / "deploy/serving/Dockerfile")
    assert image.user == (1000, 1000)
    requirements = image.requirements(project)
    # The project's own pins (the MLflow and scikit-learn that trained the model), plus MLServer.
    project_pins = (project / "requirements.txt").read_text().split()
    assert [r for r in requirements if r in project_pins] == [r for r in project_pins if "==" in r]
    pins = versions()["packages"]
    assert f"mlserver=={pins['mlserver']}" in requirements
    assert f"mlserver-mlflow=={pins['mlserver-mlflow']}" in requirements
    assert ("src/serving_runtime.py", "src/") in image.copies
    assert image.env["PYTHONPATH"] == "/app/src"


def test_validate_checks_the_serving_runtime_against_its_crd(project: Path, tmp_path: Path) -> None:
    from mlopsctl.api import validate

    assert [f.message for f in validate(project, select=["MLV109"]).findings] == []
    broken = tmp_path / "k8s"
    broken.mkdir()
    text = (project / "k8s/serving-runtime.yaml").read_text()
    (broken / "serving-runtime.yaml").write_text(
        text.replace("protocolVersions:", "protocolVersion:")
    )
    findings = validate(tmp_path, select=["MLV109"]).findings
    assert [f.check for f in findings] == ["MLV109"]
    assert "protocolVersion" in findings[0].message


def test_publish_gives_each_version_its_own_location_and_patches_the_storage_uri(
    project: Path,
) -> None:
    """The InferenceService read one fixed storageUri nothing wrote: each release is now a new
    location, and the patch publish.py sends points the InferenceService there."""
    from mlopsctl.checks.kserve import kserve_validator
    from mlopsctl.rehearse.serving import merge_patch

    publish = _publish_module(project)
    config = json.loads((project / "config/project.json").read_text())
    root = config["serving_storage_root"]
    assert root == f"s3://mlops-artifacts/{NAME}/serving"
    first, second = (publish.destination(root, NAME, v) for v in ("1", "2"))
    assert first == f"{root}/{NAME}/v1" and second != first
    isvc = _yaml_doc(project / "k8s/inferenceservice.yaml", "InferenceService")
    assert isvc["spec"]["predictor"]["model"]["storageUri"].startswith(f"{root}/")
    patched = merge_patch(isvc, publish.storage_patch(second))
    assert patched["spec"]["predictor"]["model"]["storageUri"] == second
    assert list(kserve_validator().iter_errors(patched)) == []
    assert patched["spec"]["predictor"]["model"]["runtime"] == f"{NAME}-mlserver"
    settings = publish.model_settings(NAME, "2")
    assert settings["versions"] == ["2"]
    assert settings["implementation"] == "serving_runtime.SignatureEnforcingRuntime"


def test_merge_patch_follows_rfc_7386() -> None:
    from mlopsctl.rehearse.serving import merge_patch

    target = {"a": "b", "c": {"d": "e", "f": "g"}, "l": [1]}
    assert merge_patch(target, {"a": "z", "c": {"f": None}, "l": [2]}) == {
        "a": "z",
        "c": {"d": "e"},
        "l": [2],
    }
    assert target["c"] == {"d": "e", "f": "g"}  # not changed in place


def test_a_v2_request_has_one_input_per_signature_column() -> None:
    from mlopsctl.rehearse.serving import v2_request

    request = v2_request([{"name": "f0", "type": "double"}, {"name": "n", "type": "long"}])
    assert request == {
        "inputs": [
            {"name": "f0", "shape": [2], "datatype": "FP64", "data": [0.5, 0.5]},
            {"name": "n", "shape": [2], "datatype": "INT64", "data": [1, 1]},
        ]
    }


@pytest.mark.parametrize("ci", ["github-actions", "gitlab-ci", "jenkins"])
def test_every_ci_deploy_publishes_the_champion_and_patches_the_storage_uri(
    tmp_path: Path, ci: str
) -> None:
    """Nothing moved a registered champion to where the InferenceService reads."""
    root = tmp_path / NAME
    generate(make_requirements(project_name=NAME, ci_platform=ci), root)
    workflow = {
        "github-actions": ".github/workflows/ci.yaml",
        "gitlab-ci": ".gitlab-ci.yml",
        "jenkins": "Jenkinsfile",
    }[ci]
    text = (root / workflow).read_text()
    assert "make publish" in text
    patch = "patch -f k8s/inferenceservice.yaml --type merge --patch-file storage-patch.json"
    assert patch in text
    assert text.index("apply -f k8s/") < text.rindex(patch)
    makefile = (root / "Makefile").read_text()
    assert "src/publish.py --alias $(ALIAS) --print-patch > storage-patch.json" in makefile
    assert "src/publish.py --alias $(ALIAS) --apply" in makefile


SERVING_HANDOFFS = [
    "Prometheus scrapes the port the runtime serves metrics on",
    *(
        f"{release}: {name}"
        for release in ("release 1", "release 2")
        for name in (
            "`python src/publish.py --alias champion --print-patch` succeeds",
            "the patched InferenceService matches the KServe schema",
            "storageUri names the champion's version",
            "the MLflow model is at the storageUri",
            "KServe's storage initializer downloads the storageUri",
            "the ServingRuntime runs the serving image",
            "the runtime starts as the ServingRuntime and InferenceService declare it",
            "readiness endpoint",
            "V2 model metadata names the version just published",
            "the published model is the project's sklearn model",
            "a valid V2 request gets predictions from the published version",
            "a request with an unknown column is refused with 4xx",
            "a request with a wrong type is refused with 4xx",
            "metrics endpoint",
            "the runtime's processes fit the container's memory limit",
        )
    ),
    "release 2: training again registers a new version, promoted to the alias",
    "release 2: a new storageUri, a new revision",
]


@pytest.mark.slow
@pytest.mark.xdist_group("rehearse")
@pytest.mark.parametrize("name", SERVING_HANDOFFS)
def test_serving_handoff(default_rehearsal: tuple[Stage, Rehearsal], name: str) -> None:
    _, report = default_rehearsal
    assert handoff(report, "serving", name).passed, explain(report)


@pytest.mark.slow
@pytest.mark.xdist_group("rehearse")
def test_serving_endpoint_answers_its_own_request_for_the_last_published_version(
    default_rehearsal: tuple[Stage, Rehearsal],
) -> None:
    """The contract later components read: a running runtime, the version it serves and a
    request it answers, at the URLs given."""
    import urllib.request

    from mlopsctl.rehearse.serving import ServingEndpoint

    stage, report = default_rehearsal
    assert report.component_passed("serving"), explain(report)
    endpoint = stage.shared["serving"]
    assert isinstance(endpoint, ServingEndpoint)
    state = entrypoints.registry_state(stage, NAME, ("champion",))
    assert endpoint.model_version == state["champion"]["version"] != "1"
    assert (endpoint.model_name, endpoint.protocol) == (NAME, "v2")
    request = urllib.request.Request(
        endpoint.url + endpoint.infer_path,
        data=json.dumps(endpoint.request).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        body = json.loads(answer.read())
    assert body["model_version"] == endpoint.model_version
    with urllib.request.urlopen(endpoint.metrics_url, timeout=30) as answer:
        assert answer.status == 200


@pytest.mark.slow
@pytest.mark.xdist_group("rehearse")
def test_the_serving_runtime_is_started_with_the_manifests_command_and_local_ports(
    default_rehearsal: tuple[Stage, Rehearsal],
) -> None:
    _, report = default_rehearsal
    name = "release 1: the runtime starts as the ServingRuntime and InferenceService declare it"
    checked = handoff(report, "serving", name).checked
    assert "`mlserver start /mnt/models`" in checked and "without a passwd entry" in checked
    assert (
        "MLSERVER_HTTP_PORT 8080 -> " in checked and "MLSERVER_HOST 0.0.0.0 -> 127.0.0.1" in checked
    )


def test_rehearse_help_names_every_component_in_order() -> None:
    from mlopsctl.rehearse.runner import component_names

    text = " ".join(
        CliRunner().invoke(app, ["rehearse", "--help"], terminal_width=400).output.split()
    )
    assert "Components: " + ", ".join(component_names()) + "." in text


@pytest.mark.parametrize("option", ["--only", "--skip"])
def test_rehearse_an_unknown_component_exits_2_naming_the_components(
    tmp_path: Path, option: str
) -> None:
    project = tmp_path / NAME
    generate(make_requirements(project_name=NAME), project)
    result = CliRunner().invoke(app, ["rehearse", str(project), option, "servign"])
    assert result.exit_code == 2, result.output
    assert f"{option}: no component servign" in result.output
    assert "tracking-server, compose, entrypoints, serving" in result.output


def test_a_skipped_component_is_not_run_and_what_needs_it_is_not_reached(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlopsctl.rehearse import runner

    ran: list[str] = []

    def component(name: str) -> runner.Component:
        def run(stage: Stage) -> None:
            ran.append(name)
            stage.check("ran", True, name)

        return run

    specs = [
        runner.ComponentSpec("tracking-server", component("tracking-server")),
        runner.ComponentSpec("entrypoints", component("entrypoints"), needs=("tracking-server",)),
        runner.ComponentSpec("ci", component("ci")),
    ]
    monkeypatch.setattr(runner, "_components", lambda: specs)
    stage = Stage(tmp_path, tmp_path, tmp_path, None, Rehearsal(tmp_path), {})  # type: ignore[arg-type]
    report = run_components(stage, skip=("tracking-server",))
    assert ran == ["ci"]
    assert [(h.component, h.passed) for h in report.handoffs] == [
        ("entrypoints", None),
        ("ci", True),
    ]
    assert "not reached: tracking-server" in report.handoffs[0].detail
