"""``mlopsctl rehearse``'s ``ci`` component: the generated CI's steps run on this machine.

The fast tests read CI files (GitHub workflow expressions and ``needs`` order, GitLab stages and
rules, the declarative Jenkinsfile reader) and check the generated files for what the runs
found. The slow ones generate the default project once per CI platform and run every job of its
CI in order in fresh clones (one rehearsal each, shared by the module's tests).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mlopsctl.api import generate
from mlopsctl.rehearse import ci
from mlopsctl.rehearse.errors import ProjectError
from mlopsctl.rehearse.stage import Handoff

from .conftest import make_requirements


def _context(**settings: str) -> dict[str, Any]:
    def setting(kind: str, name: str) -> str:
        if name not in settings:
            raise ci.NeedsSetting(f"{kind}.{name}")
        return settings[name]

    return {
        "github": {"ref": "refs/heads/main", "event_name": "push", "sha": "abc"},
        "runner": {"temp": "/tmp/r"},
        "env": {"A": "1"},
        "setting": setting,
    }


@pytest.mark.parametrize(
    ("expr", "value"),
    [
        ("github.ref == 'refs/heads/main'", True),
        ("github.ref != 'refs/heads/main'", False),
        ("github.ref == 'refs/heads/other' || github.event_name == 'push'", True),
        ("!(github.ref == 'refs/heads/main') && success()", False),
        ("always()", True),
        ("failure()", False),
        ("github.ref == 'REFS/HEADS/MAIN'", True),  # GitHub compares strings ignoring case
        ("env.A == '1'", True),
        ("'it''s'", "it's"),
        ("runner.temp", "/tmp/r"),
    ],
)
def test_github_expressions_decided_locally(expr: str, value: Any) -> None:
    assert ci.github_expression(expr, _context()) == value


@pytest.mark.parametrize(
    "expr", ["contains(github.ref, 'main')", "github.ref <", "steps.x.outputs"]
)
def test_github_expressions_not_decided_are_said_so(expr: str) -> None:
    with pytest.raises(ci.Undecidable):
        ci.github_expression(expr, _context())


def test_github_settings_come_from_the_rehearsal_or_are_needed() -> None:
    context = _context(MLOPSCTL_SPEC="/w/mlopsctl.whl")
    assert ci.github_interpolate("${{ vars.MLOPSCTL_SPEC }}", context) == "/w/mlopsctl.whl"
    assert ci.github_interpolate("at ${{ runner.temp }}/k", context) == "at /tmp/r/k"
    with pytest.raises(ci.NeedsSetting, match="KUBECONFIG"):
        ci.github_interpolate("${{ secrets.KUBECONFIG }}", context)


WORKFLOW = """
on: [push]
env: {TOP: top}
jobs:
  deploy:
    needs: [build, test]
    if: github.ref == 'refs/heads/main'
    runs-on: ubuntu-24.04
    steps:
      - run: ./deploy.sh
  test:
    needs: build
    runs-on: ubuntu-24.04
    defaults: {run: {working-directory: app}}
    env: {JOB: job}
    steps:
      - uses: actions/checkout@v5
      - name: unit tests
        env: {STEP: step}
        run: |
          make test
          make lint
  build:
    runs-on: ubuntu-24.04
    steps:
      - run: make
