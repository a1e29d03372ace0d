"""The load test: one replica of the real serving runtime, held to the pod's CPU limit, loaded
with locust until its p95 latency exceeds the SLA or requests fail; what it sustained within the
SLA is one replica's capacity.

The runtime is the one the serving component started (``stage.shared["serving"]``, a
:class:`Endpoint`). Its processes (the one listening on the endpoint's port and every process
below it) are moved into a CPU cgroup whose quota is the manifest's CPU limit, cgroup v2
``cpu.max`` or v1 ``cpu.cfs_quota_us``; where neither can be written they are pinned to as many
cores as the limit rounds up to (``sched_setaffinity``), and where the machine has no more cores
than that, the report says so. Locust runs in its own environment in the rehearsal's cache
(``LOCUST_REQUIREMENT``), as a separate process (``_loadgen.py``): importing it monkey-patches a
process for gevent, which mlopsctl's own process must not be.

The report (``load-report.json``) goes to the rehearsal's workspace. With ``mlopsctl rehearse
--measure``, :func:`record` also writes it into the project (``LOAD_REPORT``) and the measured
capacity into ``mlopsctl.yaml`` (``measured``), where ``mlopsctl update`` sizes from it.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import math
import os
import platform
import shutil
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, ValidationError

from mlopsctl.measured import MeasuredCapacity
from mlopsctl.rehearse import _proc, images, manifests
from mlopsctl.rehearse.errors import NotRehearsable
from mlopsctl.rehearse.stage import Stage

# Locust from PyPI, installed into its own environment in the rehearsal's cache.
LOCUST_REQUIREMENT = "locust>=2.37,<3"
# Where ``rehearse --measure`` writes the load report in the project.
LOAD_REPORT = "docs/load-test.json"
# Users (requests in flight) per step, doubled up to this many.
MAX_USERS = 256
WARMUP_SECONDS = 2.0
WINDOW_SECONDS = 5.0
REQUEST_TIMEOUT_SECONDS = 30.0
CGROUP_ROOT = Path("/sys/fs/cgroup")
_CFS_PERIOD_US = 100_000


class LoadTestFailed(Exception):
    """The load generator did not finish or wrote no report (a failed handoff)."""


class Endpoint(Protocol):
    """The serving runtime as the serving component hands it over (read-only attributes, so a
    frozen dataclass fits as well as a plain one)."""

    @property
    def url(self) -> str: ...  # base URL of the runtime's HTTP endpoint
    @property
    def metrics_url(self) -> str: ...
    @property
    def model_name(self) -> str: ...
    @property
    def model_version(self) -> str: ...
    @property
    def protocol(self) -> str: ...  # "v1" or "v2"
    @property
    def infer_path(self) -> str: ...  # path under url for a prediction
    @property
    def request(self) -> dict[str, Any]: ...  # a valid request body


class Step(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    users: int
    seconds: float
    requests: int
    failures: int
    rps: float
    p50_ms: float | None
    p95_ms: float | None
    errors: list[str]

    def within(self, sla_ms: float) -> bool:
        return self.failures == 0 and self.p95_ms is not None and self.p95_ms <= sla_ms


class LoadReport(BaseModel):
    """What the load test did and found; its JSON is the load report."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    measured_on: str
    machine: str
    runtime: str
    tool: str
    model: str
    endpoint: str
    protocol: str
    sla_ms: float
    cpu_limit: str | None
    cpu_cores: float
    held: str
    steps: list[Step]

    @property
    def sustained(self) -> Step | None:
        """The step of highest throughput within the SLA without a failed request."""
        within = [s for s in self.steps if s.within(self.sla_ms)]
        return max(within, key=lambda s: s.rps) if within else None

    def capacity(self, report: str | None = None) -> MeasuredCapacity | None:
        step = self.sustained
        if step is None or step.p95_ms is None or step.rps <= 0:
            return None
        return MeasuredCapacity(
            rps_per_replica=round(step.rps, 1),
            p95_ms=step.p95_ms,
            latency_target_ms=self.sla_ms,
            concurrency=step.users,
            cpu_cores=self.cpu_cores,
            measured_on=self.measured_on,
            machine=self.machine,
            runtime=self.runtime,
            tool=self.tool,
            report=report,
        )


def applies(stage: Stage) -> bool:
    """An online endpoint is served (online and hybrid deployments) and the serving component
    ran for it (when it failed, the load test is reported as not reached)."""
    online = stage.answers.get("deployment_target", "online") in {"online", "hybrid"}
    return online and any(h.component == "serving" for h in stage.report.handoffs)


