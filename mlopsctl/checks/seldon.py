"""Seldon Core v2 predicates: Models, Servers and Experiments (``mlops.seldon.io/v1alpha1``)
against their schemas.

The schemas are written here, field by field, from the Model, Server and Experiment API of
Seldon Core v2 (2.10: the fields of ``spec`` and their types; ``spec.storageUri``,
``spec.serverConfig`` and ``spec.candidates`` required), not copied from Seldon's CRDs: Seldon
Core v2 is published under the Business Source License 1.1, which mlopsctl does not
redistribute. They are what the API server's structural schema enforces for the fields mlopsctl
and its users write: unknown fields in ``spec`` are errors (the API server prunes them, so a
misspelt field simply has no effect), and a quantity is a Kubernetes quantity. ``spec.podSpec``
of a Server is a Kubernetes pod spec merged into the ServerConfig's by container name; its
containers are checked for a name and their resources, the rest of it is left to the cluster.
For a check against exactly the CRDs a cluster runs, pass them with ``--crd`` (``kubectl get crd
models.mlops.seldon.io servers.mlops.seldon.io experiments.mlops.seldon.io -o yaml``): MLV103
checks the same objects against those.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache
from typing import Any

from mlopsctl.checks._engine import Context, Hit, predicate
from mlopsctl.checks._jsonschema import SchemaValidator
from mlopsctl.checks._model import CheckSpec
from mlopsctl.checks._validation import _object_hits

SELDON_GROUP = "mlops.seldon.io"
SELDON_API = f"{SELDON_GROUP}/v1alpha1"

# A Kubernetes resource quantity ("768Mi", "1.5", "500m"), a number or a string.
_QUANTITY: dict[str, Any] = {
    "anyOf": [
        {"type": "integer"},
        {
            "type": "string",
            "pattern": (
                r"^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)"  # the number
                r"([KMGTPE]i|[numkMGTPE]|[eE][+-]?[0-9]+)?$"  # binary, decimal or exponent
            ),
        },
    ]
}
_INT: dict[str, Any] = {"type": "integer"}
_STR: dict[str, Any] = {"type": "string"}
_BOOL: dict[str, Any] = {"type": "boolean"}
_STRINGS: dict[str, Any] = {"type": "array", "items": _STR}
_INT_OR_STRING: dict[str, Any] = {"anyOf": [{"type": "integer"}, {"type": "string"}]}


def _obj(properties: dict[str, Any], required: tuple[str, ...] = ()) -> dict[str, Any]:
    out: dict[str, Any] = {
        "type": "object",
        "properties": properties,
        "additionalProperties": False,
    }
    if required:
        out["required"] = list(required)
    return out


def _root(spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "properties": {
            "apiVersion": _STR,
            "kind": _STR,
            "metadata": {"type": "object"},
            "spec": spec,
            "status": {"type": "object"},
        },
        "additionalProperties": False,
    }


_RESOURCES = _obj(
    {
        "claims": {"type": "array", "items": {"type": "object"}},
        "limits": {"type": "object", "additionalProperties": _QUANTITY},
        "requests": {"type": "object", "additionalProperties": _QUANTITY},
    }
)
_REF = _obj({"modelRef": _STR, "pipelineRef": _STR})

MODEL_SCHEMA = _root(
    _obj(
        {
            "artifactVersion": _INT,
            "dataflow": _obj({"cleanTopicsOnDelete": _BOOL}),
            "dedicated": _BOOL,
            "explainer": _obj({"modelRef": _STR, "pipelineRef": _STR, "type": _STR}),
            "llm": _REF,
            "logger": _obj({"percent": _INT}),
            "maxReplicas": _INT,
            "memory": _QUANTITY,
            "minReplicas": _INT,
            "modelType": _STR,
            "parameters": {
                "type": "array",
                "items": _obj({"name": _STR, "value": _STR}, ("name", "value")),
            },
            "preloaded": _BOOL,
            "replicas": _INT,
            "requirements": _STRINGS,
            "schemaUri": _STR,
            "secretName": _STR,
            "server": _STR,
            "storageUri": _STR,
        },
        ("storageUri",),
    )
)

# A container of the Server's pod spec: merged by name into the ServerConfig's container of
# that name, so only the name is required; the other Container fields are left to the cluster.
_CONTAINER = {
    "type": "object",
    "properties": {"name": _STR, "image": _STR, "resources": _RESOURCES},
    "required": ["name"],
}
_IMAGE_OVERRIDE = {
    "type": "object",
    "properties": {"name": _STR, "image": _STR, "resources": _RESOURCES},
}

SERVER_SCHEMA = _root(
    _obj(
        {
            "capabilities": _STRINGS,
            "deploymentStrategy": _obj(
                {
                    "rollingUpdate": _obj(
                        {"maxSurge": _INT_OR_STRING, "maxUnavailable": _INT_OR_STRING}
                    ),
                    "type": _STR,
                }
            ),
            "disableAutoUpdate": _BOOL,
            "extraCapabilities": _STRINGS,
            "imageOverrides": _obj({"agent": _IMAGE_OVERRIDE, "rclone": _IMAGE_OVERRIDE}),
            "maxReplicas": _INT,
            "minReplicas": _INT,
            "podSpec": {
                "type": "object",
                "properties": {
                    "containers": {"type": "array", "items": _CONTAINER},
                    "initContainers": {"type": "array", "items": _CONTAINER},
                    "serviceAccountName": _STR,
                },
            },
            "replicas": _INT,
            "serverConfig": _STR,
            "statefulSetPersistentVolumeClaimRetentionPolicy": _obj(
                {"whenDeleted": _STR, "whenScaled": _STR}
            ),
        },
        ("serverConfig",),
    )
)

EXPERIMENT_SCHEMA = _root(
    _obj(
        {
            "candidates": {
                "type": "array",
                "items": _obj({"name": _STR, "weight": _INT}, ("name", "weight")),
            },
            "default": _STR,
            "mirror": _obj({"name": _STR, "percent": _INT}, ("name", "percent")),
            "resourceType": _STR,
        },
        ("candidates",),
    )
)

SCHEMAS = {"Model": MODEL_SCHEMA, "Server": SERVER_SCHEMA, "Experiment": EXPERIMENT_SCHEMA}


@cache
def seldon_validator(kind: str) -> Any:
    return SchemaValidator(SCHEMAS[kind])


@predicate()
def seldon_schema(ctx: Context, spec: CheckSpec) -> Iterable[Hit]:
    for obj in ctx.repo.objects(*SCHEMAS):
        if obj.group != SELDON_GROUP:
            continue
        if obj.api_version != SELDON_API:
            yield Hit(
                obj.file.rel,
                obj.line("apiVersion"),
                f"{obj.label()}: apiVersion {obj.api_version}; Seldon Core v2 serves "
                f"{obj.kind} as {SELDON_API}",
            )
            continue
        yield from _object_hits(obj, seldon_validator(obj.kind), f"Seldon {obj.kind} schema")