"""


def test_github_jobs_in_needs_order_with_their_env_and_directories() -> None:
    jobs = ci.github_jobs("w.yaml", WORKFLOW)
    assert [j.name for j in jobs] == ["build", "test", "deploy"]
    test = jobs[1]
    assert dict(test.env) == {"TOP": "top", "JOB": "job"}
    checkout, unit = test.steps
    assert checkout.uses == "actions/checkout@v5" and checkout.script is None
    assert (
        unit.name == "unit tests" and unit.workdir == "app" and dict(unit.env) == {"STEP": "step"}
    )
    assert jobs[2].condition == "github.ref == 'refs/heads/main'"


def test_github_circular_needs_is_an_error_naming_the_jobs() -> None:
    text = "on: push\njobs:\n  a: {needs: b, steps: []}\n  b: {needs: a, steps: []}\n"
    with pytest.raises(ProjectError, match="a \\(needs b\\)"):
        ci.github_jobs("w.yaml", text)


GITLAB = """
default: {image: python:3.11, before_script: [echo before]}
stages: [test, deploy]
variables: {CACHE: "$CI_PROJECT_DIR/.cache", DESCRIBED: {value: x, description: y}}
.hidden: {script: [never]}
deploy:
  stage: deploy
  when: manual
  image: {name: kubectl, entrypoint: [""]}
  script: [kubectl apply -f k8s/]
nightly:
  stage: test
  rules: [{if: '$CI_PIPELINE_SOURCE == "schedule"'}]
  script: [make retrain]
unit:
  stage: test
  rules: [{if: '$CI_PIPELINE_SOURCE == "schedule"', when: never}, {when: always}]
  script: [make install, [make test]]