def rehearse_load(stage: Stage) -> None:
    endpoint: Endpoint = stage.shared["serving"]
    sla_ms = latency_target_ms(stage)
    limit = cpu_limit(stage.project)
    try:
        report = measure(
            endpoint,
            sla_ms=sla_ms,
            cpu_limit=limit,
            cache=stage.cache,
            workspace=stage.workspace,
            resolve=lambda host, port: stage.network.resolve(host, port),
        )
    except LoadTestFailed as exc:
        stage.check(
            "the load test runs", False, f"{LOCUST_REQUIREMENT} against {endpoint.url}", str(exc)
        )
        return
    stage.shared["load"] = report
    path = stage.workspace / "load-report.json"
    path.write_text(report.model_dump_json(indent=2) + "\n", encoding="utf-8")
    _checks(stage, report, path)


def _checks(stage: Stage, report: LoadReport, path: Path) -> None:
    steps = report.steps
    users = f"{steps[0].users}..{steps[-1].users}" if steps else "no"
    how = (
        f"{report.tool}, {users} users against POST {report.endpoint} ({report.model}, "
        f"{report.runtime}), runtime {report.held}; report {path}"
    )
    step = report.sustained
    last = steps[-1] if steps else None
    if step is None:
        first = f"{_step_text(last)}" if last else "no step ran"
        stage.check(
            "one replica serves within the SLA",
            False,
            how,
            f"no step kept p95 within the {report.sla_ms:g} ms SLA without errors: {first}",
        )
        return
    beyond = (
        f"; at {last.users} users {_step_text(last)}"
        if last is not None and last is not step and not last.within(report.sla_ms)
        else f"; the SLA held up to {last.users if last else step.users} users"
    )
    stage.check(
        "one replica serves within the SLA",
        True,
        f"{how}: {step.rps:g} rps at p95 {step.p95_ms:g} ms with {step.users} requests in "
        f"flight (SLA {report.sla_ms:g} ms){beyond}",
    )
    design = _design_sizing(stage.project)
    assumed, replicas = design.get("per_replica_rps"), design.get("max_replicas")
    peak, utilization = design.get("peak_rps"), design.get("target_utilization")
    capacity = report.capacity()
    if capacity is None or not isinstance(assumed, int | float):
        return
    carries = ""
    if (
        isinstance(replicas, int)
        and isinstance(peak, int | float)
        and isinstance(utilization, int | float)
    ):
        total = round(replicas * capacity.rps_per_replica * utilization, 1)
        enough = "enough for" if total >= peak else "short of"
        carries = (
            f"; at the measured capacity its {replicas} replicas carry {total:g} rps at "
            f"{utilization:.0%}, {enough} the peak of {peak:g} rps"
        )
    stage.check(
        "the measured capacity is reported against the design's",
        True,
        f"the design sizes replicas for {assumed:g} rps each; measured "
        f"{capacity.rps_per_replica:g} rps on {capacity.cpu_cores:g} cores{carries} "
        "(`mlopsctl rehearse --measure` records it for `mlopsctl update`)",
    )


def _step_text(step: Step | None) -> str:
    if step is None:
        return "no step ran"
    p95 = f"p95 {step.p95_ms:g} ms" if step.p95_ms is not None else "no answer"
    failed = f", {step.failures} of {step.requests} failed ({'; '.join(step.errors)})"
    return f"{step.rps:g} rps at {p95}" + (failed if step.failures else "")


def record(stage: Stage) -> None:
    """``rehearse --measure``: the load report into the project and the measured capacity into
    its ``mlopsctl.yaml``, each named in the handoff the output shows."""
    from mlopsctl import layout, measured

    stage.component = "load"
    name = "the measured capacity is recorded in mlopsctl.yaml"
    report: LoadReport | None = stage.shared.get("load")
    capacity = report.capacity(LOAD_REPORT) if report is not None else None
    if report is None or capacity is None:
        stage.check(
            name,
            False,
            f"{stage.project / layout.ANSWERS_FILE} left as it was",
            "nothing to record: the load test did not run or no step stayed within the SLA",
        )
        return
    try:  # a repository is untrusted: never write through a link it holds
        answers = layout.resolve(stage.project, layout.ANSWERS_FILE, source="rehearse", key="")
        target = layout.resolve(stage.project, LOAD_REPORT, source="rehearse", key="")
    except layout.LayoutError as exc:
        stage.check(name, False, "nothing written into the project", exc.message)
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW
    with os.fdopen(os.open(target, flags, 0o644), "w", encoding="utf-8") as handle:
        handle.write(report.model_dump_json(indent=2) + "\n")
    _own_like(target, answers)
    measured.write(answers, capacity)
    stage.check(
        name,
        True,
        f"wrote `measured` in {answers} ({capacity.summary()}) and the load report "
        f"{target}; commit them (git add mlopsctl.yaml {LOAD_REPORT} && git commit), then "
        "run `mlopsctl update` to size replicas and concurrency from the measurement",
    )


