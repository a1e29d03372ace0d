"""Seldon decisions: Seldon Core v2 Server and Model resources, checked by MLV112 (and by the
cluster's own CRDs through --crd, MLV103); other decisions keep their serving files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from mlopsctl.api import generate, load_requirements
from mlopsctl.checks import validate
from mlopsctl.names import resource_names
from mlopsctl.requirements import Requirements

PROJECT = "demo"
SELDON = "k8s/seldon.yaml"


def _project(dest: Path, sets: list[str]) -> Path:
    answers = Requirements().model_dump(mode="json", exclude_none=True)
    answers["project_name"] = PROJECT
    generate(load_requirements(answers, sets=sets), dest)
    return dest


@pytest.fixture(scope="module")
def seldon_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _project(tmp_path_factory.mktemp("seldon") / PROJECT, ["model_server=seldon"])


def _docs(path: Path) -> dict[str, dict]:  # type: ignore[type-arg]
    return {d["kind"]: d for d in yaml.safe_load_all(path.read_text()) if d}


def test_a_seldon_decision_serves_with_a_server_and_a_model_sized_by_the_design(
    seldon_project: Path,
) -> None:
    design = json.loads((seldon_project / ".mlopsctl/design.json").read_text())
    assert design["stack"]["serving"] == "seldon" and design["components"]["seldon"]
    assert not design["components"]["k8s_deployment"] and not design["components"]["kserve"]
    names = resource_names(PROJECT)
    sizing = design["sizing"]
    k8s = sorted(p.name for p in (seldon_project / "k8s").iterdir())
    assert k8s == ["seldon.yaml", "serving-access.yaml", "tracking-server.yaml"]
    docs = _docs(seldon_project / SELDON)
    assert sorted(docs) == ["Model", "Server"]
    server, model = docs["Server"], docs["Model"]
    assert server["apiVersion"] == model["apiVersion"] == "mlops.seldon.io/v1alpha1"
    assert server["spec"]["serverConfig"] == "mlserver"
    assert (server["spec"]["replicas"], server["spec"]["maxReplicas"]) == (
        sizing["min_replicas"],
        sizing["max_replicas"],
    )
    (container,) = server["spec"]["podSpec"]["containers"]
    assert container["name"] == "mlserver"
    assert container["resources"] == {
        "requests": {"cpu": sizing["cpu_request"], "memory": sizing["memory_request"]},
        "limits": {"cpu": sizing["cpu_limit"], "memory": sizing["memory_limit"]},
    }
    assert server["spec"]["podSpec"]["serviceAccountName"] == names["serving_account"]
    assert model["spec"] == {
        "storageUri": names["storage_uri"],
        "secretName": names["secret_storage_rclone"],
        "requirements": ["mlflow"],
        "server": server["metadata"]["name"],
        "memory": sizing["memory_request"],
        "replicas": sizing["min_replicas"],
        "minReplicas": sizing["min_replicas"],
        "maxReplicas": sizing["max_replicas"],
    }
    readme = (seldon_project / "README.md").read_text()
    assert "Seldon Core v2 Server (MLServer" in readme
    assert "model Deployment/Service/HPA" not in readme


def test_the_generated_seldon_resources_pass_validate(seldon_project: Path) -> None:
    report = validate(seldon_project)
    assert report.findings == []
    assert not [n for n in report.notes if "mlops.seldon.io" in n.message]


def _broken(seldon_project: Path, tmp_path: Path, old: str, new: str) -> Path:
    text = (seldon_project / SELDON).read_text()
    assert text.count(old) == 1
    (tmp_path / "k8s").mkdir()
    (tmp_path / SELDON).write_text(text.replace(old, new))
    return tmp_path


def _line(path: Path, text: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if text in line)


def _spec_line(path: Path, kind: str) -> int:
    """The line of the `spec:` of the document of ``kind`` (missing fields are reported there)."""
    lines = path.read_text().splitlines()
    start = lines.index(f"kind: {kind}")
    return lines.index("spec:", start) + 1


STORAGE_URI = f'  storageUri: "{resource_names(PROJECT)["storage_uri"]}"\n'


@pytest.mark.parametrize(
    ("old", "new", "kind", "at", "message"),
    [
        (
            STORAGE_URI,
            "",
            "Model",
            None,
            f"Model {PROJECT}: Seldon Model schema: spec: 'storageUri' is a required property",
        ),
        (
            '  memory: "768Mi"\n  replicas',
            "  memory: [768]\n  replicas",
            "Model",
            "  memory: [768]",
            f"Model {PROJECT}: Seldon Model schema: spec.memory: [768] matches none of the "
            "allowed forms",
        ),
        (
            "  serverConfig: mlserver\n",
            "",
            "Server",
            None,
            f"Server {PROJECT}-mlserver: Seldon Server schema: spec: 'serverConfig' is a required "
            "property",
        ),
        (
            "  serverConfig: mlserver\n",
            '  serverConfig: mlserver\n  disableAutoUpdate: "no"\n',
            "Server",
            '  disableAutoUpdate: "no"',
            f'Server {PROJECT}-mlserver: Seldon Server schema: spec.disableAutoUpdate: "no" is '
            "not of type 'boolean'",
        ),
    ],
    ids=["model-without-storageUri", "model-memory-type", "server-without-config", "server-type"],
)
def test_an_invalid_seldon_resource_is_reported_by_mlv112(
    seldon_project: Path,
    tmp_path: Path,
    old: str,
    new: str,
    kind: str,
    at: str | None,
    message: str,
) -> None:
    root = _broken(seldon_project, tmp_path, old, new)
    report = validate(root, select=["MLV112"])
    line = _line(root / SELDON, at) if at else _spec_line(root / SELDON, kind)
    assert [(f.check, f.path, f.line, f.message) for f in report.findings] == [
        ("MLV112", SELDON, line, message)
    ]


def test_a_seldon_resource_of_another_api_version_is_named(
    seldon_project: Path, tmp_path: Path
) -> None:
    root = _broken(
        seldon_project,
        tmp_path,
        "apiVersion: mlops.seldon.io/v1alpha1\nkind: Server",
        "apiVersion: mlops.seldon.io/v1\nkind: Server",
    )
    report = validate(root, select=["MLV112"])
    assert [(f.check, f.path, f.line, f.message) for f in report.findings] == [
        (
            "MLV112",
            SELDON,
            _line(root / SELDON, "apiVersion: mlops.seldon.io/v1"),
            f"Server {PROJECT}-mlserver: apiVersion mlops.seldon.io/v1; Seldon Core v2 serves "
            "Server as mlops.seldon.io/v1alpha1",
        )
    ]


def test_a_seldon_canary_is_an_experiment_over_two_models(tmp_path: Path) -> None:
    dest = _project(tmp_path / PROJECT, ["model_server=seldon", "governance_level=production"])
    design = json.loads((dest / ".mlopsctl/design.json").read_text())
    assert design["components"]["canary"] and not design["components"]["shadow"]
    names = resource_names(PROJECT)
    docs = [d for d in yaml.safe_load_all((dest / SELDON).read_text()) if d]
    assert [d["kind"] for d in docs] == ["Server", "Model", "Model", "Experiment"]
    server, champion, canary, experiment = docs
    sizing = design["sizing"]
    # one Server replica per champion replica, and one for the canary
    assert server["spec"]["replicas"] == sizing["min_replicas"] + 1
    assert server["spec"]["maxReplicas"] == sizing["max_replicas"] + 1
    assert champion["metadata"]["name"] == PROJECT
    assert canary["metadata"]["name"] == names["canary"]
    assert canary["spec"]["replicas"] == canary["spec"]["maxReplicas"] == 1
    assert canary["spec"]["requirements"] == champion["spec"]["requirements"] == ["mlflow"]
    percent = design["sizing"]["canary_percent"] or design["sizing"]["rollout_steps"][0]
    assert 0 < percent < 100
    assert experiment["spec"] == {
        "default": PROJECT,
        "candidates": [
            {"name": PROJECT, "weight": 100 - percent},
            {"name": names["canary"], "weight": percent},
        ],
    }
    assert validate(dest).findings == []


@pytest.mark.parametrize(
    ("sets", "serving"),
    [([], "inferenceservice.yaml"), (["deployment_target=batch"], None)],
)
def test_decisions_without_seldon_have_no_seldon_resources(
    tmp_path: Path, sets: list[str], serving: str | None
) -> None:
    dest = _project(tmp_path / PROJECT, sets)
    design = json.loads((dest / ".mlopsctl/design.json").read_text())
    assert design["components"]["seldon"] is False
    assert not (dest / SELDON).exists()
    assert "mlops.seldon.io" not in "".join(p.read_text() for p in (dest / "k8s").glob("*.yaml"))
    if serving:
        assert (dest / "k8s" / serving).is_file()


def test_an_experiment_without_candidates_is_reported_by_mlv112(tmp_path: Path) -> None:
    (tmp_path / "k8s").mkdir()
    (tmp_path / SELDON).write_text(
        "apiVersion: mlops.seldon.io/v1alpha1\nkind: Experiment\nmetadata:\n  name: demo-rollout\n"
        "spec:\n  default: demo\n  mirror:\n    name: demo-shadow\n"
    )
    report = validate(tmp_path, select=["MLV112"])
    assert [(f.check, f.path, f.line, f.message) for f in report.findings] == [
        (
            "MLV112",
            SELDON,
            5,
            "Experiment demo-rollout: Seldon Experiment schema: spec: 'candidates' is a required "
            "property",
        ),
        (
            "MLV112",
            SELDON,
            7,
            "Experiment demo-rollout: Seldon Experiment schema: spec.mirror: 'percent' is a "
            "required property",
        ),
    ]


def test_the_seldon_alerts_watch_the_servers_pods(seldon_project: Path) -> None:
    """MLServer runs in the Server's pods, which the operator labels `seldon-server-name`: the
    serving alerts read MLServer's metrics there, not a Deployment's `app` label."""
    server = resource_names(PROJECT)["serving_runtime"]
    rules = yaml.safe_load((seldon_project / "monitoring" / "alerts.yaml").read_text())
    exprs = {r["alert"]: r["expr"] for g in rules["groups"] for r in g["rules"]}
    assert exprs["ModelServingDown"].startswith(f'(sum(up{{seldon_server_name="{server}"}})')
    assert (
        f'rest_server_requests_total{{seldon_server_name="{server}", '
        in exprs["ModelErrorRateHigh"]
    )
    assert 'app="' not in "".join(exprs.values())
