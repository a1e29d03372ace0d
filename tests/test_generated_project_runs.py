"""The generated default project works: installed in its own virtualenv, `make train` trains,
logs to MLflow and registers the model, the served model answers an HTTP prediction request, and
the drift check passes on sample data and fails on shifted data."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent
NAME = "demo-project"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def project_venv(project: Path) -> Path:
    """The project's virtualenv, made by its own `make install` from its pinned requirements.

    Installing MLflow and Evidently takes minutes, so the finished environment is kept per
    requirements.txt digest (MLOPSCTL_TEST_CACHE, default ~/.cache/mlopsctl-tests) and made again
    whenever a pin changes.
    """
    digest = hashlib.sha256(
        (project / "requirements.txt").read_bytes() + sys.version.encode()
    ).hexdigest()[:16]
    cache = Path(os.environ.get("MLOPSCTL_TEST_CACHE") or Path.home() / ".cache" / "mlopsctl-tests")
    venv = cache / f"venv-{digest}"
    if (venv / ".complete").is_file():
        return venv
    cache.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(venv, ignore_errors=True)
    installed = make(project, "install", f"PYTHON={sys.executable}", f"VENV={venv}", timeout=900)
    assert installed.returncode == 0, installed.stderr[-3000:]
    (venv / ".complete").write_text("ok\n")
    return venv


def make(project: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "VIRTUAL_ENV"))}
    env["PIP_NO_COMPILE"] = "1"
    return subprocess.run(
        ["make", "--no-print-directory", *args],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def post_json(url: str, body: object) -> object:
    request = urllib.request.Request(
        url, json.dumps(body).encode(), {"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


def served_answer(project: Path, venv: str, body: object) -> object:
    """The answer of the project's `make serve` (its MLflow scoring server) to one POST of
    ``body`` to /invocations; the server is stopped afterwards."""
    port = free_port()
    server = subprocess.Popen(
        ["make", "--no-print-directory", "serve", f"PORT={port}", venv],
        cwd=project,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=2):
                    break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                assert server.poll() is None, server.stdout.read() if server.stdout else ""
                assert time.monotonic() < deadline, "model server did not answer within 120 s"
                time.sleep(0.5)
        return post_json(f"http://127.0.0.1:{port}/invocations", body)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


@pytest.mark.slow
def test_default_project_trains_serves_and_detects_drift(tmp_path: Path) -> None:
    project = tmp_path / NAME
    run = subprocess.run(
        [str(BIN / "mlopsctl"), "init", str(project), "--defaults"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr

    venv = f"VENV={project_venv(project)}"
    tests = make(project, "test", venv)
    assert tests.returncode == 0, tests.stdout[-3000:] + tests.stderr[-3000:]

    trained = make(project, "train", venv)
    assert trained.returncode == 0, trained.stderr[-3000:]
    assert f"registered {NAME} version 1" in trained.stdout

    # The registry holds version 1 under the champion alias, with lineage logged on its run.
    query = (
        "import json, mlflow\n"
        "mlflow.set_tracking_uri('sqlite:///mlruns.db')\n"
        "c = mlflow.MlflowClient()\n"
        f"v = c.get_model_version_by_alias({NAME!r}, 'champion')\n"
        "r = c.get_run(v.run_id)\n"
        "info = mlflow.models.get_model_info(f'models:/{v.name}@champion')\n"
        "print(json.dumps({'version': v.version, 'params': r.data.params,"
        " 'metrics': r.data.metrics, 'tags': r.data.tags,"
        " 'signature': info.signature.to_dict() if info.signature else None}))\n"
    )
    probe = subprocess.run(
        [str(project_venv(project) / "bin" / "python"), "-c", query],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert probe.returncode == 0, probe.stderr[-3000:]
    registry = json.loads(probe.stdout.strip().splitlines()[-1])
    assert str(registry["version"]) == "1"
    assert registry["params"]["random_state"] == "42"
    assert 0.5 < registry["metrics"]["f1"] <= 1.0
    assert {"git_commit", "training_data_version", "dependency.mlflow"} <= set(registry["tags"])
    assert registry["signature"] and "feature_0" in registry["signature"]["inputs"]

    columns = [f"feature_{i}" for i in range(8)]
    answer = served_answer(
        project,
        venv,
        {"dataframe_split": {"columns": columns, "data": [[0.0] * 8, [1.0, -2.0] * 4]}},
    )
    assert isinstance(answer, dict)
    assert len(answer["predictions"]) == 2
    assert set(answer["predictions"]) <= {0, 1}

    clean = make(project, "drift", venv)
    assert clean.returncode == 0, clean.stderr[-3000:]
    assert "no drift" in clean.stdout
    shifted = make(project, "drift", "ARGS=--shifted", venv)
    assert shifted.returncode != 0
    assert "drift detected" in shifted.stderr
    report = json.loads((project / "drift-report.json").read_text())
    thresholds = json.loads((project / "config" / "project.json").read_text())["thresholds"]
    assert report["thresholds"]["psi_investigate"] == thresholds["psi_investigate"]
    assert report["max_psi"] > thresholds["psi_investigate"]