def _own_like(path: Path, like: Path) -> None:
    """Give a file the rehearsal (root) wrote the owner of the project's answers file."""
    if os.geteuid() == 0:
        info = like.stat()
        os.chown(path, info.st_uid, info.st_gid)


# --------------------------------------------------------------------------------------------
# What the design and the manifests say
# --------------------------------------------------------------------------------------------


def _design_sizing(project: Path) -> Mapping[str, Any]:
    from mlopsctl import layout

    try:
        design = layout.read_design(project)
    except layout.LayoutError:
        return {}
    return design.sizing if design is not None else {}


def latency_target_ms(stage: Stage) -> float:
    """The design's p95 latency target: the SLA when one is given, else the default."""
    value = _design_sizing(stage.project).get("latency_target_ms")
    if isinstance(value, int | float) and value > 0:
        return float(value)
    scale = stage.answers.get("scale_requirements") or {}
    given = scale.get("latency_ms") if isinstance(scale, dict) else None
    if isinstance(given, int | float) and given > 0:
        return float(given)
    raise NotRehearsable(
        f"{stage.project}/.mlopsctl/design.json names no latency target to load-test against"
    )


def cpu_limit(project: Path) -> str | None:
    """The serving container's CPU limit: the InferenceService's predictor, else the
    Deployment's container, else the Seldon Server's MLServer container (None when no manifest
    sets one)."""
    for name in ("inferenceservice.yaml", "serving.yaml", "seldon.yaml"):
        path = project / "k8s" / name
        if not path.is_file():
            continue
        for doc in manifests.documents(path):
            limits = _limits(doc)
            if limits and limits.get("cpu") is not None:
                return str(limits["cpu"])
    return None


def _limits(doc: Mapping[str, Any]) -> Mapping[str, Any] | None:
    spec = doc.get("spec") if isinstance(doc.get("spec"), dict) else {}
    assert isinstance(spec, dict)
    if doc.get("kind") == "InferenceService":
        predictor = spec.get("predictor") or {}
        for part in (predictor.get("model"), *(predictor.get("containers") or [])):
            if isinstance(part, dict):
                limits = (part.get("resources") or {}).get("limits")
                if isinstance(limits, dict):
                    return limits
    if doc.get("kind") in ("Deployment", "Server"):
        # A Deployment's pod template; a Seldon Server's pod spec override (k8s/seldon.yaml).
        pod = ((spec.get("template") or {}).get("spec")) or spec.get("podSpec") or {}
        for container in pod.get("containers") or []:
            limits = ((container or {}).get("resources") or {}).get("limits")
            if isinstance(limits, dict):
                return limits
    return None


# --------------------------------------------------------------------------------------------
# The measurement
# --------------------------------------------------------------------------------------------


def user_steps(max_users: int = MAX_USERS) -> list[int]:
    """1, 2, 4, ... up to ``max_users``."""
    return [2**i for i in range(int(math.log2(max_users)) + 1)]


