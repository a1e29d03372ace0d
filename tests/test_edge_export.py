"""Edge and embedded projects on ONNX Runtime export their model: the design decides the export
for the scikit-learn family only, the project pins the exporter and the runtime only then, and
(slow) a generated project installs, trains, exports a device bundle whose runner predicts with
ONNX Runtime and NumPy alone, and fails its parity check for a model that predicts differently."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mlopsctl.render import versions
from mlopsctl.rules.engine import evaluate
from tests.conftest import make_requirements
from tests.generated_cases import render_all
from tests.test_generated_project_runs import BIN, make, project_venv

EXPORT_FILES = {"src/export.py", "src/export_runner.py", "config/edge.json", "tests/test_export.py"}
EDGE_PINS = {"onnx", "onnxruntime", "skl2onnx"}


@pytest.mark.parametrize(
    ("answers", "exported"),
    [
        ({"deployment_target": "edge"}, True),
        ({"deployment_target": "embedded", "framework": "xgboost"}, True),
        ({"deployment_target": "edge", "framework": "lightgbm"}, True),
        ({"deployment_target": "edge", "framework": "onnx"}, False),  # already ONNX
        ({"deployment_target": "edge", "framework": "pytorch"}, False),  # TorchScript
        ({"deployment_target": "embedded", "framework": "keras"}, False),  # TFLite
        ({"deployment_target": "online"}, False),
        ({"deployment_target": "batch", "framework": "xgboost"}, False),
    ],
)
def test_the_export_is_decided_for_the_scikit_learn_family_on_onnx_runtime(
    answers: dict[str, str], exported: bool
) -> None:
    design = evaluate(make_requirements(**answers))
    assert design.components.onnx_export is exported
    if exported:
        assert design.stack.serving == "onnxruntime"


def init(project: Path, answers: list[str]) -> None:
    """Generate ``project`` with the installed command, as a user would."""
    run = subprocess.run(
        [str(BIN / "mlopsctl"), "init", "--defaults", *answers, "--", str(project)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stderr


def _pins(root: Path) -> dict[str, str]:
    pins = {}
    for line in (root / "requirements.txt").read_text(encoding="utf-8").splitlines():
        if "==" in line and not line.startswith("#"):
            name, version = line.split("==")
            pins[name] = version
    return pins


def test_only_exporting_projects_get_the_export_and_its_pins(tmp_path: Path) -> None:
    table = versions()["packages"]
    for name, (design, root) in render_all(tmp_path).items():
        files = {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}
        pins = _pins(root)
        makefile = (root / "Makefile").read_text(encoding="utf-8")
        if design.components.onnx_export:
            assert files >= EXPORT_FILES, name
            assert {p: table[p] for p in EDGE_PINS} == {p: pins[p] for p in EDGE_PINS}, name
            assert ("onnxmltools" in pins) == (design.requirements.framework != "sklearn"), name
            assert "\nexport: registered-model $(STAMP)\n" in makefile, name
            edge = json.loads((root / "config" / "edge.json").read_text(encoding="utf-8"))
            assert edge["optimization"]["decision"] == design.stack.model_optimization, name
        else:
            assert not EXPORT_FILES & files, name
            assert not (EDGE_PINS | {"onnxmltools"}) & set(pins), name
            assert "\nexport:" not in makefile, name


def test_the_optimization_decision_and_its_rules_reach_the_export(tmp_path: Path) -> None:
    project = tmp_path / "fast"
    answers = ["--set", "deployment_target=embedded", "--set", "scale_requirements.latency_ms=20"]
    init(project, answers)
    edge = json.loads((project / "config" / "edge.json").read_text(encoding="utf-8"))
    assert edge["optimization"]["decision"] == "required"
    assert edge["optimization"]["rules"] == ["SRV002"]
    assert edge["deployment_target"] == "embedded"
    assert edge["latency"]["target_ms"] == 20.0


def runner_venv() -> Path:
    """A virtualenv with the project's ONNX Runtime and NumPy pins and nothing else (what the
    device has), kept in the tests' cache beside the project environments."""
    table = versions()["packages"]
    pins = [f"onnxruntime=={table['onnxruntime']}", f"numpy=={table['numpy']}"]
    digest = hashlib.sha256((" ".join(pins) + sys.version).encode()).hexdigest()[:16]
    cache = Path(os.environ.get("MLOPSCTL_TEST_CACHE") or Path.home() / ".cache" / "mlopsctl-tests")
    venv = cache / f"device-{digest}"
    if (venv / ".complete").is_file():
        return venv
    shutil.rmtree(venv, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "venv", "--", str(venv)], check=True, timeout=300)
    subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--", *pins],
        check=True,
        timeout=900,
    )
    (venv / ".complete").write_text("ok\n")
    return venv


def _run(
    python: Path, *args: str, cwd: Path, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "VIRTUAL_ENV"))}
    return subprocess.run(
        [str(python), *args],
        cwd=cwd,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=300,
    )