"""


def test_gitlab_jobs_in_stage_order_with_before_script_and_rules() -> None:
    jobs = ci.gitlab_jobs(GITLAB)
    assert [j.name for j in jobs] == ["nightly", "unit", "deploy"]
    nightly, unit, deploy = jobs
    assert [s.script for s in unit.steps] == ["echo before", "make install", "make test"]
    assert unit.env["DESCRIBED"] == "x"
    assert deploy.image == "kubectl" and deploy.notes == ("manual: approved",)
    push = {"CI_PIPELINE_SOURCE": "push"}
    schedule = {"CI_PIPELINE_SOURCE": "schedule"}
    assert not ci.gitlab_selects(nightly, push) and ci.gitlab_selects(nightly, schedule)
    assert ci.gitlab_selects(unit, push) and not ci.gitlab_selects(unit, schedule)
    assert ci.gitlab_selects(deploy, push)


@pytest.mark.parametrize(
    ("expr", "value"),
    [
        ('$CI_PIPELINE_SOURCE == "schedule"', False),
        ("$CI_PIPELINE_SOURCE != 'schedule' && $CI_COMMIT_BRANCH", True),
        ("$UNSET_VARIABLE", False),
        ("$UNSET_VARIABLE == null", True),
        ('($A == "x" || $B == "y") && !$UNSET_VARIABLE', True),
    ],
)
def test_gitlab_rule_expressions(expr: str, value: bool) -> None:
    variables = {"CI_PIPELINE_SOURCE": "push", "CI_COMMIT_BRANCH": "main", "B": "y"}
    assert ci.gitlab_expression(expr, variables) is value


def test_gitlab_regex_rules_are_not_decided() -> None:
    with pytest.raises(ci.Undecidable):
        ci.gitlab_expression("$CI_COMMIT_TAG =~ /^v/", {})


def test_gitlab_job_in_an_unknown_stage_is_an_error() -> None:
    with pytest.raises(ProjectError, match="stage 'build' is not in stages"):
        ci.gitlab_jobs("stages: [test]\nx: {stage: build, script: [make]}\n")


JENKINSFILE = """
// a comment { with a brace
pipeline {
  agent { docker { image 'python:3.11' } }
  environment {
    TRACKING = 'sqlite:///mlruns.db'
  }
  stages {
    stage('Test') {
      steps {
        sh 'make install'
        sh '''
          make test
        '''
      }
    }
    stage('Deploy') {
      when {
        beforeInput true
        branch 'main'
      }
      input {
        message 'Deploy { now }?'
        ok 'Deploy'
      }
      agent {
        docker {
          image 'kubectl:1'
          args '--entrypoint='
        }
      }
      steps {
        withCredentials([file(credentialsId: 'k', variable: 'KUBECONFIG')]) {
          sh "kubectl apply -f k8s/"
        }
      }
    }
    stage('Both') {
      parallel {
        stage('A') { steps { sh 'echo a' } }
        stage('B') {
          steps {
            sh 'echo b'
          }
        }
      }
    }
  }
}
"""


def test_jenkinsfile_stages_their_sh_steps_and_agents() -> None:
    jobs = ci.jenkins_jobs(JENKINSFILE)
    assert [j.name for j in jobs] == ["Test", "Deploy", "A", "B"]
    test, deploy, a, b = jobs
    assert [s.script.strip() for s in test.steps if s.script] == ["make install", "make test"]
    assert test.image == "python:3.11" and dict(test.env) == {"TRACKING": "sqlite:///mlruns.db"}
    assert deploy.image == "kubectl:1" and deploy.notes == ("input: approved",)
    assert deploy.condition == "branch main"
    (apply,) = deploy.steps
    assert apply.script == "kubectl apply -f k8s/"
    assert apply.env["JENKINS_WRAPPERS"] == "withCredentials"
    assert [s.script for s in a.steps] == ["echo a"] and [s.script for s in b.steps] == ["echo b"]
    assert ci.jenkins_selects(deploy.condition, "main")
    assert not ci.jenkins_selects(deploy.condition, "feature")


@pytest.mark.parametrize("text", ["pipeline {\n  stages {\n", "pipeline { }\n}\n"])
def test_jenkinsfile_unbalanced_braces_are_an_error(text: str) -> None:
    with pytest.raises(ProjectError, match="Jenkinsfile"):
        ci.jenkinsfile(text)


@pytest.mark.parametrize(
    ("script", "needs"),
    [
        ('id="$(docker create "$IMAGE")"', ["docker"]),
        ("kubectl --namespace x apply -f k8s/", ["Kubernetes"]),
        ("make install && make test", []),
        ("# docker is not used here\nmake", []),
        ("python src/rollout.py --dockerfile x", []),
    ],
)
def test_steps_that_need_what_is_not_here(script: str, needs: list[str]) -> None:
    found = ci.needs_of(script)
    assert len(found) == len(needs)
    for what, word in zip(found, needs, strict=True):
        assert word in what


def test_offline_checks_read_command_substitutions(tmp_path: Path) -> None:
    checks, problems = ci.offline_checks(
        'id="$(docker create "registry.k8s.io/kubectl:v1.36.4")"\n'
        'docker cp "$id:/bin/kubectl" "$RUNNER_TEMP/kubectl"',
        tmp_path,
    )
    assert checks == ["image registry.k8s.io/kubectl:v1.36.4 pinned"] and not problems


def test_offline_checks_name_missing_paths_and_unpinned_images(tmp_path: Path) -> None:
    (tmp_path / "deploy").mkdir()
    (tmp_path / "deploy/Dockerfile").write_text("FROM x\n")
    checks, problems = ci.offline_checks(
        "docker build -f deploy/Dockerfile -t registry.example.com/team/app:1 .\n"
        "docker push registry.example.com/team/app\n"
        "docker build -f deploy/Missing.dockerfile .",
        tmp_path,
    )
    assert "deploy/Dockerfile exists" in checks
    assert "image registry.example.com/team/app:1 pinned" in checks
    assert sorted(problems) == [
        "deploy/Missing.dockerfile: no such file or directory in the repository",
        "image registry.example.com/team/app: no tag or digest",
    ]


# --- what the runs found in the generated CI ---------------------------------------------------


@pytest.fixture(scope="module")
def gitlab_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("gitlab") / NAME
    generate(
        make_requirements(
            project_name=NAME, ci_platform="gitlab-ci", governance_level="production"
        ),
        root,
    )
    return root


def test_gitlab_production_deploy_is_offered_on_the_default_branch_only(
    gitlab_project: Path,
) -> None:
    jobs = {j.name: j for j in ci.project_jobs(gitlab_project)}
    deploy = jobs["deploy-production"]
    base = {"CI_DEFAULT_BRANCH": "main", "CI_PIPELINE_SOURCE": "push"}
    assert ci.gitlab_selects(deploy, {**base, "CI_COMMIT_BRANCH": "main"})
    assert deploy.notes == ("manual: approved",)
    # A manual production deployment from any branch's or merge request's pipeline, or from the
    # retraining schedule, bypasses the review the default branch gets.
    assert not ci.gitlab_selects(deploy, {**base, "CI_COMMIT_BRANCH": "feature"})
    assert not ci.gitlab_selects(deploy, {**base, "CI_PIPELINE_SOURCE": "merge_request_event"})
    schedule = {**base, "CI_COMMIT_BRANCH": "main", "CI_PIPELINE_SOURCE": "schedule"}
    assert not ci.gitlab_selects(deploy, schedule)


def test_gitlab_rules_manual_deploy_passes_the_approval_gate(gitlab_project: Path) -> None:
    from mlopsctl.api import validate

    report = validate(gitlab_project, select=["MLV213"])
    assert report.ok, [f.message for f in report.findings]


def test_github_pushes_to_main_never_cancel_a_running_deployment(tmp_path: Path) -> None:
    import yaml

    root = tmp_path / NAME
    generate(make_requirements(project_name=NAME, governance_level="production"), root)
    workflow = yaml.safe_load((root / ".github/workflows/ci.yaml").read_text())
    assert "deploy-production" in workflow["jobs"]
    cancel = str(workflow["concurrency"]["cancel-in-progress"])
    for event, cancels in (("push", False), ("workflow_dispatch", False), ("pull_request", True)):
        context = {**_context(), "github": {"ref": "refs/heads/main", "event_name": event}}
        assert ci.github_interpolate(cancel, context) is cancels, event


# --- slow: the generated CI run for real --------------------------------------------------------

NAME = "rehearsed-ci"


def _rehearse(tmp_path_factory: pytest.TempPathFactory, platform: str) -> list[Handoff]:
    from mlopsctl.rehearse.runner import run_components, session

    root = tmp_path_factory.mktemp(f"ci-{platform}") / NAME
    generate(make_requirements(project_name=NAME, ci_platform=platform), root)
    with session(root) as stage:
        return run_components(stage, only=("ci",)).handoffs


def _failures(handoffs: list[Handoff]) -> str:
    return "\n".join(f"{h.name}: {h.checked}\n{h.detail}" for h in handoffs if h.passed is not True)


@pytest.fixture(scope="module")
def github(tmp_path_factory: pytest.TempPathFactory) -> list[Handoff]:
    return _rehearse(tmp_path_factory, "github-actions")


@pytest.fixture(scope="module")
def gitlab(tmp_path_factory: pytest.TempPathFactory) -> list[Handoff]:
    return _rehearse(tmp_path_factory, "gitlab-ci")


@pytest.fixture(scope="module")
def jenkins(tmp_path_factory: pytest.TempPathFactory) -> list[Handoff]:
    return _rehearse(tmp_path_factory, "jenkins")


def _by_name(handoffs: list[Handoff]) -> dict[str, Handoff]:
    return {h.name: h for h in handoffs}


@pytest.mark.slow
@pytest.mark.xdist_group("rehearse-b")
def test_github_workflow_runs_every_step(github: list[Handoff]) -> None:
    assert all(h.passed for h in github), _failures(github)
    steps = _by_name(github)
    validate = steps[".github/workflows/ci.yaml test: Validate the repository"]
    assert validate.checked.startswith("ran `sh ci/install-mlopsctl.sh && make validate`")
    for ran in ("make install", "make test", "make train", "make drift", "make pipeline"):
        assert steps[f".github/workflows/ci.yaml test: {ran}"].checked.startswith("ran "), ran
    rules = steps[".github/workflows/ci.yaml test: Alert rules and their unit tests"]
    assert rules.checked.startswith("ran ")
    kubectl = next(
        h for h in github if h.name.startswith(".github/workflows/ci.yaml deploy-staging: kubectl")
    )
    assert "needs a container engine" in kubectl.checked and "pinned" in kubectl.checked
    apply = steps[".github/workflows/ci.yaml deploy-staging: Apply manifests to staging"]
    assert "needs the CI secret KUBECONFIG" in apply.checked
    assert "pass mlopsctl validate" in apply.checked


@pytest.mark.slow
@pytest.mark.xdist_group("rehearse-b")
def test_gitlab_pipeline_runs_every_job(gitlab: list[Handoff]) -> None:
    assert all(h.passed for h in gitlab), _failures(gitlab)
    steps = _by_name(gitlab)
    assert steps[".gitlab-ci.yml test: sh ci/install-mlopsctl.sh"].checked.startswith("ran ")
    assert steps[".gitlab-ci.yml test: make validate"].checked.startswith("ran ")
    assert steps[".gitlab-ci.yml retrain: make install train evaluate"].checked.startswith("ran ")
    deploy = steps[".gitlab-ci.yml deploy-production: kubectl --namespace production apply -f k8s/"]
    assert "needs a Kubernetes cluster" in deploy.checked and "manual: approved" in deploy.checked


@pytest.mark.slow
@pytest.mark.xdist_group("rehearse-b")
def test_jenkins_pipeline_runs_every_stage(jenkins: list[Handoff]) -> None:
    assert all(h.passed for h in jenkins), _failures(jenkins)
    steps = _by_name(jenkins)
    validate = steps["Jenkinsfile Validate: sh ci/install-mlopsctl.sh && make validate"]
    assert validate.checked.startswith("ran ")
    assert steps["Jenkinsfile Train: make train evaluate drift"].checked.startswith("ran ")
    deploy = steps["Jenkinsfile Deploy to production: kubectl --namespace production apply -f k8s/"]
    assert "withCredentials" in deploy.checked and "input: approved" in deploy.checked


# --- the runner on a small repository (no package installs) -------------------------------------

TINY_WORKFLOW = """
on: {push: {branches: [main]}}
env:
  TRACKING: ${{ vars.MLFLOW_TRACKING_URI }}