def measure(
    endpoint: Endpoint,
    *,
    sla_ms: float,
    cpu_limit: str | None,
    cache: Path,
    workspace: Path,
    resolve: Any = None,
    max_users: int = MAX_USERS,
    warmup_s: float = WARMUP_SECONDS,
    window_s: float = WINDOW_SECONDS,
) -> LoadReport:
    """Load-test ``endpoint`` held to ``cpu_limit`` and report every step."""
    url = _local_url(endpoint.url, resolve)
    port = urlsplit(url).port
    if port is None:
        raise NotRehearsable(f"{endpoint.url}: the serving endpoint names no port")
    venv = images.install([LOCUST_REQUIREMENT], Path(sys.executable), cache, "the load test")
    python = venv / "bin" / "python"
    path = endpoint.infer_path if endpoint.infer_path.startswith("/") else f"/{endpoint.infer_path}"
    users = user_steps(max_users)
    config = {
        "url": url,
        "path": path,
        "request": endpoint.request,
        "answer_key": "outputs" if endpoint.protocol == "v2" else "predictions",
        "sla_ms": sla_ms,
        "users": users,
        "warmup_s": warmup_s,
        "window_s": window_s,
        "timeout_s": REQUEST_TIMEOUT_SECONDS,
    }
    config_path = workspace / "load-config.json"
    result_path = workspace / "load-result.json"
    config_path.write_text(json.dumps(config), encoding="utf-8")
    cores = _cores(cpu_limit)
    with hold(listening_processes(port), cores) as held:
        timeout = len(users) * (warmup_s + window_s + 5) + 120
        taskset = shutil.which("taskset")
        cores_left = ",".join(map(str, sorted(held.rest)))
        generator = [taskset, "-c", cores_left] if held.rest and taskset else []
        held_text = held.how + (f"; the load generator on CPU {cores_left}" if generator else "")
        run = _proc.run(
            [
                *generator,
                str(python),
                str(Path(__file__).with_name("_loadgen.py")),
                str(config_path),
                str(result_path),
            ],
            env={
                "PATH": f"{venv / 'bin'}:/usr/bin:/bin",
                "LANG": "C.UTF-8",
                "HOME": str(workspace),
            },
            cwd=workspace,
            timeout=timeout,
        )
    if run.returncode != 0 or not result_path.is_file():
        raise LoadTestFailed(f"the load generator failed:\n{(run.stderr or run.stdout)[-2000:]}")
    try:
        result = json.loads(result_path.read_text(encoding="utf-8"))
        steps = [Step.model_validate(s) for s in result["steps"]]
    except (ValueError, KeyError, ValidationError) as exc:
        raise LoadTestFailed(f"the load generator wrote no report: {exc}") from None
    return LoadReport(
        measured_on=datetime.date.today().isoformat(),
        machine=machine(),
        runtime=runtime_version(port, endpoint),
        tool=str(result["tool"]),
        model=f"{endpoint.model_name} version {endpoint.model_version}",
        endpoint=path,
        protocol=endpoint.protocol,
        sla_ms=sla_ms,
        cpu_limit=cpu_limit,
        cpu_cores=held.cores,
        held=held_text,
        steps=steps,
    )


def _local_url(url: str, resolve: Any) -> str:
    """The endpoint's URL on this machine: a Service name is routed to its local port."""
    parts = urlsplit(url)
    host, port = parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80)
    if host not in {_proc.LOOPBACK, "localhost"} and resolve is not None:
        local = resolve(host, port)
        if local is not None:
            return f"http://{_proc.LOOPBACK}:{local}"
    return f"{parts.scheme}://{parts.netloc}"


def _cores(limit: str | None) -> float | None:
    if limit is None:
        return None
    try:
        return manifests.cpu_cores(limit)
    except (ValueError, TypeError):
        return None


def machine() -> str:
    """The CPU model and the number of cores of this machine."""
    model = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    count = os.cpu_count() or 1
    return f"{' '.join(model.split())[:150]} ({count} CPU{'s' if count != 1 else ''})"


def runtime_version(port: int, endpoint: Endpoint) -> str:
    """The runtime's name and version from its V2 server metadata (``GET /v2``), which MLServer
    and KServe's model server both answer."""
    with contextlib.suppress(OSError, ValueError):
        answer = _proc.http_call(port, "/v2", timeout=5, retries=1)
        if answer.status == 200:
            meta = json.loads(answer.body)
            if isinstance(meta, dict) and meta.get("name"):
                return f"{meta['name']} {meta.get('version', '')}".strip()[:200]
    return f"a {endpoint.protocol} runtime"


# --------------------------------------------------------------------------------------------
# Holding the runtime to the pod's CPU limit
# --------------------------------------------------------------------------------------------


class Held:
    """How the runtime is held: its CPUs, in words, and the cores left to the load generator
    (none when the runtime may use every core)."""

    def __init__(self, cores: float, how: str, rest: frozenset[int] = frozenset()) -> None:
        self.cores = cores
        self.how = how
        self.rest = rest


def listening_processes(port: int) -> list[int]:
    """The process listening on TCP ``port`` here and every process below it."""
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text(encoding="ascii").splitlines()[1:]:
                fields = line.split()
                if (
                    len(fields) > 9
                    and fields[3] == "0A"
                    and int(fields[1].rsplit(":", 1)[1], 16) == port
                ):
                    inodes.add(fields[9])
    sockets = {f"socket:[{inode}]" for inode in inodes}
    found: set[int] = set()
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        with contextlib.suppress(OSError, ValueError, IndexError):
            stat = (entry / "stat").read_text(encoding="utf-8", errors="replace")
            parents[pid] = int(stat.rsplit(")", 1)[1].split()[1])
        if sockets:
            with contextlib.suppress(OSError):
                for fd in (entry / "fd").iterdir():
                    with contextlib.suppress(OSError):
                        if os.readlink(fd) in sockets:
                            found.add(pid)
                            break
    grown = True
    while grown:
        below = {pid for pid, parent in parents.items() if parent in found} - found
        grown = bool(below)
        found |= below
    return sorted(found)


