"""The parsing helpers behind the checks, on cases the fixtures do not spell out."""

from __future__ import annotations

from pathlib import Path

import pytest
from jsonschema.validators import Draft202012Validator

from mlopsctl.checks import validate
from mlopsctl.checks._crd import root_schema
from mlopsctl.checks.consistency import _compared_kind, promql_metrics
from mlopsctl.checks.pod_security import image_problem
from tests.generated_cases import SCHEMAS


@pytest.mark.parametrize(
    ("expr", "metrics"),
    [
        (
            "histogram_quantile(0.95, sum by (le) (rate(request_predict_seconds_bucket"
            '{job="x"}[5m]))) * 1000 > 300',
            {"request_predict_seconds_bucket"},
        ),
        (
            "sum without (pod) (rate(a_total[5m])) / on (job) group_left (team) b",
            {"a_total", "b"},
        ),
        ('count({__name__="up", job="x"}) offset 5m', {"up"}),
        ("max_over_time(x[1h:5m]) > bool 1 unless y", {"x", "y"}),
        ("topk(3, :tensorflow:serving:request_count)", {":tensorflow:serving:request_count"}),
        ('rate(x{le="0.5"}[$__rate_interval])', {"x"}),
    ],
)
def test_promql_metrics(expr: str, metrics: set[str]) -> None:
    assert promql_metrics(expr) == metrics


def test_comparison_belongs_to_its_own_operand() -> None:
    expr = 'max(model_feature_drift_psi{m="x"}) > 0.25 or min(model_feature_drift_ks_pvalue) < 0.05'
    first = expr.index("> 0.25")
    second = expr.index("< 0.05")
    assert _compared_kind(expr, first) == "psi"
    assert _compared_kind(expr, second) == "ks"


@pytest.mark.parametrize(
    ("image", "ok"),
    [
        ("nginx", False),
        ("nginx:latest", False),
        ("registry:5000/team/model", False),
        ("registry:5000/team/model:1.2.3", True),
        ("ghcr.io/x/y@sha256:" + "0" * 64, True),
        ("kserve/sklearnserver:v0.15.2", True),
    ],
)
def test_image_pinning(image: str, ok: bool) -> None:
    assert (image_problem(image) is None) is ok