# Negates the learned weights of the bundle's model and records the new checksum: an export
# that went wrong, as the parity check must catch it.
PERTURB = """
import hashlib, json, onnx, sys
path, meta = sys.argv[1], sys.argv[2]
model = onnx.load(path)
for node in model.graph.node:
    for attr in node.attribute:
        if attr.name in {"coefficients", "class_weights", "target_weights"} and attr.floats:
            attr.floats[:] = [-v for v in attr.floats]
onnx.save(model, path)
data = json.load(open(meta))
data["files"]["model.onnx"]["sha256"] = hashlib.sha256(open(path, "rb").read()).hexdigest()
json.dump(data, open(meta, "w"))
"""


@pytest.mark.slow
def test_edge_project_exports_a_bundle_that_runs_on_onnxruntime_alone(tmp_path: Path) -> None:
    project = tmp_path / "edge-project"
    # latency under 50 ms: SRV002 decides optimization, so the export tries to quantize.
    answers = ["--set", "deployment_target=edge", "--set", "scale_requirements.latency_ms=20"]
    init(project, answers)
    venv_dir = project_venv(project)
    venv = f"VENV={venv_dir}"
    python = venv_dir / "bin" / "python"

    early = make(project, "export", venv)  # nothing registered yet: says what to run first
    assert early.returncode == 2 and "make train" in early.stderr

    # The generated parity and runner tests (they train their own small models).
    tests = _run(
        python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_export.py", cwd=project
    )
    assert tests.returncode == 0, tests.stdout[-3000:] + tests.stderr[-3000:]
    assert "8 passed" in tests.stdout
    trained = make(project, "train", venv)
    assert trained.returncode == 0, trained.stderr[-3000:]
    exported = make(project, "export", venv)
    assert exported.returncode == 0, exported.stdout[-3000:] + exported.stderr[-3000:]
    assert "parity passed on 1000 hold-out rows" in exported.stdout

    bundle = project / "dist" / "edge"
    assert {p.name for p in bundle.iterdir()} == {
        "model.onnx",
        "metadata.json",
        "optimization.json",
        "predict.py",
    }
    metadata = json.loads((bundle / "metadata.json").read_text())
    assert metadata["model"]["name"] == "edge-project" and metadata["model"]["version"] == 1
    assert metadata["input"]["columns"] == [f"feature_{i}" for i in range(8)]
    assert [c["name"] for c in metadata["signature"]["inputs"]] == metadata["input"]["columns"]
    assert metadata["opset"] == {"ai.onnx.ml": 1, "ai.onnx": 17}
    assert metadata["parity"]["passed"] and metadata["parity"]["label_mismatches"] == 0
    assert metadata["parity"]["max_probability_diff"] <= 1e-4
    model_bytes = (bundle / "model.onnx").read_bytes()
    assert metadata["files"]["model.onnx"]["sha256"] == hashlib.sha256(model_bytes).hexdigest()
    report = json.loads((bundle / "optimization.json").read_text())
    assert report["decision"] == "required" and report["rules"] == ["SRV002"]
    # A linear model has no operator ONNX Runtime's INT8 quantizer converts: said, not faked.
    assert report["quantization"]["status"] == "not applicable"
    assert "LinearClassifier" in report["quantization"]["detail"]
    assert report["fp32"]["size_bytes"] == len(model_bytes)
    assert report["fp32"]["latency_ms"]["runs"] == 200
    assert report["fp32"]["metric"]["f1"] == pytest.approx(report["original"]["metric"]["f1"])

    # The runner, in an environment with ONNX Runtime and NumPy only, answers as the registry's
    # model does, from JSON on stdin and from a CSV file.
    rows = [[0.0] * 8, [1.0, -2.0] * 4, [-1.5, 0.5, 2.0, -0.25, 0.0, 1.0, -3.0, 0.75]]
    columns = metadata["input"]["columns"]
    expected_query = (
        "import json, sys, mlflow, pandas as pd\n"
        "mlflow.set_tracking_uri('sqlite:///mlruns.db')\n"
        "m = mlflow.sklearn.load_model('models:/edge-project@champion')\n"
        "x = pd.DataFrame(json.loads(sys.argv[1]), columns=json.loads(sys.argv[2]))\n"
        "print(json.dumps({'predictions': m.predict(x).tolist(),"
        " 'probabilities': m.predict_proba(x).tolist()}))\n"
    )
    native = _run(python, "-c", expected_query, json.dumps(rows), json.dumps(columns), cwd=project)
    assert native.returncode == 0, native.stderr[-3000:]
    expected = json.loads(native.stdout.strip().splitlines()[-1])
    device = runner_venv() / "bin" / "python"
    imports = _run(device, "-c", "import mlflow", cwd=tmp_path)
    assert imports.returncode != 0  # the runner's environment really lacks the training stack
    body = json.dumps({"dataframe_split": {"columns": columns, "data": rows}})
    answer = _run(device, str(bundle / "predict.py"), "-", cwd=tmp_path, stdin=body)
    assert answer.returncode == 0, answer.stderr
    predicted = json.loads(answer.stdout)
    assert predicted["predictions"] == expected["predictions"]
    for got, want in zip(predicted["probabilities"], expected["probabilities"], strict=True):
        assert got == pytest.approx(want, abs=1e-4)
    csv_file = tmp_path / "rows.csv"
    csv_file.write_text(
        ",".join(reversed(columns)) + "\n" + "\n".join(",".join(map(str, r[::-1])) for r in rows)
    )
    from_csv = _run(device, str(bundle / "predict.py"), str(csv_file), cwd=tmp_path)
    assert from_csv.returncode == 0, from_csv.stderr
    assert json.loads(from_csv.stdout)["predictions"] == expected["predictions"]
    missing = _run(device, str(bundle / "predict.py"), "-", cwd=tmp_path, stdin='[{"x": 1}]')
    assert missing.returncode == 2 and "lacks the model's columns" in missing.stderr

    # The bundle checks out against the registry; a model that predicts differently does not,
    # nor does one whose bytes no longer match its checksum.
    verified = _run(python, "src/export.py", "--verify", cwd=project)
    assert verified.returncode == 0, verified.stderr[-3000:]
    original = model_bytes
    files = [str(bundle / "model.onnx"), str(bundle / "metadata.json")]
    perturb = _run(python, "-c", PERTURB, *files, cwd=project)
    assert perturb.returncode == 0, perturb.stderr[-3000:]
    failed = _run(python, "src/export.py", "--verify", cwd=project)
    assert failed.returncode == 1
    assert "does not predict as the registered model" in failed.stderr
    (bundle / "model.onnx").write_bytes(original)  # the checksum now names the perturbed model
    tampered = _run(python, "src/export.py", "--verify", cwd=project)
    assert tampered.returncode == 1 and "does not match the sha256" in tampered.stderr

    # Exporting again replaces the bundle with a checked one.
    again = make(project, "export", venv)
    assert again.returncode == 0, again.stderr[-3000:]
    assert _run(python, "src/export.py", "--verify", cwd=project).returncode == 0