@contextlib.contextmanager
def hold(pids: list[int], cores: float | None) -> Iterator[Held]:
    """Hold ``pids`` to ``cores`` CPUs while inside: a cgroup CPU quota, else CPU affinity."""
    available = os.cpu_count() or 1
    if cores is None:
        yield Held(
            float(available), f"unlimited (the manifest sets no CPU limit; {available} cores)"
        )
        return
    if not pids:
        yield Held(float(available), f"not held (no process found on its port; {available} cores)")
        return
    with contextlib.ExitStack() as stack:
        how = _cgroup(stack, pids, cores)
        whole = math.ceil(cores)
        # Its own cores too, where the machine has more: the load generator gets the others.
        pinned = _affinity(stack, pids, whole) if whole < available else None
        rest = frozenset(os.sched_getaffinity(0)) - pinned if pinned else frozenset()
        if how is not None:
            if pinned:
                how += f", on {whole} of {available} cores"
            yield Held(cores, how, rest)
            return
        if pinned:
            yield Held(
                float(whole), f"pinned to {whole} of {available} cores (sched_setaffinity)", rest
            )
            return
        yield Held(
            float(min(whole, available)),
            f"not held below this machine's {available} cores (CPU limit {cores:g})",
        )


def _cgroup(stack: contextlib.ExitStack, pids: list[int], cores: float) -> str | None:
    quota = max(1000, int(cores * _CFS_PERIOD_US))
    name = f"mlopsctl-load-{os.getpid()}"
    candidates = [
        (CGROUP_ROOT, "cpu.max", f"{quota} {_CFS_PERIOD_US}", "cgroup v2 cpu.max"),
        (CGROUP_ROOT / "cpu", "cpu.cfs_quota_us", str(quota), "cgroup v1 cpu.cfs_quota_us"),
        (CGROUP_ROOT / "cpu,cpuacct", "cpu.cfs_quota_us", str(quota), "cgroup v1 cpu.cfs_quota_us"),
    ]
    for root, control, value, what in candidates:
        if not (root / "cgroup.procs").is_file():
            continue
        group = root / name
        try:
            group.mkdir(exist_ok=True)
        except OSError:
            continue
        try:
            if control == "cpu.cfs_quota_us":
                (group / "cpu.cfs_period_us").write_text(str(_CFS_PERIOD_US))
            (group / control).write_text(value)
            origins = {pid: _cgroup_of(pid, root) for pid in pids}
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    (group / "cgroup.procs").write_text(str(pid))
        except OSError:
            _release(group, root, {})
            continue
        stack.callback(_release, group, root, origins)
        return f"held to {cores:g} CPU ({what} {value}, {len(pids)} processes)"
    return None


def _cgroup_of(pid: int, root: Path) -> Path:
    """The cgroup directory ``pid`` is in under ``root`` (from ``/proc/PID/cgroup``)."""
    v2 = root == CGROUP_ROOT
    with contextlib.suppress(OSError, ValueError):
        for line in Path(f"/proc/{pid}/cgroup").read_text(encoding="utf-8").splitlines():
            _, controllers, path = line.split(":", 2)
            if (v2 and controllers == "") or (not v2 and "cpu" in controllers.split(",")):
                candidate = root / path.lstrip("/")
                if (candidate / "cgroup.procs").is_file():
                    return candidate
    return root


def _release(group: Path, root: Path, origins: Mapping[int, Path]) -> None:
    with contextlib.suppress(OSError):
        for line in (group / "cgroup.procs").read_text().split():
            pid = int(line)
            with contextlib.suppress(OSError):
                (origins.get(pid, root) / "cgroup.procs").write_text(str(pid))
    with contextlib.suppress(OSError):
        group.rmdir()


def _affinity(stack: contextlib.ExitStack, pids: list[int], cores: int) -> frozenset[int] | None:
    """Pin every thread of ``pids`` to the first ``cores`` CPUs; the CPUs, or None."""
    chosen = frozenset(sorted(os.sched_getaffinity(0))[:cores])
    before: dict[int, set[int]] = {}
    try:
        for pid in pids:
            for task in Path(f"/proc/{pid}/task").iterdir():
                tid = int(task.name)
                before[tid] = os.sched_getaffinity(tid)
                os.sched_setaffinity(tid, chosen)
    except OSError:
        _restore(before)
        return None
    stack.callback(_restore, before)
    return chosen


def _restore(before: Mapping[int, set[int]]) -> None:
    for tid, cpus in before.items():
        with contextlib.suppress(OSError):
            os.sched_setaffinity(tid, cpus)
