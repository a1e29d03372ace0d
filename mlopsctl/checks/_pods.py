"""Pods and containers of workload objects, as the policy checks walk them."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from mlopsctl.checks._engine import Context, Hit
from mlopsctl.checks._model import KeyPath
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
    spark_role: bool = False  # a Spark operator driver/executor: cores and memory, shared image

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


SPARK_KINDS = {"SparkApplication": ("spec",), "ScheduledSparkApplication": ("spec", "template")}
SPARK_ROLES = ("driver", "executor")


def spark_roles(obj: KubeObject) -> Iterator[tuple[dict[str, Any], KeyPath]]:
    """The driver and executor pod specs of a Spark operator application (``sparkoperator.k8s.io``):
    each is one container's settings plus ``podSecurityContext`` for its pod."""
    if obj.kind not in SPARK_KINDS or obj.group != "sparkoperator.k8s.io":
        return
    spec = _get(obj.data, SPARK_KINDS[obj.kind])
    for role in SPARK_ROLES:
        data = spec.get(role) if isinstance(spec, dict) else None
        if isinstance(data, dict):
            yield data, (*SPARK_KINDS[obj.kind], role)


def containers(ctx: Context) -> Iterator[Container]:
    for obj in ctx.repo.kube_objects:
        for role, path in spark_roles(obj):
            pod_security = role.get("podSecurityContext")
            pod = {"securityContext": pod_security if isinstance(pod_security, dict) else {}}
            yield Container(obj, pod, path, role, path, str(path[-1]), spark_role=True)
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
