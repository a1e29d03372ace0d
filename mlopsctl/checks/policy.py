"""Policy predicates: the restricted Pod Security Standard, resource and image hygiene, secrets,
and the governance gates production requires."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from mlopsctl.checks._engine import Context, Hit, predicate
from mlopsctl.checks._model import CheckSpec, KeyPath
from mlopsctl.checks._repo import KubeObject

POD_TEMPLATE_PATHS: dict[str, KeyPath] = {
    "Pod": ("spec",),
    "Deployment": ("spec", "template", "spec"),
    "StatefulSet": ("spec", "template", "spec"),
    "DaemonSet": ("spec", "template", "spec"),
    "ReplicaSet": ("spec", "template", "spec"),
    "Job": ("spec", "template", "spec"),
    "CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
}
LONG_RUNNING = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Pod"}
KSERVE_COMPONENTS = ("predictor", "transformer", "explainer")
# Framework shorthands of a KServe component, each a container spec of its own.
KSERVE_MODEL_KEYS = (
    "model",
    "sklearn",
    "xgboost",
    "lightgbm",
    "pytorch",
    "tensorflow",
    "onnx",
    "triton",
    "pmml",
    "paddle",
    "huggingface",
)


@dataclass(frozen=True)
class Container:
    obj: KubeObject
    pod: dict[str, Any]
    pod_path: KeyPath
    data: dict[str, Any]
    path: KeyPath
    name: str
    init: bool = False
    kserve_model: bool = False  # a KServe model spec: the serving runtime supplies the image

    def line(self, *sub: str | int) -> int | None:
        return self.obj.line(*self.path, *sub)

    def label(self) -> str:
        return f"{self.obj.label()}: container {self.name!r}"

    def security(self) -> dict[str, Any]:
        sc = self.data.get("securityContext")
        return sc if isinstance(sc, dict) else {}

    def pod_security(self) -> dict[str, Any]:
        sc = self.pod.get("securityContext")
        return sc if isinstance(sc, dict) else {}


def _get(data: Any, path: KeyPath) -> Any:
    for p in path:
        if isinstance(data, dict) and isinstance(p, str):
            data = data.get(p)
        elif isinstance(data, list) and isinstance(p, int) and p < len(data):
            data = data[p]
        else:
            return None
    return data


def pods(obj: KubeObject) -> Iterator[tuple[dict[str, Any], KeyPath, bool]]:
    """(pod spec, its path, whether it is a KServe component) for one object."""
    if obj.kind in POD_TEMPLATE_PATHS:
        spec = _get(obj.data, POD_TEMPLATE_PATHS[obj.kind])
        if isinstance(spec, dict):
            yield spec, POD_TEMPLATE_PATHS[obj.kind], False
    elif obj.kind == "InferenceService" and obj.group == "serving.kserve.io":
        spec = obj.data.get("spec")
        if isinstance(spec, dict):
            for comp in KSERVE_COMPONENTS:
                c = spec.get(comp)
                if isinstance(c, dict):
                    yield c, ("spec", comp), True


def containers(ctx: Context) -> Iterator[Container]:
    for obj in ctx.repo.kube_objects:
        for pod, pod_path, kserve in pods(obj):
            for key, init in (("containers", False), ("initContainers", True)):
                for i, c in enumerate(pod.get(key) or []):
                    if isinstance(c, dict):
                        yield Container(
                            obj, pod, pod_path, c, (*pod_path, key, i), str(c.get("name", i)), init
                        )
            if kserve:
                for key in KSERVE_MODEL_KEYS:
                    c = pod.get(key)
                    if isinstance(c, dict):
                        yield Container(
                            obj, pod, pod_path, c, (*pod_path, key), key, kserve_model=True
                        )


def _hit(c: Container, sub: KeyPath, message: str) -> Hit:
    return Hit(c.obj.file.rel, c.line(*sub), f"{c.label()}: {message}")


@predicate()
def run_as_non_root(ctx: Context, spec: CheckSpec) -> Iterable[Hit]:
    for c in containers(ctx):
        sc, pod = c.security(), c.pod_security()
        if sc.get("runAsUser") == 0 or (pod.get("runAsUser") == 0 and "runAsUser" not in sc):
            yield _hit(c, ("securityContext",), "runs as user 0 (root)")
            continue
        value = sc.get("runAsNonRoot", pod.get("runAsNonRoot"))
        if value is not True:
            yield _hit(c, ("securityContext",), "runAsNonRoot is not true")


@predicate()
def read_only_root_filesystem(ctx: Context, spec: CheckSpec) -> Iterable[Hit]:
    for c in containers(ctx):
        if c.security().get("readOnlyRootFilesystem") is not True:
            yield _hit(c, ("securityContext",), "readOnlyRootFilesystem is not true")


@predicate()
def no_privilege_escalation(ctx: Context, spec: CheckSpec) -> Iterable[Hit]:
    for c in containers(ctx):
        if c.security().get("allowPrivilegeEscalation") is not False:
            yield _hit(c, ("securityContext",), "allowPrivilegeEscalation is not false")


@predicate()
def not_privileged(ctx: Context, spec: CheckSpec) -> Iterable[Hit]:
    for c in containers(ctx):
        if c.security().get("privileged") is True:
            yield _hit(c, ("securityContext", "privileged"), "runs privileged")
    for obj in ctx.repo.kube_objects:
        for pod, path, _ in pods(obj):
            for key in ("hostNetwork", "hostPID", "hostIPC"):
                if pod.get(key) is True:
                    yield Hit(obj.file.rel, obj.line(*path, key), f"{obj.label()}: {key} is true")


@predicate()
def capabilities_dropped(ctx: Context, spec: CheckSpec) -> Iterable[Hit]:
    allowed_add = set(spec.parameters.get("allowed_add", ["NET_BIND_SERVICE"]))
    for c in containers(ctx):
        caps = c.security().get("capabilities")
        caps = caps if isinstance(caps, dict) else {}
        drop = [str(x).upper() for x in caps.get("drop") or []]
        if "ALL" not in drop:
            yield _hit(c, ("securityContext",), "capabilities.drop does not contain ALL")
        added = sorted({str(x).upper() for x in caps.get("add") or []} - allowed_add)
        if added:
            yield _hit(c, ("securityContext", "capabilities", "add"), f"adds capabilities {added}")


@predicate()
def seccomp_profile(ctx: Context, spec: CheckSpec) -> Iterable[Hit]:
    good = {"RuntimeDefault", "Localhost"}
    for c in containers(ctx):
        own = (c.security().get("seccompProfile") or {}).get("type")
        pod = (c.pod_security().get("seccompProfile") or {}).get("type")
        effective = own if own is not None else pod
        if effective not in good:
            what = "no seccomp profile" if effective is None else f"seccomp profile {effective}"
            yield _hit(c, ("securityContext",), f"{what}; use RuntimeDefault")


@predicate()
def resources_set(ctx: Context, spec: CheckSpec) -> Iterable[Hit]:
    needed = spec.parameters.get("resources", ["cpu", "memory"])
    for c in containers(ctx):
        res = c.data.get("resources")
        if not isinstance(res, dict) and c.kserve_model:
            res = c.pod.get("resources")  # component-level resources apply to the model
        res = res if isinstance(res, dict) else {}
        missing = [
            f"{kind}.{r}"
            for kind in ("requests", "limits")
            for r in needed
            if not isinstance(res.get(kind), dict) or res[kind].get(r) in (None, "")
        ]
        if missing:
            yield _hit(c, ("resources",), f"no resources {', '.join(missing)}")


_DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")


def image_problem(image: str) -> str | None:
    if _DIGEST.search(image):
        return None
    last = image.rsplit("/", 1)[-1]
    if ":" not in last:
        return "has no tag (pulls :latest)"
    tag = last.rsplit(":", 1)[1]
    if tag.lower() in {"latest", "stable", "main", "master", "edge", "nightly"} or tag == "":
        return f"uses the floating tag :{tag}"
    if "$" in tag or "{" in tag:
        return f"tag {tag!r} is not a fixed version"
    return None


@predicate()
def image_pinned(ctx: Context, spec: CheckSpec) -> Iterable[Hit]:
    for c in containers(ctx):
        image = c.data.get("image")
        if image is None and c.kserve_model:
            continue  # the ServingRuntime supplies a pinned image
        if not isinstance(image, str) or not image.strip():
            yield _hit(c, (), "no image")
            continue
        problem = image_problem(image.strip())
        if problem:
            yield _hit(c, ("image",), f"image {image} {problem}")
    for f in ctx.repo.files:
        if f.name == "Dockerfile" or f.name.startswith("Dockerfile.") or f.suffix == ".dockerfile":
            for n, line in enumerate((f.text or "").splitlines(), 1):
                m = re.match(r"^\s*FROM\s+(?:--\S+\s+)*(\S+)", line, re.IGNORECASE)
                if m and m.group(1).lower() != "scratch" and "$" not in m.group(1):
                    problem = image_problem(m.group(1))
                    stage_ref = m.group(1) in _stages(f.text or "")
                    if problem and not stage_ref:
                        yield Hit(f.rel, n, f"base image {m.group(1)} {problem}")


def _stages(text: str) -> set[str]:
    return set(re.findall(r"^\s*FROM\s+\S+\s+AS\s+(\S+)", text, re.IGNORECASE | re.MULTILINE))


@predicate()
def probes_set(ctx: Context, spec: CheckSpec) -> Iterable[Hit]:
    for c in containers(ctx):
        if c.init or c.obj.kind not in LONG_RUNNING:
            continue
        missing = [p for p in ("readinessProbe", "livenessProbe") if p not in c.data]
        if missing:
            yield _hit(c, (), f"no {' or '.join(missing)}")


def _selects(selector: Any, labels: Any) -> bool:
    if not isinstance(selector, dict) or not isinstance(labels, dict):
        return False
    match = selector.get("matchLabels") or {}
    if not match and not selector.get("matchExpressions"):
        return False
    return all(labels.get(k) == v for k, v in match.items())


@predicate()
def pdb_for_production(ctx: Context, spec: CheckSpec) -> Iterable[Hit]:
    workloads = ctx.repo.objects("Deployment", "StatefulSet")
    if not workloads or not ctx.production(spec):
        return
    pdbs = ctx.repo.objects("PodDisruptionBudget")
    for w in workloads:
        labels = _get(w.data, ("spec", "template", "metadata", "labels"))
        if not any(_selects(_get(p.data, ("spec", "selector")), labels) for p in pdbs):
            yield Hit(
                w.file.rel,
                w.line("kind"),
                f"{w.label()}: no PodDisruptionBudget selects its pods (governance: production)",
            )


# --- secrets ------------------------------------------------------------------------------------

_SECRET_NAME = re.compile(
    r"(PASSWORD|PASSWD|SECRET|TOKEN|API_?KEY|ACCESS_?KEY|PRIVATE_?KEY|CREDENTIALS?)", re.I
)
_REFERENCE = re.compile(r"^\s*(\$\{[^}]+\}|\$\([^)]+\)|\$[A-Za-z_][A-Za-z0-9_]*|<[^>]*>)?\s*$")
_AWS_KEY = re.compile(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b")
_DATABRICKS = re.compile(r"\bdapi[0-9a-f]{32}\b")
_GH_TOKEN = re.compile(r"\b(ghp|gho|ghs|ghu)_[A-Za-z0-9]{36}\b")
_PRIVATE_KEY = re.compile(r"-----BEGIN ([A-Z]+ )?PRIVATE KEY-----")
# scheme://user:password@host -- the password runs to the last '@' before the host, so a
# password containing '@' is caught whole.
_URL_PASSWORD = re.compile(
    r"\b[a-zA-Z][a-zA-Z0-9+.-]*://(?P<user>[^\s:/@'\"]+):(?P<pw>[^\s'\"]+)@(?P<host>[^\s@/'\"]+)"
)
_TEXT_SUFFIXES = {
    ".yaml", ".yml", ".json", ".py", ".env", ".ini", ".cfg", ".toml", ".sh", ".conf",
    ".properties", ".tf", ".tfvars", ".txt", ".md",
}  # fmt: skip
_ENV_LINE = re.compile(r"^\s*(export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*?)\s*$")


def _is_reference(value: str) -> bool:
    v = value.strip().strip("'\"")
    return (
        v == ""
        or bool(_REFERENCE.match(v))
        or v.startswith(("${", "$(", "{{", "<", "arn:", "projects/", "vault:"))
        or v.lower() in {"changeme", "none", "null", "redacted", "***", "xxx"}
    )


def _password_literal(pw: str) -> bool:
    placeholders = {"password", "pass", "passwd", "pwd", "secret", "changeme"}
    return (
        not _is_reference(pw)
        and not re.fullmatch(r"\*+|x+|\.\.\.", pw)
        and pw.lower() not in placeholders
    )


def _line_secrets(text: str) -> Iterator[tuple[int, str]]:
    for n, line in enumerate(text.splitlines(), 1):
        if _AWS_KEY.search(line):
            yield n, "AWS access key id"
        if _DATABRICKS.search(line):
            yield n, "Databricks token"
        if _GH_TOKEN.search(line):
            yield n, "GitHub token"
        if _PRIVATE_KEY.search(line):
            yield n, "private key"
        for m in _URL_PASSWORD.finditer(line):
            if _password_literal(m.group("pw")):
                yield n, f"password in connection string for {m.group('host')}"


def _env_literals(obj: KubeObject, pod: dict[str, Any], path: KeyPath) -> Iterator[Hit]:
    for key in ("containers", "initContainers"):
        for i, c in enumerate(pod.get(key) or []):
            if not isinstance(c, dict):
                continue
            for j, env in enumerate(c.get("env") or []):
                if not isinstance(env, dict) or "value" not in env:
                    continue
                name, value = str(env.get("name", "")), env.get("value")
                if (
                    _SECRET_NAME.search(name)
                    and isinstance(value, str | int)
                    and not _is_reference(str(value))
                ):
                    yield Hit(
                        obj.file.rel,
                        obj.line(*path, key, i, "env", j, "value"),
                        f"{obj.label()}: env {name} has a literal value; "
                        "use valueFrom.secretKeyRef",
                    )


@predicate()
def literal_secret(ctx: Context, spec: CheckSpec) -> Iterable[Hit]:
    seen: set[tuple[str, int | None]] = set()

    def once(h: Hit) -> Iterator[Hit]:
        if (h.path, h.line) not in seen:
            seen.add((h.path, h.line))
            yield h

    for obj in ctx.repo.kube_objects:
        if obj.kind == "Secret" and (obj.data.get("data") or obj.data.get("stringData")):
            yield from once(
                Hit(obj.file.rel, obj.line("kind"), f"{obj.label()}: Secret with literal data")
            )
        for pod, path, _ in pods(obj):
            for h in _env_literals(obj, pod, path):
                yield from once(h)
            for key in KSERVE_MODEL_KEYS:
                if isinstance(pod.get(key), dict):
                    for h in _env_literals(obj, {"containers": [pod[key]]}, path):
                        yield from once(Hit(h.path, obj.line(*path, key, "env"), h.message))
    for f in ctx.repo.files:
        name = f.name
        is_env = name == ".env" or (name.startswith(".env.") and not name.endswith(".example"))
        if not (is_env or f.suffix in _TEXT_SUFFIXES) or f.text is None:
            continue
        for n, what in _line_secrets(f.text):
            yield from once(Hit(f.rel, n, f"literal {what}"))
        if is_env:
            for n, line in enumerate(f.text.splitlines(), 1):
                m = _ENV_LINE.match(line)
                if m and _SECRET_NAME.search(m.group(2)) and not _is_reference(m.group(3)):
                    yield from once(Hit(f.rel, n, f"{m.group(2)} has a literal value"))
        elif f.suffix == ".py":
            for m in re.finditer(
                r"^\s*(?:os\.environ\[\s*['\"])?([A-Z_]*(?:MLFLOW_TRACKING_(?:TOKEN|PASSWORD)|"
                r"PASSWORD|SECRET_KEY|API_KEY))['\"]?\]?\s*=\s*['\"]([^'\"]+)['\"]",
                f.text,
                re.MULTILINE,
            ):
                if not _is_reference(m.group(2)):
                    lineno = f.line_at(m.start())
                    yield from once(Hit(f.rel, lineno, f"{m.group(1)} set to a literal value"))
        elif (
            (f.is_yaml or f.is_json)
            and f.docs
            and not any(isinstance(d, dict) and "kind" in d for d in f.docs)
        ):
            for key, value in _secret_keys(f.docs):
                if _is_reference(value):
                    continue
                at = f.find_line(value) or f.find_line(key)
                yield from once(Hit(f.rel, at, f"{key} has a literal value"))


def _secret_keys(node: Any, key: str = "") -> Iterator[tuple[str, str]]:
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _secret_keys(v, str(k))
    elif isinstance(node, list):
        for v in node:
            yield from _secret_keys(v, key)
    elif (
        isinstance(node, str)
        and key
        and re.search(r"(password|passwd|secret|token|api_?key|access_?key)$", key, re.I)
        and not key.lower().endswith(("_ref", "_env", "secretname", "secret_name"))
    ):
        yield key, node


# --- governance gates for production -------------------------------------------------------------


def _docs_with_heading(ctx: Context, words: list[str]) -> bool:
    alternatives = "|".join(re.escape(w) for w in words)
    atx = rf"^#{{1,6}}\s.*({alternatives})"  # "## Rollback"
    setext = rf"^.*({alternatives}).*\n[=-]{{3,}}\s*$"  # "Rollback" underlined
    pattern = re.compile(f"{atx}|{setext}", re.IGNORECASE | re.MULTILINE)
    return any(pattern.search(f.text or "") for f in ctx.repo.markdown_files())


@predicate()
def rollback_procedure(ctx: Context, spec: CheckSpec) -> Iterable[Hit]:
    if not ctx.production(spec):
        return
    if not _docs_with_heading(ctx, spec.parameters.get("headings", ["rollback", "roll back"])):
        yield Hit(
            ".",
            None,
            "no runbook with a rollback section (a Markdown heading naming rollback)",
        )


def _environment_name(job: Any) -> str:
    env = job.get("environment") if isinstance(job, dict) else None
    if isinstance(env, dict):
        env = env.get("name")
    return str(env) if env is not None else ""


# A Jenkins ``input`` step, in any of Groovy's call spellings: ``input(...)``, ``input { }``
# (declarative), ``input message: '...'`` and ``input 'Deploy?'``.
_JENKINS_INPUT = re.compile(r"""\binput\b\s*(\(|\{|message\s*:|['"])""")


@predicate()
def approval_gate(ctx: Context, spec: CheckSpec) -> Iterable[Hit]:
    if not ctx.production(spec):
        return
    pattern = re.compile(spec.parameters.get("environment_pattern", "prod"), re.IGNORECASE)
    from mlopsctl.checks.schemas import workflow_files

    ci_files = [f for f in workflow_files(ctx) if f.docs]
    gitlab = ctx.repo.get(".gitlab-ci.yml")
    jenkins = ctx.repo.get("Jenkinsfile")
    for f in ci_files:
        jobs = f.docs[0].get("jobs") if isinstance(f.docs[0], dict) else None
        if isinstance(jobs, dict) and any(
            pattern.search(_environment_name(j)) for j in jobs.values()
        ):
            return
    if gitlab is not None and isinstance(gitlab.docs[:1] and gitlab.docs[0], dict):
        for job in gitlab.docs[0].values():
            if (
                isinstance(job, dict)
                and job.get("when") == "manual"
                and pattern.search(_environment_name(job))
            ):
                return
    if jenkins is not None and _JENKINS_INPUT.search(jenkins.text or ""):
        return
    where = ci_files[0].rel if ci_files else (gitlab.rel if gitlab else ".")
    yield Hit(
        where,
        None,
        "no production deployment job behind a manual approval (a GitHub Actions job with a "
        "protected `environment: production`, a GitLab `when: manual` job, or a Jenkins `input`)",
    )


@predicate()
def model_card(ctx: Context, spec: CheckSpec) -> Iterable[Hit]:
    if not ctx.production(spec):
        return
    pattern = re.compile(r"model[-_ ]?card", re.IGNORECASE)
    if not any(pattern.search(f.name) for f in ctx.repo.files):
        yield Hit(".", None, "no model card (a file named like MODEL_CARD.md)")


def _rollout_driver(ctx: Context) -> bool:
    """Code or a CI workflow (not a manifest) that sets an InferenceService's
    canaryTrafficPercent: the rollout is driven step by step at deploy time."""
    for f in ctx.repo.files:
        driver = f.suffix in {".py", ".sh"} or f.rel.startswith(".github/workflows/")
        if driver and "canaryTrafficPercent" in (f.text or ""):
            return True
    return False


def _runs_tracking_server(o: KubeObject) -> bool:
    """A Deployment of the MLflow tracking server (``mlflow server``), which serves no model."""
    for pod, _, _ in pods(o):
        for c in pod.get("containers") or []:
            if not isinstance(c, dict):
                continue
            words = [*(c.get("command") or []), *(c.get("args") or [])]
            if re.search(r"\bmlflow (server|ui)\b", " ".join(str(w) for w in words)):
                return True
    return False


def _canary_track(o: KubeObject) -> bool:
    """A Deployment whose pods carry a ``track: canary`` label (or ``<prefix>/track``): the
    Kubernetes canary pattern of a stable and a canary Deployment behind one Service."""
    labels = _get(o.data, ("spec", "template", "metadata", "labels"))
    return isinstance(labels, dict) and any(
        str(k).rpartition("/")[2] == "track" and v == "canary" for k, v in labels.items()
    )


@predicate()
def progressive_rollout(ctx: Context, spec: CheckSpec) -> Iterable[Hit]:
    serving = ctx.repo.objects("InferenceService", "Deployment", "Rollout", "Canary")
    serving = [o for o in serving if not (o.kind == "Deployment" and _runs_tracking_server(o))]
    isvcs = [o for o in serving if o.kind == "InferenceService"]
    deployments = [o for o in serving if o.kind == "Deployment"]
    if not isvcs and not deployments:
        return
    if not ctx.production(spec):
        return
    if any(o.kind in {"Rollout", "Canary"} for o in serving):
        return  # Argo Rollouts or Flagger drive the rollout
    if any(_canary_track(o) for o in deployments):
        return  # stable and canary Deployments behind one Service
    if isvcs and _rollout_driver(ctx):
        return  # a script or CI step sets canaryTrafficPercent step by step
    for o in isvcs:
        pct = _get(o.data, ("spec", "predictor", "canaryTrafficPercent"))
        if not isinstance(pct, int) or not 0 < pct < 100:
            yield Hit(
                o.file.rel,
                o.line("spec", "predictor"),
                f"{o.label()}: no canaryTrafficPercent between 1 and 99 for production rollouts",
            )
    if not isvcs:
        d = deployments[0]
        yield Hit(
            d.file.rel,
            d.line("kind"),
            "production serving without a canary: add an InferenceService canary, an Argo "
            "Rollouts Rollout or a Flagger Canary",
        )


# --- thresholds ---------------------------------------------------------------------------------

_PLACEHOLDER = re.compile(
    r"(\bTODO\b|\bTBD\b|\bFIXME\b|\bCHANGE_?ME\b|\bXXX\b|<[^<>=\s]+>|\$\{[^}]*\}|__\w+__)",
    re.IGNORECASE,
)
_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?%?$")


def _threshold_values(node: Any, path: KeyPath = ()) -> Iterator[tuple[KeyPath, Any, bool]]:
    """(path, value, direct) for scalars under keys naming a threshold. ``direct`` when the key
    itself names the threshold (``psi_threshold: 0.2``); nested values (Grafana's
    ``thresholds.steps[].value``, where null means minus infinity) only count as placeholders."""
    if isinstance(node, dict):
        for k, v in node.items():
            p = (*path, str(k))
            if re.search(r"threshold", str(k), re.IGNORECASE):
                if isinstance(v, dict | list):
                    for sub, value in _scalars(v, p):
                        yield sub, value, False
                else:
                    yield p, v, True
            elif isinstance(v, dict | list):
                yield from _threshold_values(v, p)
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _threshold_values(v, (*path, i))


def _scalars(node: Any, path: KeyPath) -> Iterator[tuple[KeyPath, Any]]:
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _scalars(v, (*path, str(k)))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _scalars(v, (*path, i))
    else:
        yield path, node


def _specific(value: Any, direct: bool) -> bool:
    if isinstance(value, str) and _PLACEHOLDER.search(value):
        return False
    if not direct:
        return True
    if isinstance(value, bool) or value is None:
        return False
    if isinstance(value, int | float):
        return True
    return isinstance(value, str) and bool(_NUMBER.match(value.strip()))


@predicate()
def thresholds_specific(ctx: Context, spec: CheckSpec) -> Iterable[Hit]:
    from mlopsctl.checks.schemas import rule_groups

    for f in ctx.repo.data_files():
        if f.rel.startswith(".mlopsctl/") or "schema" in f.name:
            continue  # mlopsctl's own state and JSON Schemas describe thresholds, not set them
        for i, doc in enumerate(f.docs):
            for path, value, direct in _threshold_values(doc):
                if not _specific(value, direct):
                    yield Hit(
                        f.rel,
                        f.line_of(i, path),
                        f"threshold {'.'.join(map(str, path))} is {value!r}, not a number",
                    )
    for f, doc, base, groups in rule_groups(ctx):
        for gi, g in enumerate(groups.get("groups") or []):
            for ri, r in enumerate((g or {}).get("rules") or [] if isinstance(g, dict) else []):
                expr = r.get("expr") if isinstance(r, dict) else None
                if isinstance(expr, str) and _PLACEHOLDER.search(expr):
                    yield Hit(
                        f.rel,
                        f.line_of(doc, (*base, "groups", gi, "rules", ri, "expr")),
                        f"rule expression has a placeholder {_PLACEHOLDER.search(expr).group(0)!r}",  # type: ignore[union-attr]
                    )
