"""CustomResourceDefinition schemas (OpenAPI v3 structural schemas) as JSON Schema.

Used for the shipped KServe InferenceService schema and for every ``--crd FILE`` the user passes
(the output of ``kubectl get crd NAME -o yaml``, one CRD, a ``List`` or several documents).

Conversion: ``nullable`` becomes a ``null`` type, ``x-kubernetes-int-or-string`` an integer-or-
string choice, and an object with ``properties`` rejects unknown fields unless the CRD says
``x-kubernetes-preserve-unknown-fields`` (the API server prunes them; in a committed manifest they
are a mistake). Other ``x-kubernetes-*`` extensions and descriptions are dropped.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mlopsctl.errors import UsageError

_ROOT_FIELDS = {
    "apiVersion": {"type": "string"},
    "kind": {"type": "string"},
    "metadata": {"type": "object"},
}


def openapi_to_jsonschema(node: Any) -> Any:
    if isinstance(node, list):
        return [openapi_to_jsonschema(v) for v in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    preserve = node.get("x-kubernetes-preserve-unknown-fields") is True
    for key, value in node.items():
        if key.startswith("x-kubernetes-") or key in {"description", "nullable", "example"}:
            continue
        if key in {"properties", "patternProperties", "definitions", "$defs"}:
            out[key] = {k: openapi_to_jsonschema(v) for k, v in value.items()}
        else:
            out[key] = openapi_to_jsonschema(value)
    if node.get("x-kubernetes-int-or-string") is True and "anyOf" not in out:
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
        out.pop("type", None)
    if node.get("x-kubernetes-embedded-resource") is True:
        props = out.setdefault("properties", {})
        for k, v in _ROOT_FIELDS.items():
            props.setdefault(k, v)
    if (
        out.get("type") == "object"
        and "properties" in out
        and "additionalProperties" not in out
        and not preserve
    ):
        out["additionalProperties"] = False
    if node.get("nullable") is True and "type" in out:
        t = out["type"]
        out["type"] = [*t, "null"] if isinstance(t, list) else [t, "null"]
    return out


def root_schema(openapi: dict[str, Any]) -> dict[str, Any]:
    """A whole-object JSON Schema from a version's ``openAPIV3Schema``."""
    schema: dict[str, Any] = openapi_to_jsonschema(openapi)
    props = schema.setdefault("properties", {})
    for k, v in _ROOT_FIELDS.items():
        props.setdefault(k, v)
    schema = shared_definitions(schema)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return schema


_SCHEMA_MAPS = {"properties", "patternProperties", "$defs", "definitions", "dependentSchemas"}
SHARED_MIN_CHARS = 1000


def shared_definitions(schema: dict[str, Any]) -> dict[str, Any]:
    """The schema with every large subschema it repeats written once, under ``$defs``, and
    referenced where it was. CRDs repeat whole pod specs (InferenceService: one per component,
    canary and explainer included); written once, the same schema is a sixth of the size and
    compiles several times faster. Names are digests of the content: deterministic."""
    import hashlib

    def key(node: dict[str, Any]) -> str:
        return json.dumps(node, sort_keys=True, separators=(",", ":"))

    counts: dict[str, int] = {}

    def count(node: Any) -> None:
        if isinstance(node, list):
            for v in node:
                count(v)
        elif isinstance(node, dict):
            k = key(node)
            if len(k) >= SHARED_MIN_CHARS:
                counts[k] = counts.get(k, 0) + 1
            for name, v in node.items():
                for sub in v.values() if name in _SCHEMA_MAPS and isinstance(v, dict) else [v]:
                    count(sub)

    defs: dict[str, Any] = {}

    def rewrite(node: Any, root: bool = False) -> Any:
        if isinstance(node, list):
            return [rewrite(v) for v in node]
        if not isinstance(node, dict):
            return node
        k = key(node)
        if not root and counts.get(k, 0) > 1:
            name = "s" + hashlib.sha256(k.encode()).hexdigest()[:16]
            if name not in defs:
                defs[name] = None  # claimed before the content is rewritten
                defs[name] = rewrite(node, root=True)
            return {"$ref": f"#/$defs/{name}"}
        return {
            name: (
                {p: rewrite(sub) for p, sub in v.items()}
                if name in _SCHEMA_MAPS and isinstance(v, dict)
                else rewrite(v)
            )
            for name, v in node.items()
        }

    count(schema)
    out: dict[str, Any] = rewrite(schema, root=True)
    if defs:
        out["$defs"] = {**out.get("$defs", {}), **defs}
    return out