def test_crd_conversion_nullable_int_or_string_and_unknown_fields() -> None:
    schema = root_schema(
        {
            "type": "object",
            "properties": {
                "spec": {
                    "type": "object",
                    "properties": {
                        "port": {"x-kubernetes-int-or-string": True},
                        "note": {"type": "string", "nullable": True},
                        "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                    },
                }
            },
        }
    )
    v = Draft202012Validator(schema)
    ok = {
        "apiVersion": "a/v1",
        "kind": "K",
        "spec": {"port": "http", "note": None, "free": {"x": 1}},
    }
    assert list(v.iter_errors(ok)) == []
    assert list(v.iter_errors({"spec": {"port": 8080}})) == []
    assert [e.message for e in v.iter_errors({"spec": {"prot": 1}})] == [
        "Additional properties are not allowed ('prot' was unexpected)"
    ]


def test_rollout_script_counts_as_progressive_rollout(tmp_path: Path) -> None:
    fixtures = Path(__file__).parent / "fixtures" / "checks" / "MLV215" / "fail"
    import shutil

    root = tmp_path / "r"
    shutil.copytree(fixtures, root)
    assert validate(root, select=["MLV215"]).findings
    (root / "rollout.py").write_text(
        "for percent in (5, 25, 50, 100):\n"
        "    patch({'spec': {'predictor': {'canaryTrafficPercent': percent}}})\n"
    )
    assert validate(root, select=["MLV215"]).findings == []


def test_markers_in_python_strings(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text(
        'A = f"{{x}}"\nB = "{{x}}".format()\nC = "{{ model_name }}"\nD = "{% if x %}"\n'
    )
    lines = {f.line for f in validate(tmp_path, select=["MLV002"]).findings}
    assert lines == {3, 4}


def test_unparsable_workflow_still_scanned_for_markers(tmp_path: Path) -> None:
    wf = tmp_path / ".github" / "workflows"
    wf.mkdir(parents=True)
    (wf / "ci.yaml").write_text(
        "on: push\njobs:\n  t:\n    runs-on: {{ runner }}\n    steps:\n"
        '      - run: echo "${{ github.sha }}"\n'
    )
    report = validate(tmp_path, select=["MLV002"])
    assert [(f.line, f.message) for f in report.findings] == [
        (4, "unrendered template marker '{{ runner }}'")
    ]


def test_git_ignored_files_are_not_the_repositorys(tmp_path: Path) -> None:
    import subprocess

    (tmp_path / ".env").write_text("MLFLOW_TRACKING_TOKEN=abc123def456\n")
    (tmp_path / "settings.env").write_text("")
    report = validate(tmp_path, select=["MLV211"])
    assert [f.path for f in report.findings] == [".env"]  # outside git every file counts
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / ".gitignore").write_text(".env\n")
    assert validate(tmp_path, select=["MLV211"]).findings == []


@pytest.mark.parametrize(
    ("script", "refs"),
    [
        ("python -c pass", []),
        ("python -m pytest -q", []),
        ("pip install -c constraints.txt -r req.txt", ["constraints.txt", "req.txt"]),
        ("kubectl apply -f k8s/", ["k8s/"]),
        ("bash ./scripts/deploy.sh prod", ["./scripts/deploy.sh"]),
        ("promtool check rules monitoring/alerts.yaml", ["monitoring/alerts.yaml"]),
        ("mlopsctl validate --format sarif > results/out.sarif", []),
        ("echo $X && python src/train.py", ["src/train.py"]),
    ],
)
def test_ci_script_references(script: str, refs: list[str]) -> None:
    from mlopsctl.checks.consistency import _references

    assert [v for kind, v in _references(script) if kind == "file"] == refs


def test_upstream_schemas_are_inside_the_repository_and_unchanged() -> None:
    """A fresh clone alone runs the suite: the upstream schemas are vendored under tests/, each
    file exactly the one its SHA256SUMS line records."""
    import hashlib

    repo = Path(__file__).resolve().parent.parent
    assert SCHEMAS.resolve().is_relative_to(repo)
    recorded = {}
    for line in (SCHEMAS / "SHA256SUMS").read_text("utf-8").splitlines():
        digest, name = line.split(maxsplit=1)
        recorded[name] = digest
    present = {
        p.relative_to(SCHEMAS).as_posix()
        for p in SCHEMAS.rglob("*")
        if p.is_file() and p.name not in {"README.md", "SHA256SUMS"}
    }
    assert set(recorded) == present
    for name, digest in recorded.items():
        assert hashlib.sha256((SCHEMAS / name).read_bytes()).hexdigest() == digest, name


def test_shipped_schemas_match_upstream() -> None:
    """The shipped KServe schema is the upstream CRD's v1beta1 schema, trimmed and converted by
    ``python -m mlopsctl.checks._crd``; the Grafana schemas are upstream's files unchanged."""
    from mlopsctl.checks._crd import build_shipped_kserve
    from mlopsctl.checks._validation import SHIPPED

    for kind, shipped_name, crd_name in (
        ("InferenceService", "inferenceservice-v1beta1.json", "inferenceservices"),
        ("ServingRuntime", "servingruntime-v1alpha1.json", "servingruntimes"),
    ):
        crd = SCHEMAS / "kserve" / f"serving.kserve.io_{crd_name}.yaml"
        shipped = (SHIPPED / "kserve" / shipped_name).read_text("utf-8")
        assert shipped == build_shipped_kserve(crd, kind), kind
    upstream_grafana = sorted((SCHEMAS / "grafana").glob("*.json"))
    assert [p.name for p in upstream_grafana] == sorted(
        p.name for p in (SHIPPED / "grafana").glob("*.json")
    )
    for upstream in upstream_grafana:
        assert (SHIPPED / "grafana" / upstream.name).read_bytes() == upstream.read_bytes()
    for ecosystem in ("grafana", "kserve"):
        shipped_licence = (SHIPPED / ecosystem / "LICENSE").read_bytes()
        assert shipped_licence == (SCHEMAS / ecosystem / "LICENSE").read_bytes()


def test_shipped_seldon_schemas_are_seldons_crds_converted() -> None:
    """MLV112's schemas are Seldon Core's own CRDs (tag v2.6.0), converted by
    ``python -m mlopsctl.checks._crd CRD.yaml mlops.seldon.io/v1alpha1 KIND``, under their
    licence."""
    from mlopsctl.checks._crd import build_shipped
    from mlopsctl.checks._validation import SHIPPED
    from mlopsctl.checks.seldon import SELDON_API, SHIPPED_KINDS

    for kind, shipped_name in SHIPPED_KINDS.items():
        crd = SCHEMAS / "seldon" / f"mlops.seldon.io_{kind.lower()}s.yaml"
        shipped = (SHIPPED / "seldon" / shipped_name).read_text("utf-8")
        assert shipped == build_shipped(crd, SELDON_API, kind), kind
    assert (SHIPPED / "seldon" / "LICENSE").read_bytes() == (
        SCHEMAS / "seldon" / "LICENSE"
    ).read_bytes()
    assert b"Apache License" in (SCHEMAS / "seldon" / "LICENSE").read_bytes()[:200]


def test_metrics_in_collapsed_rows_are_checked(tmp_path: Path) -> None:
    import json

    inner = {
        "id": 2,
        "type": "timeseries",
        "title": "hidden",
        "targets": [{"refId": "A", "expr": "nope_total"}],
    }
    row = {"id": 1, "type": "row", "title": "r", "collapsed": True, "panels": [inner]}
    dash = {"title": "d", "schemaVersion": 39, "panels": [row]}
    (tmp_path / "dash.json").write_text(json.dumps(dash, indent=2))
    found = validate(tmp_path, select=["MLV302"]).findings
    assert [(f.path, f.line) for f in found] == [("dash.json", 18)]  # the "expr" line
    assert "nope_total" in found[0].message


_TRACKING = """apiVersion: apps/v1
kind: Deployment
metadata: {name: mlflow}
spec:
  selector: {matchLabels: {app: mlflow}}
  template:
    metadata: {labels: {app: mlflow}}
    spec:
      containers:
        - name: mlflow
          image: registry.example.com/mlflow:3.1.0
          args: [COMMAND]
"""


@pytest.mark.parametrize(
    ("command", "flagged"),
    [
        ('"mlflow", "server", "--port", "5000"', False),  # the tracking server serves no model
        ('"mlflow", "models", "serve", "-m", "models:/fraud@champion"', True),
    ],
)
def test_progressive_rollout_concerns_model_serving_only(
    command: str, flagged: bool, tmp_path: Path
) -> None:
    (tmp_path / "mlopsctl.yaml").write_text("project_name: fraud\ngovernance_level: production\n")
    (tmp_path / "k8s").mkdir()
    (tmp_path / "k8s" / "deploy.yaml").write_text(_TRACKING.replace("COMMAND", command))
    report = validate(tmp_path, select=["MLV215"])
    assert bool(report.findings) is flagged, report.findings


@pytest.mark.parametrize(
    ("step", "gated"),
    [
        ("input message: 'Deploy to production?', ok: 'Deploy'", True),
        ("input(message: 'Deploy to production?')", True),
        ("input 'Deploy to production?'", True),
        ("echo 'no input here'", False),
        ("sh 'make input-data'", False),
    ],
)
def test_jenkins_approval_in_every_groovy_spelling(step: str, gated: bool, tmp_path: Path) -> None:
    (tmp_path / "mlopsctl.yaml").write_text("project_name: fraud\ngovernance_level: production\n")
    (tmp_path / "Jenkinsfile").write_text(
        "pipeline {\n  agent any\n  stages {\n    stage('Deploy to production') {\n"
        f"      steps {{\n        {step}\n      }}\n    }}\n  }}\n}}\n"
    )
    report = validate(tmp_path, select=["MLV213"])
    assert (not report.findings) is gated, report.findings


def test_stable_and_canary_deployments_count_as_a_canary_rollout(tmp_path: Path) -> None:
    (tmp_path / "mlopsctl.yaml").write_text("project_name: fraud\ngovernance_level: production\n")
    (tmp_path / "k8s").mkdir()
    serving = _TRACKING.replace("COMMAND", '"mlflow", "models", "serve"')
    canary = serving.replace("name: mlflow}", "name: mlflow-canary}").replace(
        "labels: {app: mlflow}}", "labels: {app: mlflow, track: canary}}"
    )
    assert "track: canary" in canary
    (tmp_path / "k8s" / "deploy.yaml").write_text(serving + "---\n" + canary)
    assert validate(tmp_path, select=["MLV215"]).findings == []
    (tmp_path / "k8s" / "deploy.yaml").write_text(serving)
    assert validate(tmp_path, select=["MLV215"]).findings != []


def test_pipelines_in_several_directories_import_their_own_siblings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One compilation covers every pipeline; a module beside one pipeline (``steps.py`` in
    each project of a monorepo) is that pipeline's own, not the first one imported."""
    monkeypatch.setenv("MLOPSCTL_NO_CACHE", "1")
    for project, step in (("a", "train"), ("b", "evaluate")):
        pipelines = tmp_path / project / "pipelines"
        pipelines.mkdir(parents=True)
        (pipelines / "steps.py").write_text(
            "from kfp import dsl\n\n\n"
            f'@dsl.component(base_image="python:3.11-slim")\ndef {step}() -> str:\n'
            f'    return "{step}"\n'
        )
        (pipelines / "pipeline.py").write_text(
            f"from kfp import dsl\n\nfrom steps import {step}\n\n\n"
            f'@dsl.pipeline(name="{project}")\ndef {project}() -> None:\n    {step}()\n'
        )
    report = validate(tmp_path, select=["MLV107"])
    assert [(f.path, f.message) for f in report.findings] == []
    assert report.notes == []
    (tmp_path / "b" / "pipelines" / "steps.py").unlink()
    report = validate(tmp_path, select=["MLV107"])
    assert [(f.path, f.line) for f in report.findings] == [("b/pipelines/pipeline.py", 3)]


_ANSWERS = "project_name: fraud\ngovernance_level: production\n"


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        (_ANSWERS + "project_name: other\n", 3, "duplicate key"),
        (_ANSWERS + "team: &a x\nowner: *a\n", 3, "anchor"),
        (_ANSWERS + "1: one\n", 3, "key"),
        (_ANSWERS + "---\nproject_name: other\n", None, "document"),
    ],
)
def test_answers_check_refuses_what_init_refuses(
    text: str, line: int | None, words: str, tmp_path: Path
) -> None:
    """MLV108 reads mlopsctl.yaml with ``load_answers_file``, the loader ``init`` uses: an
    answers file ``init`` refuses is a finding, with the loader's message and line."""
    from mlopsctl.answers import load_answers_file
    from mlopsctl.errors import AnswersError

    (tmp_path / "mlopsctl.yaml").write_text(text)
    with pytest.raises(AnswersError):
        load_answers_file(tmp_path / "mlopsctl.yaml")
    report = validate(tmp_path, select=["MLV108"])
    assert len(report.findings) >= 1, report.findings
    finding = report.findings[0]
    assert (finding.check, finding.path) == ("MLV108", "mlopsctl.yaml")
    assert words in finding.message
    assert str(tmp_path) not in finding.message
    if line is not None:
        assert finding.line == line