jobs:
  build:
    runs-on: ubuntu-24.04
    steps:
      - uses: actions/checkout@v5
      - uses: actions/setup-python@v6
      - name: the wheel committed, with its digest
        env:
          MLOPSCTL_SPEC: ${{ vars.MLOPSCTL_SPEC }}
          MLOPSCTL_SHA256: ${{ vars.MLOPSCTL_SHA256 }}
        run: |
          test -f "$MLOPSCTL_SPEC"
          echo "$MLOPSCTL_SHA256  $MLOPSCTL_SPEC" | sha256sum -c
          case "$TRACKING" in sqlite:////*/production-store/mlruns.db) ;; *) exit 3 ;; esac
          test -z "${MLFLOW_TRACKING_USERNAME+set}"
      - name: python is the one python_env.yaml names, writable
        run: |
          python -c 'import sys; assert sys.version_info[:2] == (3, 11)'
          python -c 'import sys; assert sys.prefix != sys.base_prefix'
          mkdir -p "$RUNNER_TEMP/tools"
          printf '#!/bin/sh\\necho tool\\n' > "$RUNNER_TEMP/tools/tool"
          chmod +x "$RUNNER_TEMP/tools/tool" && echo "$RUNNER_TEMP/tools" >> "$GITHUB_PATH"
          echo "FROM_STEP=yes" >> "$GITHUB_ENV"
      - run: test "$(tool)" = tool && test "$FROM_STEP" = yes
      - if: github.ref != 'refs/heads/main'
        run: exit 1
      - name: ignored files are not in the clone
        run: test ! -e local.db && test -f ci/install.sh
  fails:
    needs: build
    runs-on: ubuntu-24.04
    steps:
      - run: exit 7
      - run: echo never
  after:
    needs: fails
    runs-on: ubuntu-24.04
    steps:
      - run: echo never
  deploy:
    needs: build
    runs-on: ubuntu-24.04
    steps:
      - name: push
        env: {IMAGE: registry.example.com/team/app:1}
        run: docker build -f deploy/Dockerfile -t "$IMAGE" . && docker push "$IMAGE"
      - name: apply
        env: {KUBECONFIG_DATA: "${{ secrets.KUBECONFIG }}"}
        run: kubectl apply -f k8s/missing/
