"""Kubernetes predicates: manifests against the Kubernetes schemas, custom resources against
their CRDs.

Every JSON Schema validator is built once per kind and version and reused for every document."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from functools import cache, lru_cache
from importlib.util import find_spec
from pathlib import Path
from typing import Any

from mlopsctl.checks._engine import Context, Hit, predicate
from mlopsctl.checks._jsonschema import SchemaValidator
from mlopsctl.checks._model import CheckSpec
from mlopsctl.checks._validation import _object_hits

# --- Kubernetes ---------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _kube_schema_dir() -> Path | None:
    spec = find_spec("kubernetes_validate")
    if spec is None or not spec.submodule_search_locations:
        return None
    base = Path(next(iter(spec.submodule_search_locations))) / "kubernetes-json-schema"
    if not base.is_dir():
        return None

    def version(p: Path) -> tuple[int, ...]:
        return tuple(int(x) for x in re.findall(r"\d+", p.name.split("-")[0]))

    strict = [p for p in base.iterdir() if p.name.endswith("-local-strict")]
    return max(strict, key=version) if strict else None


@lru_cache(maxsize=1)
def _kube_definitions() -> dict[str, Any]:
    schema_dir = _kube_schema_dir()
    assert schema_dir is not None
    data: dict[str, Any] = json.loads((schema_dir / "_definitions.json").read_text("utf-8"))
    return data


def _inline(node: Any, defs: dict[str, Any], stack: tuple[str, ...] = ()) -> Any:
    """Replace ``$ref``s to the shared definitions by their content (descriptions dropped), so
    that validating a document follows no references: about three times faster. A recursive
    reference (only in CustomResourceDefinition's own schema) stays a ``$ref``."""
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and "#/$defs/" in ref:
            name = ref.split("#/$defs/", 1)[1]
            if name in stack or name not in defs:
                return node
            target = _inline(defs[name], defs, (*stack, name))
            rest = {
                k: _inline(v, defs, stack)
                for k, v in node.items()
                if k not in {"$ref", "description"}
            }
            return {**target, **rest} if rest else target
        return {k: _inline(v, defs, stack) for k, v in node.items() if k != "description"}
    if isinstance(node, list):
        return [_inline(v, defs, stack) for v in node]
    return node


@cache
def kube_validator(api_version: str, kind: str) -> Any | None:
    """The compiled validator for one built-in kind and version, or None when unknown. Built
    once per kind and version and reused for every document."""
    schema_dir = _kube_schema_dir()
    if schema_dir is None:
        return None
    group, _, version = api_version.rpartition("/")
    prefix = f"{group.split('.')[0]}-" if group else ""
    path = schema_dir / f"{kind.lower()}-{prefix}{version}.json"
    if not path.is_file():
        return None
    definitions = _kube_definitions()
    schema = _inline(json.loads(path.read_text(encoding="utf-8")), definitions["$defs"])

    def registry() -> Any:
        from referencing import Registry, Resource

        return Resource.from_contents(definitions) @ Registry()

    return SchemaValidator(schema, registry)


# Groups under k8s.io that are custom resources, not Kubernetes' own APIs.
_CUSTOM_K8S_IO_GROUPS = frozenset({"sparkoperator.k8s.io"})


def _builtin_group(group: str) -> bool:
    return "." not in group or (group.endswith(".k8s.io") and group not in _CUSTOM_K8S_IO_GROUPS)


@predicate()
def kubernetes_schema(ctx: Context, spec: CheckSpec) -> Iterable[Hit]:
    objects = [o for o in ctx.repo.kube_objects if _builtin_group(o.group)]
    if not objects:
        return
    if _kube_schema_dir() is None:
        ctx.note(
            spec.id,
            "Kubernetes manifests not checked against the Kubernetes schemas: install "
            "kubernetes-validate (pip install 'mlopsctl[validate]')",
        )
        return
    version = _kube_schema_dir().name.split("-")[0]  # type: ignore[union-attr]
    for obj in objects:
        validator = kube_validator(obj.api_version, obj.kind)
        if validator is None:
            yield Hit(
                obj.file.rel,
                obj.line("kind"),
                f"{obj.label()}: {obj.api_version} {obj.kind} is not a kind of Kubernetes "
                f"{version} (removed or misspelt API version?)",
            )
            continue
        yield from _object_hits(obj, validator, "Kubernetes schema")


@lru_cache(maxsize=32)
def _crd_validators(paths: tuple[Path, ...]) -> dict[tuple[str, str], Any]:
    from mlopsctl.checks._crd import load_crd_file, root_schema

    out = {}
    for path in paths:
        for key, openapi in load_crd_file(path).items():
            schema = root_schema(openapi)
            out[key] = SchemaValidator(schema)
    return out


def load_user_crds(paths: Iterable[Path]) -> dict[tuple[str, str], Any]:
    """Validators for the user's CRDs; raises UsageError for a bad file (before any check)."""
    return _crd_validators(tuple(Path(p) for p in paths))


@predicate()
def custom_resource_schema(ctx: Context, spec: CheckSpec) -> Iterable[Hit]:
    validators = load_user_crds(ctx.crd_files)
    covered = {
        "Experiment",
        "InferenceService",
        "Model",
        "PrometheusRule",
        "Server",
        "ServingRuntime",
        "SparkApplication",
        "ScheduledSparkApplication",
    }
    unknown: set[str] = set()
    for obj in ctx.repo.kube_objects:
        if _builtin_group(obj.group):
            continue
        validator = validators.get((obj.api_version, obj.kind))
        if validator is not None:
            yield from _object_hits(obj, validator, "CRD schema")
        elif obj.kind not in covered:
            unknown.add(f"{obj.api_version} {obj.kind}")
    for item in sorted(unknown):
        ctx.note(spec.id, f"{item}: no schema known; pass its CRD with --crd FILE to check it")