def test_answers_check_reads_yaml_1_2_as_init_does(tmp_path: Path) -> None:
    """``no`` is a string to mlopsctl (YAML 1.2), so it is checked against the schema as one."""
    (tmp_path / "mlopsctl.yaml").write_text("project_name: no\ngovernance_level: production\n")
    assert [f.message for f in validate(tmp_path, select=["MLV108"]).findings] == []
    (tmp_path / "mlopsctl.yaml").write_text("project_name: fraud\ngovernance_level: 017\n")
    findings = validate(tmp_path, select=["MLV108"]).findings
    assert findings
    assert {(f.check, f.line) for f in findings} == {("MLV108", 2)}


_ISVC = """apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata:
  name: NAME
  labels: LABELS
spec:
  predictor:
    CANARY
    model: {modelFormat: {name: sklearn}, storageUri: "s3://models/fraud"}
"""


@pytest.mark.parametrize(
    ("shadow_labels", "flagged"),
    [
        ("{mlopsctl.dev/role: shadow}", False),  # a copy of live traffic, answering no user
        ("{app: fraud}", True),  # any other service without a canary is a production rollout
    ],
)
def test_a_shadow_service_needs_no_canary(
    shadow_labels: str, flagged: bool, tmp_path: Path
) -> None:
    (tmp_path / "mlopsctl.yaml").write_text("project_name: fraud\ngovernance_level: production\n")
    (tmp_path / "k8s").mkdir()
    champion = (
        _ISVC.replace("NAME", "fraud")
        .replace("LABELS", "{app: fraud}")
        .replace("CANARY", "canaryTrafficPercent: 10")
    )
    shadow = (
        _ISVC.replace("NAME", "fraud-shadow")
        .replace("LABELS", shadow_labels)
        .replace("CANARY", "minReplicas: 1")
    )
    (tmp_path / "k8s" / "serving.yaml").write_text(champion + "---\n" + shadow)
    report = validate(tmp_path, select=["MLV215"])
    assert [f.path for f in report.findings] == (["k8s/serving.yaml"] if flagged else [])
