"""Sizing from measurement: the ``measured`` section of ``mlopsctl.yaml`` and the load test.

The fast tests check that a recorded measurement replaces the assumed capacity everywhere the
design uses it (replicas, the concurrency target, the decisions page), that ``update`` sizes
from it, and that a bad section is refused naming the field. The slow tests run the real load
test: locust against MLServer serving a scikit-learn model trained here, the server held to
the pod's CPU limit.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from mlopsctl.api import assess, load_requirements
from mlopsctl.cli.app import app
from mlopsctl.measured import MeasuredCapacity, write
from mlopsctl.rehearse import Handoff, Rehearsal, images, load
from mlopsctl.rehearse import _proc as proc
from mlopsctl.rehearse.network import ClusterNetwork
from mlopsctl.rehearse.runner import cache_dir
from mlopsctl.rehearse.stage import Stage
from mlopsctl.rules.sizing import TARGET_UTILIZATION

from .test_update import commit, git, make_project, run_update, tree

MEASURED: dict[str, Any] = {
    "rps_per_replica": 180.0,
    "p95_ms": 41.0,
    "latency_target_ms": 200.0,
    "concurrency": 8,
    "cpu_cores": 2.0,
    "measured_on": "2026-12-02",
    "machine": "Example CPU (2 CPUs)",
    "runtime": "mlserver 1.7.1",
    "tool": "locust 2.47.0",
}


def design(measured: dict[str, Any] | None = None, **answers: Any) -> Any:
    if measured is not None:
        answers["measured"] = measured
    return assess(load_requirements(answers, defaults=True))


def decision(d: Any, capability: str) -> Any:
    return next(x for x in d.decisions if x.capability == capability)


# ---- the design sizes from a measurement --------------------------------------------------


def test_a_measured_capacity_replaces_the_assumed_one_and_says_so() -> None:
    scale = {"rps": 1000, "latency_ms": 200}
    assumed = design(scale_requirements=scale)
    measured = design(MEASURED, scale_requirements=scale)
    assert assumed.sizing.per_replica_rps == 100
    assert measured.sizing.per_replica_rps == 180
    assert measured.sizing.max_replicas == math.ceil(1000 / (180 * TARGET_UTILIZATION)) == 8
    # 70 % of the requests in flight the load test sustained, not Little's law over the SLA:
    # floor(180 x 0.7 x 0.2) = 25 in flight would let a replica that saturates at 8 queue
    # three times that before the autoscaler adds one.
    assert measured.sizing.scale_target_concurrency == math.floor(8 * TARGET_UTILIZATION) == 5
    assert "measured concurrency" in decision(measured, "sizing.scale_target_concurrency").formula
    assert assumed.sizing.scale_target_concurrency == math.floor(100 * 0.7 * 0.2) == 14
    formula = decision(measured, "sizing.per_replica_rps").formula
    assert formula.startswith("measured 2026-12-02 on 2 cores: 180 rps at p95 41 ms")
    assert "mlserver 1.7.1" in formula and "locust 2.47.0" in formula
    assert "assumed" in decision(assumed, "sizing.per_replica_rps").formula
    first = measured.sizing.assumptions[0]
    assert first.startswith("one replica serves 180 rps: measured 2026-12-02 on 2 cores")
    assert "measure your model" not in first
    assert "measure your model" in assumed.sizing.assumptions[0]


def test_a_measurement_above_todays_latency_target_asks_to_measure_again() -> None:
    d = design({**MEASURED, "p95_ms": 120.0}, scale_requirements={"rps": 100, "latency_ms": 100})
    formula = decision(d, "sizing.per_replica_rps").formula
    assert "above today's latency target of 100 ms: measure again" in formula
    ok = design(MEASURED, scale_requirements={"rps": 100, "latency_ms": 100})
    assert "measure again" not in decision(ok, "sizing.per_replica_rps").formula


@settings(max_examples=60, deadline=None)
@given(
    low=st.floats(min_value=0.5, max_value=5000, allow_nan=False),
    factor=st.floats(min_value=1.0, max_value=50, allow_nan=False),
    rps=st.integers(min_value=0, max_value=200_000),
    users=st.one_of(st.none(), st.integers(min_value=0, max_value=100_000)),
    latency=st.floats(min_value=1, max_value=5000, allow_nan=False),
    production=st.booleans(),
)
def test_more_measured_capacity_never_means_more_replicas(
    low: float, factor: float, rps: int, users: int | None, latency: float, production: bool
) -> None:
    scale: dict[str, Any] = {"rps": rps, "latency_ms": latency}
    if users is not None:
        scale["concurrent_users"] = users
    answers = {
        "scale_requirements": scale,
        "governance_level": "production" if production else "staging",
    }
    slow = design({**MEASURED, "rps_per_replica": low}, **answers).sizing
    fast = design({**MEASURED, "rps_per_replica": low * factor}, **answers).sizing
    assert fast.max_replicas <= slow.max_replicas
    assert fast.min_replicas <= slow.min_replicas
    assert fast.scale_target_concurrency >= slow.scale_target_concurrency


# ---- the measured section of mlopsctl.yaml -------------------------------------------------


def test_writing_a_measurement_keeps_every_other_line_of_the_answers_file(tmp_path: Path) -> None:
    answers = tmp_path / "mlopsctl.yaml"
    original = "# my own note\nproject_name: demo  # the name\nscale_requirements:\n  rps: 50\n"
    answers.write_text(original)
    answers.chmod(0o640)
    write(answers, MeasuredCapacity.model_validate(MEASURED))
    text = answers.read_text()
    assert text.startswith(original)
    assert "mlopsctl rehearse --measure" in text  # the section says where it comes from
    assert yaml.safe_load(text)["measured"] == MEASURED
    assert answers.stat().st_mode & 0o777 == 0o640
    again = {**MEASURED, "rps_per_replica": 90.0}
    write(answers, MeasuredCapacity.model_validate(again))
    assert yaml.safe_load(answers.read_text())["measured"] == again
    assert answers.read_text().count("measured:") == 1


def test_a_hand_written_measurement_reads_as_written(tmp_path: Path) -> None:
    """Figures from one's own load test: whole numbers and an unquoted date are taken."""
    answers = tmp_path / "answers.yaml"
    lines = [f"  {k}: {int(v) if isinstance(v, float) else v}" for k, v in MEASURED.items()]
    answers.write_text("project_name: demo\nmeasured:\n" + "\n".join(lines) + "\n")
    assert "measured_on: 2026-12-02" in answers.read_text()
    req = load_requirements(answers, defaults=True)
    assert req.measured == MeasuredCapacity.model_validate(MEASURED)