def trim(openapi: dict[str, Any]) -> dict[str, Any]:
    """What the shipped copy keeps: the structural schema without prose and without ``status``
    (the controller writes status; committed manifests carry none)."""

    def strip(n: Any) -> Any:
        if isinstance(n, dict):
            return {
                k: strip(v) for k, v in n.items() if not (k == "description" and isinstance(v, str))
            }
        if isinstance(n, list):
            return [strip(v) for v in n]
        return n

    out: dict[str, Any] = strip(openapi)
    props = dict(out.get("properties", {}))
    if "status" in props:
        props["status"] = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
    out["properties"] = props
    return out


def crd_versions(crd: dict[str, Any], source: str) -> dict[tuple[str, str], dict[str, Any]]:
    """(apiVersion, kind) -> openAPIV3Schema for every served version of one CRD."""
    spec = crd.get("spec")
    if not isinstance(spec, dict):
        raise UsageError(f"{source}: CustomResourceDefinition without spec")
    group = spec.get("group")
    kind = (spec.get("names") or {}).get("kind")
    if not isinstance(group, str) or not isinstance(kind, str):
        raise UsageError(f"{source}: CustomResourceDefinition without spec.group or names.kind")
    out = {}
    for v in spec.get("versions") or []:
        schema = ((v or {}).get("schema") or {}).get("openAPIV3Schema")
        if isinstance(schema, dict) and isinstance(v.get("name"), str):
            out[(f"{group}/{v['name']}", kind)] = schema
    if not out:
        raise UsageError(f"{source}: CustomResourceDefinition {kind} has no openAPIV3Schema")
    return out


def load_crd_file(path: Path) -> dict[tuple[str, str], dict[str, Any]]:
    import yaml

    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"--crd {path}: cannot read: {exc}") from None
    try:
        docs = [d for d in yaml.load_all(text, Loader=yaml.CSafeLoader) if d is not None]
    except yaml.YAMLError as exc:
        raise UsageError(f"--crd {path}: not valid YAML: {exc}") from None
    crds: list[dict[str, Any]] = []
    for d in docs:
        if isinstance(d, dict) and d.get("kind") == "List":
            crds.extend(i for i in d.get("items") or [] if isinstance(i, dict))
        elif isinstance(d, dict):
            crds.append(d)
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for crd in crds:
        if crd.get("kind") != "CustomResourceDefinition":
            raise UsageError(
                f"--crd {path}: expected CustomResourceDefinition, found {crd.get('kind')!r}",
                hint="export one with: kubectl get crd NAME -o yaml > NAME.crd.yaml",
            )
        out.update(crd_versions(crd, str(path)))
    if not out:
        raise UsageError(f"--crd {path}: no CustomResourceDefinition in the file")
    return out


# The KServe kinds whose schema ships, and the served version generated manifests use.
SHIPPED_KSERVE = {
    "InferenceService": "serving.kserve.io/v1beta1",
    "ServingRuntime": "serving.kserve.io/v1alpha1",
}


def build_shipped(crd_file: Path, api_version: str, kind: str) -> str:
    """The text of a shipped schema under ``schemas/validate/`` from the upstream CRD file:
    ``kind`` at ``api_version``, trimmed and converted to JSON Schema here, so that loading it
    costs no conversion."""
    versions = load_crd_file(crd_file)
    schema = root_schema(trim(versions[(api_version, kind)]))
    return json.dumps(schema, sort_keys=True, separators=(",", ":")) + "\n"


def build_shipped_kserve(crd_file: Path, kind: str = "InferenceService") -> str:
    """A shipped KServe schema (``schemas/validate/kserve/inferenceservice-v1beta1.json``,
    ``servingruntime-v1alpha1.json``) from the upstream CRD (``config/crd/full/
    serving.kserve.io_<kinds>.yaml``)."""
    return build_shipped(crd_file, SHIPPED_KSERVE[kind], kind)


if __name__ == "__main__":  # python -m mlopsctl.checks._crd CRD.yaml [KIND | API_VERSION KIND]
    import sys

    if len(sys.argv) == 4:
        sys.stdout.write(build_shipped(Path(sys.argv[1]), sys.argv[2], sys.argv[3]))
    else:
        sys.stdout.write(build_shipped_kserve(Path(sys.argv[1]), *sys.argv[2:3]))
