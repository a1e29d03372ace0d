"""The Kubeflow retraining pipeline run with the KFP local runner (``mlopsctl.rehearse.pipeline``).

The fast tests compile the generated pipeline and read what its pods would run; the slow ones
read the session's rehearsal of the default profile (``default_rehearsal`` in tests/conftest.py,
shared with tests/test_rehearse.py), whose pipeline component runs after the tracking server and
the entry points, in the project image's restricted pod.
"""

from __future__ import annotations

import ast
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlopsctl import names
from mlopsctl.api import generate, validate
from mlopsctl.rehearse import Handoff, Rehearsal, images, manifests, pipeline, runner
from mlopsctl.rehearse._kfp_local import _relocate, secret_env
from mlopsctl.rehearse.entrypoints import ProjectImage, registry_state
from mlopsctl.rehearse.stage import Stage
from mlopsctl.render import versions
from tests.generated_cases import CASES

from .conftest import DEFAULT_NAME, explain, handoff, make_requirements

NAME = DEFAULT_NAME


@pytest.fixture
def project(default_project: Path) -> Path:
    return default_project


def _compiled(root: Path, tmp: Path) -> list[dict[str, Any]]:
    """The compiler's YAML: the pipeline spec, then the platform spec when there is one."""
    work = tmp / "retraining_pipeline.py"
    shutil.copy(root / pipeline.PIPELINE, work)
    run = subprocess.run([sys.executable, str(work)], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    return list(yaml.safe_load_all(work.with_suffix(".yaml").read_text()))


def _compile(root: Path, tmp: Path) -> dict[str, Any]:
    return _compiled(root, tmp)[0]


def _platform(root: Path, tmp: Path) -> dict[str, Any]:
    """The compiled platform spec (kubernetes config per executor)."""
    docs = _compiled(root, tmp)
    assert len(docs) == 2 and "platforms" in docs[1], docs[1:]
    return docs[1]


def _executors(ir: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        name: {
            "image": e["container"]["image"],
            "command": e["container"].get("command", []),
            "args": e["container"].get("args", []),
        }
        for name, e in ir["deploymentSpec"]["executors"].items()
    }


def test_the_steps_install_nothing_when_their_pods_start(project: Path, tmp_path: Path) -> None:
    """A step's pod has a read-only root and no route to a package index: kfp comes with the
    project image, at the version requirements-pipeline.txt pins, instead of `pip install kfp`
    at the start of every step."""
    executors = _executors(_compile(project, tmp_path))
    assert pipeline.pip_installs(executors) == []
    image = images.read_dockerfile(project / "deploy/model/Dockerfile")
    reference = f"registry.example.com/{NAME}/model:{versions()['packages']['mlflow']}"
    assert {e["image"] for e in executors.values()} == {reference}
    kfp = f"kfp=={versions()['packages']['kfp']}"
    kubernetes = f"kfp-kubernetes=={versions()['packages']['kfp-kubernetes']}"
    assert (project / "requirements-pipeline.txt").read_text().split() == [kfp, kubernetes]
    assert kfp in image.requirements(project)
    assert kubernetes in image.requirements(project)
    for executor in executors.values():
        assert "kfp.dsl.executor_main" in " ".join(executor["command"])


def test_the_rehearsal_finds_steps_that_install_kfp_at_start(project: Path, tmp_path: Path) -> None:
    """What the pipeline did before: kfp's default, `pip install kfp` in every step's command."""
    source = (project / pipeline.PIPELINE).read_text()
    assert source.count(", install_kfp_package=False") == 4
    old = tmp_path / "old"
    (old / "pipelines").mkdir(parents=True)
    (old / pipeline.PIPELINE).write_text(source.replace(", install_kfp_package=False", ""))
    executors = _executors(_compile(old, tmp_path))
    assert pipeline.pip_installs(executors) == sorted(executors)


@pytest.mark.parametrize(
    "case", [n for n in CASES if CASES[n].stack.get("orchestration") == "kubeflow"]
)
def test_every_project_image_a_pipeline_runs_in_carries_kfp(case: str, tmp_path: Path) -> None:
    root = tmp_path / case
    generate(CASES[case].design(), root)
    dockerfile = (root / "deploy/model/Dockerfile").read_text()
    (install,) = re.findall(r"^RUN pip install .*$", dockerfile, re.MULTILINE)
    assert "-r requirements-pipeline.txt" in install
    assert re.search(r"^COPY .*requirements-pipeline\.txt", dockerfile, re.MULTILINE)
    pins = (root / "requirements-pipeline.txt").read_text().split()
    assert f"kfp=={versions()['packages']['kfp']}" in pins
    assert f"kfp-kubernetes=={versions()['packages']['kfp-kubernetes']}" in pins


def test_the_challenger_wins_branch_publishes_the_champion(project: Path, tmp_path: Path) -> None:
    """The old deploy step set an annotation that never changed, so no new revision appeared: the
    branch now runs src/publish.py in the project image, with the arguments it is given."""
    ir = _compile(project, tmp_path)
    tasks = ir["root"]["dag"]["tasks"]
    (branch,) = [t for t in tasks.values() if "triggerPolicy" in t]
    assert "evaluate" in branch["triggerPolicy"]["condition"]
    inner = ir["components"][branch["componentRef"]["name"]]["dag"]["tasks"]
    assert list(inner) == ["publish"]
    executor = _executors(ir)["exec-publish"]
    program = " ".join(executor["command"])
    assert "/app/src/publish.py" in program and "*publish_args" in program
    assert "kubectl" not in json.dumps(ir) and "annotate" not in program
    defaults = ir["root"]["inputDefinitions"]["parameters"]
    assert defaults["publish_args"]["defaultValue"] == ["--alias", "champion", "--apply"]
    assert defaults["tracking_uri"]["defaultValue"] == f"http://{NAME}-mlflow:5000"


def test_the_compiled_pipeline_passes_validate(project: Path, tmp_path: Path) -> None:
    """KFP's own placeholders (`{{$}}`, `{{$.inputs.parameters['x']}}`) in the compiled spec are
    no unrendered template markers."""
    root = tmp_path / NAME
    shutil.copytree(project, root)
    run = subprocess.run(
        [sys.executable, str(root / pipeline.PIPELINE)], capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stderr
    compiled = root / "pipelines/retraining_pipeline.yaml"
    assert "{{$}}" in compiled.read_text()
    report = validate(root)
    assert report.ok, [(f.path, f.check, f.message) for f in report.findings]
    # A Jinja marker left in the same file is still one.
    compiled.write_text(
        compiled.read_text().replace("pipelineInfo:", "x: '{{ name }}'\npipelineInfo:")
    )
    findings = validate(root, select=["MLV002"]).findings
    assert [(f.path, f.check) for f in findings] == [
        ("pipelines/retraining_pipeline.yaml", "MLV002")
    ]


def _tracking_secret_env(root: Path) -> dict[str, tuple[str, str]]:
    """variable -> (Secret, key) of the tracking server's container in k8s/tracking-server.yaml."""
    workload = names.resource_names(NAME)["mlflow"]
    return manifests.container(root / "k8s/tracking-server.yaml", workload, "mlflow").secret_env


def test_the_steps_take_the_store_credentials_from_the_tracking_servers_secret(
    project: Path, tmp_path: Path
) -> None:
    """In the cluster nothing injects the store's credentials: the compiled platform spec maps
    the tracking server's Secret (the one k8s/tracking-server.yaml reads) to the environment of
    the steps that reach the store, the same variables for the same keys, never the database
    URI; the tracking URI stays a plain parameter."""
    executors = _platform(project, tmp_path)["platforms"]["kubernetes"]["deploymentSpec"][
        "executors"
    ]
    assert set(executors) == {"exec-train", "exec-evaluate", "exec-publish"}
    server = _tracking_secret_env(project)
    for name, config in executors.items():
        (item,) = config["secretAsEnv"]
        assert item["secretName"] == f"{NAME}-mlflow" == names.resource_names(NAME)["secret_mlflow"]
        assert item["secretNameParameter"] == {"runtimeValue": {"constant": f"{NAME}-mlflow"}}
        assert not item.get("optional")
        mapped = {
            pair["envVar"]: (item["secretName"], pair["secretKey"]) for pair in item["keyToEnv"]
        }
        assert mapped == {v: server[v] for v in pipeline.PUBLISH_STORE_ENV}, name
        assert "backend-store-uri" not in {key for _, key in mapped.values()}
    ir = _compile(project, tmp_path)
    defaults = ir["root"]["inputDefinitions"]["parameters"]
    assert defaults["tracking_uri"]["defaultValue"] == names.resource_names(NAME)["tracking_uri"]


def test_the_local_driver_gives_each_step_the_secret_keys_it_maps(
    project: Path, tmp_path: Path
) -> None:
    """kfp.local ignores the platform config: the rehearsal's driver does what the kubelet does
    with it, and a Secret or key that does not exist keeps the step from starting."""
    platform = _platform(project, tmp_path)
    secret = {
        "backend-store-uri": "postgresql+psycopg2://u:p@db/mlflow",
        "s3-endpoint-url": "http://store:9000",
        "aws-access-key-id": "id",
        "aws-secret-access-key": "key",
    }
    env, sources, problems = secret_env(platform, {f"{NAME}-mlflow": secret})
    assert problems == {}
    assert env["exec-publish"] == {
        "MLFLOW_S3_ENDPOINT_URL": "http://store:9000",
        "AWS_ACCESS_KEY_ID": "id",
        "AWS_SECRET_ACCESS_KEY": "key",
    }
    assert "exec-validate-data" not in env
    assert sources["exec-train"]["AWS_ACCESS_KEY_ID"] == f"{NAME}-mlflow/aws-access-key-id"
    without_key = {k: v for k, v in secret.items() if k != "aws-secret-access-key"}
    _, _, problems = secret_env(platform, {f"{NAME}-mlflow": without_key})
    assert problems["exec-publish"] == [
        f"AWS_SECRET_ACCESS_KEY: no key 'aws-secret-access-key' of '{NAME}-mlflow'"
    ]
    _, _, problems = secret_env(platform, {"other": secret})
    assert set(problems) == {"exec-train", "exec-evaluate", "exec-publish"}
    assert problems["exec-train"][0] == f"MLFLOW_S3_ENDPOINT_URL: no Secret '{NAME}-mlflow'"


def _documents(path: Path) -> dict[str, dict[str, Any]]:
    return {doc["kind"]: doc for doc in yaml.safe_load_all(path.read_text()) if doc}


def _pipeline_constant(root: Path, name: str) -> Any:
    tree = ast.parse((root / pipeline.PIPELINE).read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and [getattr(t, "id", "") for t in node.targets] == [name]:
            return ast.literal_eval(node.value)
    raise AssertionError(f"{pipeline.PIPELINE} sets no {name}")


def _allows(rules: list[dict[str, Any]], verb: str, group: str, resource: str, name: str) -> bool:
    """Whether a Role's rules allow one request (RBAC: any rule matching all four)."""
    return any(
        verb in r.get("verbs", [])
        and group in r.get("apiGroups", [])
        and resource in r.get("resources", [])
        and (not r.get("resourceNames") or name in r["resourceNames"])
        for r in rules
    )


def _publish_request(root: Path) -> tuple[str, str]:
    """The method and URL src/publish.py --apply sends from a pod (its in_cluster_request)."""
    program = (
        "import json, sys; sys.path.insert(0, 'src'); import publish; "
        "r = publish.in_cluster_request(publish.CONFIG['inferenceservice'], "
        "publish.storage_patch('s3://b/m/v1'), 'ns', 'api', '443', 't'); "
        "print(json.dumps([r.get_method(), r.full_url]))"
    )
    run = subprocess.run(
        [sys.executable, "-c", program], cwd=root, capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 0, run.stderr
    method, url = json.loads(run.stdout)
    return str(method), str(url)


def test_the_pipeline_runs_identity_may_patch_only_its_inferenceservice(project: Path) -> None:
    """Least privilege: the Role the pipeline's service account is bound to grants get and
    patch on the project's InferenceService and nothing else; the request src/publish.py sends
    from the pipeline's pod is one it allows."""
    docs = _documents(project / "k8s/pipeline-access.yaml")
    assert set(docs) == {"ServiceAccount", "Role", "RoleBinding"}
    account, role, binding = docs["ServiceAccount"], docs["Role"], docs["RoleBinding"]
    isvc = yaml.safe_load((project / "k8s/inferenceservice.yaml").read_text())["metadata"]["name"]
    config = json.loads((project / "config/project.json").read_text())
    assert isvc == config["inferenceservice"] == NAME
    assert role["rules"] == [
        {
            "apiGroups": ["serving.kserve.io"],
            "resources": ["inferenceservices"],
            "resourceNames": [isvc],
            "verbs": ["get", "patch"],
        }
    ]
    assert "namespace" not in role["metadata"]  # the namespace k8s/ is applied to
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": role["metadata"]["name"],
    }
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": account["metadata"]["name"]}]
    assert account["automountServiceAccountToken"] is True  # publish.py reads the token
    assert _pipeline_constant(project, "SERVICE_ACCOUNT") == account["metadata"]["name"]
    method, url = _publish_request(project)
    assert method == "PATCH"
    match = re.fullmatch(r"https://api:443/apis/([^/]+)/[^/]+/namespaces/ns/([^/]+)/([^/]+)", url)
    assert match, url
    group, resource, name = match.groups()
    assert _allows(role["rules"], "patch", group, resource, name)
    for verb in ("create", "delete", "update", "list", "watch", "deletecollection"):
        assert not _allows(role["rules"], verb, group, resource, name), verb
    assert not _allows(role["rules"], "patch", group, resource, f"{name}-other")
    assert not _allows(role["rules"], "get", "", "secrets", name)


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_pipeline_access_exists_exactly_where_the_pipeline_publishes(
    case: str, tmp_path: Path
) -> None:
    """Only a pipeline with a publish step (KServe serving the project's runtime) runs as a
    service account that may patch an InferenceService."""
    root = tmp_path / case
    generate(CASES[case].design(), root)
    access = root / "k8s/pipeline-access.yaml"
    has_pipeline = (root / pipeline.PIPELINE).is_file()
    publishes = has_pipeline and (root / pipeline.PUBLISH).is_file()
    assert access.is_file() == publishes
    source = (root / pipeline.PIPELINE).read_text() if has_pipeline else ""
    assert ("SERVICE_ACCOUNT = " in source) == publishes
    if has_pipeline:  # its steps read the store's keys from a Secret the manifests define
        tracking = _documents(root / "k8s/tracking-server.yaml")["Deployment"]
        (container,) = tracking["spec"]["template"]["spec"]["containers"]
        read = {
            (e["valueFrom"]["secretKeyRef"]["name"], e["valueFrom"]["secretKeyRef"]["key"])
            for e in container["env"]
            if "valueFrom" in e
        }
        secret = _pipeline_constant(root, "STORE_CREDENTIALS")
        keys = _pipeline_constant(root, "STORE_KEYS")
        assert {(secret, key) for key, _variable in keys} <= read
    assert ("k8s/pipeline-access.yaml" in (root / "README.md").read_text()) == publishes
    if publishes:
        (rule,) = _documents(access)["Role"]["rules"]
        assert rule["verbs"] == ["get", "patch"] and rule["resources"] == ["inferenceservices"]


def test_a_broken_pipeline_role_is_a_schema_finding(project: Path, tmp_path: Path) -> None:
    """k8s/pipeline-access.yaml is checked by MLV101 like every manifest: a misspelt field of
    the Role is a finding there."""
    root = tmp_path / NAME
    shutil.copytree(project, root)
    access = root / "k8s/pipeline-access.yaml"
    assert validate(root, select=["MLV101"]).ok
    access.write_text(access.read_text().replace("    verbs: [", "    verb: ["))
    findings = validate(root, select=["MLV101"]).findings
    assert {(f.path, f.check) for f in findings} == {("k8s/pipeline-access.yaml", "MLV101")}
    assert any("'verbs' is a required property" in f.message for f in findings)


def test_image_paths_in_a_step_are_pointed_at_the_local_workdir() -> None:
    paths = {"/app": "/var/tmp/w/model-image/app"}
    program = 'subprocess.run(["python", "/app/src/train.py"]); sys.path.insert(0, "/app/src")'
    assert _relocate(program, paths) == (
        'subprocess.run(["python", "/var/tmp/w/model-image/app/src/train.py"]); '
        'sys.path.insert(0, "/var/tmp/w/model-image/app/src")'
    )
    assert _relocate("/app", paths) == "/var/tmp/w/model-image/app"
    for unchanged in ("/application/x", "/srv/app/x", "my/app/x", "/tmp/outputs"):
        assert _relocate(unchanged, paths) == unchanged


def test_the_pipeline_runs_after_the_entry_points_it_needs() -> None:
    specs = {spec.name: spec for spec in runner._components()}
    assert specs["pipeline"].needs == ("tracking-server", "entrypoints")
    names = list(specs)
    assert names.index("pipeline") > names.index("entrypoints")


def test_a_project_without_the_pipeline_does_not_rehearse_it(tmp_path: Path) -> None:
    root = tmp_path / "batch"
    generate(make_requirements(project_name="batch", kubernetes=False), root)
    stage = Stage(root, tmp_path, tmp_path, None, Rehearsal(root), {})  # type: ignore[arg-type]
    assert not (root / pipeline.PIPELINE).exists()
    assert not pipeline.applies(stage)


def _handoff(report: Rehearsal, name: str) -> Handoff:
    return handoff(report, "pipeline", name)


@pytest.mark.slow
@pytest.mark.xdist_group("rehearse")
@pytest.mark.parametrize(
    "name",
    [
        "the steps install nothing when their pods start",
        "the steps get the object store's credentials from the manifests' Secret",
        "the pipeline runs with the KFP local runner",
        "each step succeeded, in order",
        "the pipeline run registered a new model version",
        "the challenger-wins branch ran or was skipped as evaluation.json decided",
        "the run's artifacts are in the object store",
    ],
)
def test_pipeline_handoff(default_rehearsal: tuple[Stage, Rehearsal], name: str) -> None:
    _, report = default_rehearsal
    assert _handoff(report, name).passed, explain(report)


@pytest.mark.slow
@pytest.mark.xdist_group("rehearse")
def test_the_publish_handoff_is_not_reached_without_the_publish_script(
    default_rehearsal: tuple[Stage, Rehearsal],
) -> None:
    stage, report = default_rehearsal
    found = [h for h in report.handoffs if h.name == "the publish step runs src/publish.py"]
    if (stage.project / pipeline.PUBLISH).is_file():
        # Reported only when the challenger won; then it must have passed.
        assert all(h.passed for h in found), explain(report)
    else:
        (reported,) = found
        assert reported.passed is None
        assert reported.detail == f"not reached: the project has no {pipeline.PUBLISH}"


@pytest.mark.slow
@pytest.mark.xdist_group("rehearse")
def test_the_pipeline_reaches_the_server_by_its_own_default(
    default_rehearsal: tuple[Stage, Rehearsal],
) -> None:
    """The pod gets no MLFLOW_TRACKING_URI: the steps use the pipeline's tracking_uri default,
    the Service name the cluster network routes to the rehearsed server."""
    _, report = default_rehearsal
    checked = _handoff(report, "the pipeline runs with the KFP local runner").checked
    assert "no MLFLOW_TRACKING_URI" in checked and "without a passwd entry" in checked


def _image_copy(stage: Stage, image: ProjectImage, name: str) -> Path:
    copy = stage.workspace / name / "app"
    shutil.copytree(image.workdir, copy)
    for path in [copy.parent, *copy.parent.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    return copy


# Stands for src/publish.py: records how the publish step called it.
_PUBLISH_STUB = """import json, os, sys
os.makedirs("/tmp/outputs", exist_ok=True)
store = ("MLFLOW_S3_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
with open("/tmp/outputs/published.json", "w") as f:
    json.dump({"argv": sys.argv[1:], "tracking_uri": os.environ.get("MLFLOW_TRACKING_URI"),
               "store": {k: os.environ.get(k) for k in store}}, f)
"""


@pytest.mark.slow
@pytest.mark.xdist_group("rehearse")
def test_a_challenger_that_wins_is_published(default_rehearsal: tuple[Stage, Rehearsal]) -> None:
    """The same image with a gate every new version passes (min_improvement -1): the branch runs
    the publish step, which calls src/publish.py with the pipeline's publish arguments."""
    stage, report = default_rehearsal
    assert report.component_passed("entrypoints"), explain(report)
    image: ProjectImage = stage.shared["project_image"]
    copy = _image_copy(stage, image, "winning-image")
    config = json.loads((copy / "config/project.json").read_text())
    config["min_improvement"] = -1.0
    (copy / "config/project.json").write_text(json.dumps(config))
    (copy / pipeline.PUBLISH).write_text(_PUBLISH_STUB)
    before = registry_state(stage, NAME, ("champion", "challenger"))
    run = pipeline.run_pipeline(stage, image, workdir=copy)
    assert run.error is None, run.output()
    assert run.steps == ["validate-data", "train", "evaluate", "publish"], run.output()
    assert all(t["status"] == "SUCCESS" for t in run.tasks), run.output()
    evaluation = run.evaluation()
    assert evaluation is not None and evaluation["promoted"] is True
    after = registry_state(stage, NAME, ("champion", "challenger"))
    assert after["champion"]["version"] == after["challenger"]["version"]
    assert after["champion"]["version"] != before["champion"]["version"]
    published = json.loads((run.pod.volume("/tmp") / "outputs/published.json").read_text())
    # The store's credentials reach the step only through the pipeline's secretAsEnv: the pod
    # itself gets none, and the values are the tracking server's Secret's.
    secret = pipeline.cluster_secrets(stage)[f"{NAME}-mlflow"]
    assert published == {
        "argv": ["--alias", "champion", "--apply"],
        "tracking_uri": f"http://{NAME}-mlflow:5000",
        "store": {
            "MLFLOW_S3_ENDPOINT_URL": secret["s3-endpoint-url"],
            "AWS_ACCESS_KEY_ID": secret["aws-access-key-id"],
            "AWS_SECRET_ACCESS_KEY": secret["aws-secret-access-key"],
        },
    }
    assert not any(k.startswith("AWS_") for k in image.env)