@pytest.mark.parametrize(
    ("bad", "key", "says"),
    [
        ({"rps_per_replica": -3.0}, "measured.rps_per_replica", "greater than 0"),
        ({"rps_per_replica": "fast"}, "measured.rps_per_replica", "number"),
        ({"measured_on": "yesterday"}, "measured.measured_on", "write YYYY-MM-DD"),
        ({"cores": 2}, "measured.cores", "allowed keys here: rps_per_replica"),
    ],
)
def test_a_bad_measured_section_exits_2_naming_the_field_and_writes_nothing(
    tmp_path: Path, bad: dict[str, Any], key: str, says: str
) -> None:
    dest = make_project(tmp_path / "demo")
    answers = dest / "mlopsctl.yaml"
    doc = yaml.safe_load(answers.read_text())
    doc["measured"] = {**MEASURED, **bad}
    answers.write_text(yaml.safe_dump(doc, sort_keys=False))
    commit(dest, "record a measurement")
    before = tree(dest)
    result = run_update(dest)
    assert result.exit_code == 2, result.output
    assert key in result.output and says in result.output, result.output
    assert "mlopsctl.yaml" in result.output
    assert tree(dest) == before
    assert git(dest, "status", "--porcelain") == ""


def test_update_sizes_replicas_and_concurrency_from_the_measurement(tmp_path: Path) -> None:
    dest = make_project(tmp_path / "demo", ["scale_requirements.rps=1000"])
    isvc = dest / "k8s/inferenceservice.yaml"
    before = yaml.safe_load(isvc.read_text())["spec"]["predictor"]
    assert (before["maxReplicas"], before["scaleTarget"]) == (15, 14)  # 100 rps assumed
    write(dest / "mlopsctl.yaml", MeasuredCapacity.model_validate(MEASURED))
    result = run_update(dest)
    assert result.exit_code == 0, result.output
    after = yaml.safe_load(isvc.read_text())["spec"]["predictor"]
    assert (after["maxReplicas"], after["scaleTarget"]) == (8, 5)
    assert "per_replica_rps" in result.output  # the decision change is shown
    decisions = (dest / "docs/decisions.md").read_text()
    assert "measured 2026-12-02 on 2 cores: 180 rps at p95 41 ms" in decisions
    recorded = json.loads((dest / ".mlopsctl/design.json").read_text())
    assert recorded["requirements"]["measured"] == {**MEASURED, "report": None}
    assert recorded["sizing"]["per_replica_rps"] == 180
    commit(dest, "size from the measurement")
    validated = CliRunner().invoke(app, ["validate", str(dest), "--select", "MLV401"])
    assert validated.exit_code == 0, validated.output  # the tree is what the answers generate