"""


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Handoff]:
    from mlopsctl.rehearse.network import ClusterNetwork
    from mlopsctl.rehearse.stage import Rehearsal, Stage

    base = tmp_path_factory.mktemp("tiny")
    project = base / "project"
    (project / ".github/workflows").mkdir(parents=True)
    (project / ".github/workflows/ci.yaml").write_text(TINY_WORKFLOW)
    (project / "python_env.yaml").write_text('python: "3.11"\n')
    (project / ".gitignore").write_text("local.db\n")
    (project / "local.db").write_text("ignored")
    (project / "ci").mkdir()
    (project / "ci/install.sh").write_text("true\n")
    (project / "deploy").mkdir()
    (project / "deploy/Dockerfile").write_text("FROM scratch\n")
    wheel = base / "mlopsctl-0.0.0-py3-none-any.whl"
    wheel.write_bytes(b"not installed by this workflow")
    (base / "ws").mkdir()
    network = ClusterNetwork()
    try:
        stage = Stage(project, base / "ws", base / "cache", network, Rehearsal(project), {})
        stage.component = "ci"
        ci.CiRun(stage, wheel=wheel).run(ci.project_jobs(project))
    finally:
        network.close()
    return {h.name.removeprefix(".github/workflows/ci.yaml "): h for h in stage.report.handoffs}


def test_runner_steps_see_the_settings_the_python_and_github_files(
    tiny: dict[str, Handoff],
) -> None:
    for name in (
        "build: the wheel committed, with its digest",
        "build: python is the one python_env.yaml names, writable",
        'build: test "$(tool)" = tool && test "$FROM_STEP" = yes',
        "build: ignored files are not in the clone",
    ):
        assert tiny[name].passed, f"{name}: {tiny[name].checked}\n{tiny[name].detail}"
    assert "is false here: not run" in tiny["build: exit 1"].checked


def test_runner_stops_a_job_at_its_failing_step_and_skips_what_needs_it(
    tiny: dict[str, Handoff],
) -> None:
    assert tiny["fails: exit 7"].passed is False and "exit 7" in tiny["fails: exit 7"].detail
    assert tiny["fails: echo never"].passed is None
    assert tiny["after: all steps"].passed is None


def test_runner_checks_offline_what_needs_a_registry_or_a_cluster(
    tiny: dict[str, Handoff],
) -> None:
    push = tiny["deploy: push"]
    assert push.passed, push.detail
    assert "needs a container engine" in push.checked
    assert "deploy/Dockerfile exists" in push.checked
    assert "image registry.example.com/team/app:1 pinned" in push.checked
    apply = tiny["deploy: apply"]
    assert apply.passed is False
    assert "needs the CI secret KUBECONFIG" in apply.checked
    assert "a Kubernetes cluster" in apply.checked
    assert "k8s/missing/: no such file or directory" in apply.detail


@pytest.mark.parametrize(
    ("script", "needs"),
    [
        ("make publish", True),
        ("make test && make publish", True),
        ("python src/publish.py --alias champion --apply", True),
        ("make publisher", False),
        ("make test", False),
    ],
)
def test_publishing_needs_the_production_registry_and_is_not_run_here(
    script: str, needs: bool
) -> None:
    from mlopsctl.rehearse.ci import needs_of

    assert any("production model registry" in n for n in needs_of(script)) is needs