@pytest.mark.slow
def test_embedded_lightgbm_project_exports_its_trees(tmp_path: Path) -> None:
    """A booster converts through onnxmltools' converters registered in skl2onnx; the trees
    have no INT8 form, and the report says so."""
    project = tmp_path / "device-trees"
    answers = [
        "--set",
        "deployment_target=embedded",
        "--set",
        "framework=lightgbm",
        "--set",
        "scale_requirements.latency_ms=30",
    ]
    init(project, answers)
    venv_dir = project_venv(project)
    python = venv_dir / "bin" / "python"
    tests = _run(
        python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_export.py", cwd=project
    )
    assert tests.returncode == 0, tests.stdout[-3000:] + tests.stderr[-3000:]
    assert "8 passed" in tests.stdout
    for target in ("train", "export"):
        done = make(project, target, f"VENV={venv_dir}")
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    bundle = project / "dist" / "edge"
    metadata = json.loads((bundle / "metadata.json").read_text())
    assert metadata["deployment_target"] == "embedded"
    assert metadata["model"]["flavor"] == "lightgbm"
    assert metadata["model"]["estimator"] == "LGBMClassifier"
    assert metadata["parity"]["passed"] and metadata["parity"]["label_mismatches"] == 0
    report = json.loads((bundle / "optimization.json").read_text())
    assert report["decision"] == "required"
    assert report["quantization"]["status"] == "not applicable"
    assert "TreeEnsembleClassifier" in report["quantization"]["detail"]
    rows = [[0.0] * 8, [1.0, -2.0] * 4]
    body = json.dumps({"columns": metadata["input"]["columns"], "data": rows})
    answer = _run(runner_venv() / "bin" / "python", "predict.py", "-", cwd=bundle, stdin=body)
    assert answer.returncode == 0, answer.stderr
    predicted = json.loads(answer.stdout)
    assert len(predicted["predictions"]) == 2 and set(predicted["predictions"]) <= {0, 1}
    assert all(abs(sum(p) - 1.0) < 1e-5 for p in predicted["probabilities"])


def test_the_generated_consistency_test_passes_where_latency_is_not_watched(
    tmp_path: Path,
) -> None:
    """An edge project's monitoring watches no serving latency: its own threshold test must
    still pass (it read a latency metric that only online projects have)."""
    rendered = render_all(tmp_path)
    roots = [root for design, root in rendered.values() if design.components.onnx_export]
    assert roots
    for root in roots:
        metrics = json.loads((root / "config" / "monitoring.json").read_text(encoding="utf-8"))
        assert "prediction_latency_ms" not in {m["name"] for m in metrics["metrics"]}
        test = "tests/test_project.py::test_thresholds_are_the_same_everywhere"
        proc = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--", test],
            cwd=root,
            capture_output=True,
            text=True,
            check=False,
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