def _saturation_rule(dest: Path) -> dict[str, Any] | None:
    doc = yaml.safe_load((dest / "monitoring/alerts.yaml").read_text())
    rules = {r["alert"]: r for g in doc["groups"] for r in g["rules"]}
    return rules.get("ModelReplicaSaturation")


def _promtool_passes(dest: Path) -> None:
    promtool = shutil.which("promtool")
    assert promtool, "promtool is required (Debian package prometheus)"
    for args in (["check", "rules", "alerts.yaml"], ["test", "rules", "alerts.test.yaml"]):
        done = subprocess.run(
            [promtool, *args], cwd=dest / "monitoring", capture_output=True, text=True
        )
        assert done.returncode == 0, done.stdout + done.stderr


def test_update_takes_the_saturation_threshold_from_the_measured_section(tmp_path: Path) -> None:
    """No saturation alert while the capacity is assumed; ``update`` after a measurement adds
    it at 80 % of the measured rps with the measurement in its description, and a hand-edited
    measurement moves the threshold."""
    dest = make_project(tmp_path / "demo", ["scale_requirements.rps=1000"])
    assert _saturation_rule(dest) is None
    assert (
        "No saturation alert: the capacity of one replica"
        in (dest / "docs/runbooks/high-latency.md").read_text()
    )
    write(dest / "mlopsctl.yaml", MeasuredCapacity.model_validate(MEASURED))
    assert run_update(dest).exit_code == 0
    rule = _saturation_rule(dest)
    assert rule is not None
    assert rule["expr"].endswith(" > 144")  # 0.8 x 180
    assert (
        "measured 2026-12-02 on 2 cores: 180 rps at p95 41 ms"
        in (rule["annotations"]["description"])
    )
    assert rule["labels"]["severity"] == "P2" and rule["labels"]["notify"] == "chat"
    assert (dest / rule["annotations"]["runbook_url"]).is_file()
    _promtool_passes(dest)
    commit(dest, "size from the measurement")

    doc = yaml.safe_load((dest / "mlopsctl.yaml").read_text())
    doc["measured"]["rps_per_replica"] = 250.0
    doc["measured"]["measured_on"] = "2026-12-09"
    (dest / "mlopsctl.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    commit(dest, "a staging load test")
    assert run_update(dest).exit_code == 0
    rule = _saturation_rule(dest)
    assert rule is not None and rule["expr"].endswith(" > 200")  # 0.8 x 250
    assert "measured 2026-12-09" in rule["annotations"]["description"]
    assert "> 144" not in (dest / "monitoring/alerts.test.yaml").read_text()
    dashboard = json.loads((dest / "monitoring/grafana-dashboard.json").read_text())
    (panel,) = [p for p in dashboard["panels"] if p["title"].startswith("Busiest replica")]
    steps = panel["fieldConfig"]["defaults"]["thresholds"]["steps"]
    assert [s["value"] for s in steps] == [0, 200, 250]
    _promtool_passes(dest)


# ---- the load test's parts ---------------------------------------------------------------


def _step(users: int, rps: float, p95: float | None, failures: int = 0) -> load.Step:
    return load.Step(
        users=users,
        seconds=5,
        requests=int(rps * 5),
        failures=failures,
        rps=rps,
        p50_ms=p95,
        p95_ms=p95,
        errors=["1x HTTP 500"] if failures else [],
    )


def _report(steps: list[load.Step], sla: float = 100) -> load.LoadReport:
    return load.LoadReport(
        measured_on="2026-12-02",
        machine="Example CPU (2 CPUs)",
        runtime="mlserver 1.7.1",
        tool="locust 2.47.0",
        model="demo version 1",
        endpoint="/v2/models/demo/infer",
        protocol="v2",
        sla_ms=sla,
        cpu_limit="1000m",
        cpu_cores=1.0,
        held="held to 1 CPU",
        steps=steps,
    )


def test_the_capacity_is_the_best_step_within_the_sla_without_errors() -> None:
    steps = [
        _step(1, 50, 20),
        _step(2, 95, 22),
        _step(4, 150, 30),
        _step(8, 170, 95),
        _step(16, 175, 180),
    ]
    capacity = _report(steps).capacity(load.LOAD_REPORT)
    assert capacity is not None
    assert (capacity.rps_per_replica, capacity.p95_ms, capacity.concurrency) == (170, 95, 8)
    assert capacity.report == load.LOAD_REPORT and capacity.cpu_cores == 1.0
    failing = [_step(1, 50, 20), _step(2, 99, 25, failures=3)]
    assert _report(failing).capacity() is not None
    assert _report(failing).capacity().rps_per_replica == 50  # type: ignore[union-attr]
    assert _report([_step(1, 10, 150)]).capacity() is None  # beyond the SLA at one user
    assert load.user_steps(16) == [1, 2, 4, 8, 16]


@pytest.mark.parametrize(
    ("sets", "manifest", "cpu"),
    [
        ([], "inferenceservice.yaml", "1000m"),
        (["model_server=seldon", "framework=pytorch"], "seldon.yaml", "2000m"),
    ],
)
def test_the_cpu_limit_is_the_serving_manifests(
    tmp_path: Path, sets: list[str], manifest: str, cpu: str
) -> None:
    dest = make_project(tmp_path / "demo", sets)
    assert (dest / "k8s" / manifest).is_file()
    d = json.loads((dest / ".mlopsctl/design.json").read_text())
    assert load.cpu_limit(dest) == d["sizing"]["cpu_limit"] == cpu
    assert load.cpu_limit(tmp_path) is None


def test_recording_without_a_measurement_fails_and_leaves_the_answers(tmp_path: Path) -> None:
    dest = make_project(tmp_path / "demo")
    before = tree(dest)
    stage = Stage(dest, tmp_path, tmp_path, ClusterNetwork(), Rehearsal(dest), {})
    try:
        load.record(stage)
    finally:
        stage.network.close()
    (handoff,) = stage.report.handoffs
    assert handoff.passed is False and "left as it was" in handoff.checked
    assert tree(dest) == before


def test_recording_never_writes_through_a_link_the_project_holds(tmp_path: Path) -> None:
    dest = make_project(tmp_path / "demo")
    outside = tmp_path / "outside.json"
    outside.write_text("theirs\n")
    (dest / load.LOAD_REPORT).symlink_to(outside)
    answers_before = (dest / "mlopsctl.yaml").read_bytes()
    stage = Stage(dest, tmp_path, tmp_path, ClusterNetwork(), Rehearsal(dest), {})
    stage.shared["load"] = _report([_step(1, 50, 20)])
    try:
        load.record(stage)
    finally:
        stage.network.close()
    (handoff,) = stage.report.handoffs
    assert handoff.passed is False and "symbolic link" in handoff.detail
    assert outside.read_text() == "theirs\n"
    assert (dest / "mlopsctl.yaml").read_bytes() == answers_before


def test_recording_writes_the_report_and_the_section(tmp_path: Path) -> None:
    dest = make_project(tmp_path / "demo")
    stage = Stage(dest, tmp_path, tmp_path, ClusterNetwork(), Rehearsal(dest), {})
    report = _report([_step(1, 50, 20), _step(2, 90, 40), _step(4, 95, 130)])
    stage.shared["load"] = report
    try:
        load.record(stage)
    finally:
        stage.network.close()
    (handoff,) = stage.report.handoffs
    assert handoff.passed, handoff.detail
    assert "git add mlopsctl.yaml docs/load-test.json" in handoff.checked
    saved = load.LoadReport.model_validate_json((dest / load.LOAD_REPORT).read_text())
    assert saved == report
    section = yaml.safe_load((dest / "mlopsctl.yaml").read_text())["measured"]
    assert (section["rps_per_replica"], section["p95_ms"], section["report"]) == (
        90,
        40,
        load.LOAD_REPORT,
    )


def test_rehearse_measure_says_what_it_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dest = make_project(tmp_path / "demo")
    seen: dict[str, bool] = {}
    written = "wrote `measured` in demo/mlopsctl.yaml and the load report demo/docs/load-test.json"

    def fake(directory: Path, *, measure: bool, **options: object) -> Rehearsal:
        seen["measure"] = measure
        return Rehearsal(directory, [Handoff("load", "recorded", True, written)])

    monkeypatch.setattr("mlopsctl.rehearse.rehearse", fake)
    result = CliRunner().invoke(app, ["rehearse", str(dest), "--measure"])
    assert result.exit_code == 0, result.output
    assert seen == {"measure": True}
    assert written in result.output
    CliRunner().invoke(app, ["rehearse", str(dest)])
    assert seen == {"measure": False}
    assert "--measure" in CliRunner().invoke(app, ["rehearse", "--help"]).output


def test_what_the_load_test_installs_is_documented() -> None:
    from mlopsctl.docsgen import render_all

    page = render_all()["rehearse.md"]
    assert f"`{load.LOCUST_REQUIREMENT}`" in page and load.LOAD_REPORT in page


# ---- the real load test ------------------------------------------------------------------

MLSERVER = ["mlserver==1.7.1", "mlserver-sklearn==1.7.1"]
MODEL = "iris"
_TRAIN = """
import joblib, sys
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
X, y = load_iris(return_X_y=True)
joblib.dump(LogisticRegression(max_iter=500).fit(X, y), sys.argv[1])
"""


@dataclass
class Endpoint:
    """What the serving component hands over (``stage.shared["serving"]``)."""

    url: str
    metrics_url: str
    model_name: str
    model_version: str
    protocol: str
    infer_path: str
    request: dict[str, Any] = field(default_factory=dict)


@pytest.fixture(scope="module")
def workspace() -> Iterator[Path]:
    base = Path(tempfile.mkdtemp(prefix="mlopsctl-load-test-", dir="/var/tmp"))
    try:
        yield base
    finally:
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="module")
def served(workspace: Path) -> Iterator[tuple[Endpoint, proc.Service]]:
    """MLServer serving a scikit-learn model trained here, on the V2 protocol."""
    venv = images.install(MLSERVER, Path(sys.executable), cache_dir(), "MLServer")
    root = workspace / "mlserver"
    (root / MODEL).mkdir(parents=True)
    python = str(venv / "bin" / "python")
    trained = proc.run([python, "-c", _TRAIN, str(root / MODEL / "model.joblib")], env={})
    assert trained.returncode == 0, trained.stderr
    settings: dict[str, Any] = {
        "name": MODEL,
        "implementation": "mlserver_sklearn.SKLearnModel",
        "parameters": {"uri": "./model.joblib", "version": "1"},
    }
    (root / MODEL / "model-settings.json").write_text(json.dumps(settings))
    http, grpc, metrics = proc.free_port(), proc.free_port(), proc.free_port()
    (root / "settings.json").write_text(
        # Inference in the server's process: MLServer 1.7.1's parallel workers die at start
        # with the current uvloop ("There is no current event loop in thread 'MainThread'").
        json.dumps(
            {"http_port": http, "grpc_port": grpc, "metrics_port": metrics, "parallel_workers": 0}
        )
    )
    service = proc.start(
        [str(venv / "bin" / "mlserver"), "start", str(root)],
        name="mlserver",
        env={"PATH": f"{venv / 'bin'}:/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": str(root)},
        log=workspace / "mlserver.log",
        cwd=root,
        port=http,
    )
    ready = proc.wait_for(
        service, lambda: proc.http_call(http, f"/v2/models/{MODEL}/ready").status == 200, 120
    )
    try:
        assert ready, service.log_tail()
        request = {
            "inputs": [
                {"name": "x", "shape": [1, 4], "datatype": "FP64", "data": [5.1, 3.5, 1.4, 0.2]}
            ]
        }
        yield (
            Endpoint(
                url=f"http://{proc.LOOPBACK}:{http}",
                metrics_url=f"http://{proc.LOOPBACK}:{metrics}/metrics",
                model_name=MODEL,
                model_version="1",
                protocol="v2",
                infer_path=f"/v2/models/{MODEL}/infer",
                request=request,
            ),
            service,
        )
    finally:
        service.stop()


