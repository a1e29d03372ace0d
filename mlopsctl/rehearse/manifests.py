"""What the rendered Kubernetes manifests say a pod runs: its container's command, arguments,
environment, identity, volumes and probes, and the Service names clients reach it by."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mlopsctl.rehearse.errors import ProjectError

CLUSTER_DOMAIN = "svc.cluster.local"


@dataclass(frozen=True)
class Probe:
    path: str
    port: int
    headers: dict[str, str]


@dataclass
class Container:
    """One container of one workload, as the manifest declares it."""

    source: Path
    workload: str
    name: str
    image: str
    command: list[str]
    args: list[str]
    env: dict[str, str]
    secret_env: dict[str, tuple[str, str]]  # variable -> (secret, key)
    uid: int | None
    gid: int | None
    read_only_root: bool
    mounts: list[str]
    ports: dict[str, int]
    probes: dict[str, Probe] = field(default_factory=dict)
    limits: dict[str, str] = field(default_factory=dict)  # resources.limits

    def expanded(self, values: dict[str, str]) -> list[str]:
        """command + args with ``$(VAR)`` replaced as the kubelet does (unknown ones kept)."""

        def replace(match: re.Match[str]) -> str:
            return values.get(match.group(1), match.group(0))

        return [
            re.sub(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", replace, a) for a in self.command + self.args
        ]


@dataclass(frozen=True)
class Service:
    name: str
    ports: dict[int, str | int]  # service port -> target port (name or number)

    def hosts(self, port: int, namespace: str) -> list[str]:
        """The Host headers in-cluster clients send: short, namespaced and fully qualified."""
        return [
            f"{self.name}:{port}",
            f"{self.name}.{namespace}:{port}",
            f"{self.name}.{namespace}.svc:{port}",
            f"{self.name}.{namespace}.{CLUSTER_DOMAIN}:{port}",
        ]


def documents(path: Path) -> list[dict[str, Any]]:
    try:
        loaded = list(yaml.safe_load_all(path.read_text(encoding="utf-8")))
    except (OSError, yaml.YAMLError) as exc:
        raise ProjectError(f"{path}: cannot read the manifest ({exc})") from exc
    return [d for d in loaded if isinstance(d, dict)]


def _pod_spec(doc: dict[str, Any]) -> dict[str, Any]:
    kind = doc.get("kind")
    spec = doc.get("spec") or {}
    if kind == "CronJob":
        spec = ((spec.get("jobTemplate") or {}).get("spec")) or {}
    if kind in ("Deployment", "StatefulSet", "Job", "CronJob", "DaemonSet"):
        return ((spec.get("template") or {}).get("spec")) or {}
    return {}


def container(path: Path, workload: str, name: str) -> Container:
    for doc in documents(path):
        if (doc.get("metadata") or {}).get("name") != workload:
            continue
        pod = _pod_spec(doc)
        for c in pod.get("containers") or []:
            if c.get("name") == name:
                return _container(path, workload, pod, c)
    raise ProjectError(f"{path}: no workload {workload} with a container {name}")


def _container(path: Path, workload: str, pod: dict[str, Any], c: dict[str, Any]) -> Container:
    pod_security = pod.get("securityContext") or {}
    security = c.get("securityContext") or {}
    env: dict[str, str] = {}
    secret_env: dict[str, tuple[str, str]] = {}
    for item in c.get("env") or []:
        ref = ((item.get("valueFrom") or {}).get("secretKeyRef")) or None
        if ref:
            secret_env[item["name"]] = (ref["name"], ref["key"])
        else:
            env[item["name"]] = str(item.get("value", ""))
    ports = {
        p.get("name", str(p["containerPort"])): int(p["containerPort"])
        for p in c.get("ports") or []
    }
    probes = {}
    for kind in ("readinessProbe", "livenessProbe", "startupProbe"):
        http = ((c.get(kind) or {}).get("httpGet")) or None
        if http:
            port = http["port"]
            number = ports[port] if isinstance(port, str) else int(port)
            headers = {h["name"]: h["value"] for h in http.get("httpHeaders") or []}
            probes[kind] = Probe(http.get("path", "/"), number, headers)
    return Container(
        source=path,
        workload=workload,
        name=c["name"],
        image=str(c.get("image", "")),
        command=[str(a) for a in c.get("command") or []],
        args=[str(a) for a in c.get("args") or []],
        env=env,
        secret_env=secret_env,
        uid=security.get("runAsUser", pod_security.get("runAsUser")),
        gid=security.get("runAsGroup", pod_security.get("runAsGroup")),
        read_only_root=bool(security.get("readOnlyRootFilesystem")),
        mounts=[m["mountPath"] for m in c.get("volumeMounts") or []],
        ports=ports,
        probes=probes,
        limits={
            str(k): str(v) for k, v in ((c.get("resources") or {}).get("limits") or {}).items()
        },
    )


_MEMORY_UNITS = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "k": 10**3, "M": 10**6, "G": 10**9}


def cpu_cores(value: str) -> float:
    """A Kubernetes CPU quantity in cores (``250m`` -> 0.25)."""
    try:
        return float(value[:-1]) / 1000 if value.endswith("m") else float(value)
    except ValueError as exc:
        raise ProjectError(f"not a Kubernetes CPU quantity: {value!r}") from exc


def memory_mib(value: str) -> float:
    """A Kubernetes memory quantity in MiB (``1Gi`` -> 1024; plain bytes divided)."""
    number, factor = value, 1
    for suffix, unit in _MEMORY_UNITS.items():
        if value.endswith(suffix):
            number, factor = value[: -len(suffix)], unit
            break
    try:
        return float(number) * factor / 2**20
    except ValueError as exc:
        raise ProjectError(f"not a Kubernetes memory quantity: {value!r}") from exc


def service(path: Path, name: str) -> Service:
    for doc in documents(path):
        if doc.get("kind") == "Service" and (doc.get("metadata") or {}).get("name") == name:
            ports = {
                int(p["port"]): p.get("targetPort", p["port"])
                for p in (doc.get("spec") or {}).get("ports") or []
            }
            return Service(name, ports)
    raise ProjectError(f"{path}: no Service {name}")
