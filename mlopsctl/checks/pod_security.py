"""Pod security predicates: the restricted Pod Security Standard, resource and image hygiene,
probes and disruption budgets."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from mlopsctl.checks._engine import Context, Hit, predicate
from mlopsctl.checks._model import CheckSpec
from mlopsctl.checks._pods import LONG_RUNNING, _get, _hit, containers, pods


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
        if c.spark_role:  # the operator sets requests and limits from cores and memory
            unset = [k for k in ("cores", "memory") if c.data.get(k) in (None, "")]
            if unset:
                yield _hit(c, (), f"no {' or '.join(unset)} (the pod's requests and limits)")
            continue
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
        if image is None and c.spark_role:
            image = _get(c.obj.data, (*c.path[:-1], "image"))  # the application's image
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