def _cgroups(pid: int) -> str:
    return Path(f"/proc/{pid}/cgroup").read_text()


@pytest.mark.slow
@pytest.mark.xdist_group("rehearse")
def test_the_runtime_is_held_to_the_cpu_limit_while_loaded(
    served: tuple[Endpoint, proc.Service],
) -> None:
    endpoint, service = served
    port = int(endpoint.url.rsplit(":", 1)[1])
    pids = load.listening_processes(port)
    assert service.process.pid in pids
    before = {pid: _cgroups(pid) for pid in pids}
    affinity = {pid: os.sched_getaffinity(pid) for pid in pids}
    with load.hold(pids, 0.5) as held:
        assert held.cores == 0.5 or "pinned" in held.how, held.how
        if (os.cpu_count() or 1) > 1:  # its own core, and the others for the load generator
            (own,) = {frozenset(os.sched_getaffinity(pid)) for pid in pids}
            assert len(own) == 1 and held.rest == frozenset(os.sched_getaffinity(0)) - own
        if "cgroup" in held.how:
            for pid in pids:
                assert "mlopsctl-load-" in _cgroups(pid)
            group = next(
                load.CGROUP_ROOT / sub / f"mlopsctl-load-{os.getpid()}"
                for sub in ("", "cpu", "cpu,cpuacct")
                if (load.CGROUP_ROOT / sub / f"mlopsctl-load-{os.getpid()}").is_dir()
            )
            quota = group / ("cpu.max" if (group / "cpu.max").is_file() else "cpu.cfs_quota_us")
            assert quota.read_text().split()[0] == "50000"
    assert {pid: _cgroups(pid) for pid in pids} == before
    assert {pid: os.sched_getaffinity(pid) for pid in pids} == affinity


