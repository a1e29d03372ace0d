"""The Kubeflow retraining pipeline run with the KFP local runner (``mlopsctl.rehearse.pipeline``).

The fast tests compile the generated pipeline and read what its pods would run; the slow ones
read the session's rehearsal of the default profile (``default_rehearsal`` in tests/conftest.py,
shared with tests/test_rehearse.py), whose pipeline component runs after the tracking server and
the entry points, in the project image's restricted pod.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlopsctl.api import generate, validate
from mlopsctl.rehearse import Handoff, Rehearsal, images, pipeline, runner
from mlopsctl.rehearse._kfp_local import _relocate
from mlopsctl.rehearse.entrypoints import ProjectImage, registry_state
from mlopsctl.rehearse.stage import Stage
from mlopsctl.render import versions
from tests.generated_cases import CASES

from .conftest import DEFAULT_NAME, explain, handoff, make_requirements

NAME = DEFAULT_NAME


@pytest.fixture
def project(default_project: Path) -> Path:
    return default_project


def _compile(root: Path, tmp: Path) -> dict[str, Any]:
    work = tmp / "retraining_pipeline.py"
    shutil.copy(root / pipeline.PIPELINE, work)
    run = subprocess.run([sys.executable, str(work)], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    loaded: dict[str, Any] = yaml.safe_load(work.with_suffix(".yaml").read_text())
    return loaded


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
    assert (project / "requirements-pipeline.txt").read_text().split() == [kfp]
    assert kfp in image.requirements(project)
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
with open("/tmp/outputs/published.json", "w") as f:
    json.dump({"argv": sys.argv[1:], "tracking_uri": os.environ.get("MLFLOW_TRACKING_URI")}, f)
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
    assert published == {
        "argv": ["--alias", "champion", "--apply"],
        "tracking_uri": f"http://{NAME}-mlflow:5000",
    }