@pytest.mark.slow
@pytest.mark.xdist_group("rehearse")
def test_a_load_generator_that_fails_is_a_failed_handoff(
    served: tuple[Endpoint, proc.Service], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    endpoint, _ = served
    broken = tmp_path / "_loadgen.py"
    broken.write_text("raise SystemExit('no report')\n")
    monkeypatch.setattr(load, "__file__", str(broken))
    work = Path(tempfile.mkdtemp(prefix="mlopsctl-load-stage-", dir="/var/tmp"))
    answers = {"scale_requirements": {"latency_ms": 100}}
    stage = Stage(work, work, cache_dir(), ClusterNetwork(), Rehearsal(work), answers)
    stage.shared["serving"] = endpoint
    try:
        load.rehearse_load(stage)
    finally:
        stage.network.close()
        shutil.rmtree(work, ignore_errors=True)
    (handoff,) = stage.report.handoffs
    assert (handoff.name, handoff.passed) == ("the load test runs", False)
    assert "no report" in handoff.detail


@pytest.fixture(scope="module")
def measured_stage(
    served: tuple[Endpoint, proc.Service], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stage]:
    """The load component run on a generated project's stage, the endpoint handed over."""
    endpoint, _ = served
    dest = make_project(tmp_path_factory.mktemp("load") / "demo", ["scale_requirements.rps=1000"])
    work = Path(tempfile.mkdtemp(prefix="mlopsctl-load-stage-", dir="/var/tmp"))
    answers = yaml.safe_load((dest / "mlopsctl.yaml").read_text())
    stage = Stage(dest, work, cache_dir(), ClusterNetwork(), Rehearsal(dest), answers)
    stage.shared["serving"] = endpoint
    stage.component = "load"
    try:
        load.rehearse_load(stage)
        yield stage
    finally:
        stage.network.close()
        shutil.rmtree(work, ignore_errors=True)


@pytest.mark.slow
@pytest.mark.xdist_group("rehearse")
def test_the_load_test_reports_one_replicas_p95_and_throughput_against_the_sla(
    measured_stage: Stage,
) -> None:
    report: load.LoadReport = measured_stage.shared["load"]
    handoffs = {h.name: h for h in measured_stage.report.handoffs}
    served = handoffs["one replica serves within the SLA"]
    assert served.passed, served.detail
    assert report.sla_ms == 200 and report.cpu_limit == "1000m"
    assert report.runtime == "mlserver 1.7.1" and report.tool.startswith("locust 2.")
    users = [s.users for s in report.steps]
    assert users == load.user_steps(users[-1])
    assert all(s.requests > 0 for s in report.steps)
    step = report.sustained
    assert step is not None and step.p95_ms is not None and step.p95_ms <= 200
    assert step.failures == 0 and step.rps > 0
    assert f"{step.rps:g} rps at p95 {step.p95_ms:g} ms" in served.checked
    assert "held to 1 CPU" in report.held or "pinned to 1" in report.held, report.held
    assert report.cpu_cores == 1.0
    saved = json.loads((measured_stage.workspace / "load-report.json").read_text())
    assert load.LoadReport.model_validate(saved) == report
    against = handoffs["the measured capacity is reported against the design's"]
    assert against.passed
    assert "the design sizes replicas for 100 rps each" in against.checked
    assert "its 15 replicas carry" in against.checked and "peak of 1000 rps" in against.checked


@pytest.mark.slow
@pytest.mark.xdist_group("rehearse")
def test_measure_records_the_capacity_and_update_sizes_from_it(measured_stage: Stage) -> None:
    dest = measured_stage.project
    report: load.LoadReport = measured_stage.shared["load"]
    load.record(measured_stage)
    recorded = measured_stage.report.handoffs[-1]
    assert recorded.passed, recorded.detail
    assert "mlopsctl.yaml" in recorded.checked and load.LOAD_REPORT in recorded.checked
    section = yaml.safe_load((dest / "mlopsctl.yaml").read_text())["measured"]
    capacity = report.capacity(load.LOAD_REPORT)
    assert capacity is not None and section == capacity.model_dump(mode="json")
    assert json.loads((dest / load.LOAD_REPORT).read_text())["steps"]
    assert "git add mlopsctl.yaml docs/load-test.json" in recorded.checked
    commit(dest, "Measured capacity")  # as the handoff says
    result = run_update(dest)
    assert result.exit_code == 0, result.output
    predictor = yaml.safe_load((dest / "k8s/inferenceservice.yaml").read_text())["spec"][
        "predictor"
    ]
    rps = capacity.rps_per_replica
    assert predictor["maxReplicas"] == min(200, max(2, math.ceil(1000 / (rps * 0.7))))
    # The concurrency target: 70 % of the requests in flight the replica was measured at.
    assert predictor["scaleTarget"] == max(1, min(1000, math.floor(capacity.concurrency * 0.7)))
    assert capacity.summary() in (dest / "docs/decisions.md").read_text()


@pytest.mark.slow
@pytest.mark.xdist_group("rehearse")
def test_a_runtime_slower_than_the_sla_fails_the_handoff(
    served: tuple[Endpoint, proc.Service], workspace: Path
) -> None:
    endpoint, _ = served
    report = load.measure(
        endpoint,
        sla_ms=0.001,  # no real runtime answers in a microsecond
        cpu_limit="1000m",
        cache=cache_dir(),
        workspace=workspace,
        max_users=4,
        warmup_s=0.5,
        window_s=1,
    )
    assert [s.users for s in report.steps] == [1]  # stopped after the first step beyond it
    assert report.sustained is None and report.capacity() is None
    stage = Stage(workspace, workspace, cache_dir(), ClusterNetwork(), Rehearsal(workspace), {})
    try:
        load._checks(stage, report, workspace / "load-report.json")
    finally:
        stage.network.close()
    (handoff,) = stage.report.handoffs
    assert handoff.passed is False
    assert "no step kept p95 within the 0.001 ms SLA" in handoff.detail
