"""KServe predicates: InferenceServices and ServingRuntimes against the KServe schemas."""

from __future__ import annotations

import json
from collections.abc import Iterable
from functools import lru_cache
from typing import Any

from mlopsctl.checks._engine import Context, Hit, predicate
from mlopsctl.checks._jsonschema import SchemaValidator
from mlopsctl.checks._model import CheckSpec
from mlopsctl.checks._validation import SHIPPED, _object_hits

KSERVE_API = "serving.kserve.io/v1beta1"
RUNTIME_API = "serving.kserve.io/v1alpha1"


@lru_cache(maxsize=1)
def kserve_validator() -> Any:
    schema = json.loads((SHIPPED / "kserve" / "inferenceservice-v1beta1.json").read_text("utf-8"))
    return SchemaValidator(schema)


@lru_cache(maxsize=1)
def servingruntime_validator() -> Any:
    schema = json.loads((SHIPPED / "kserve" / "servingruntime-v1alpha1.json").read_text("utf-8"))
    return SchemaValidator(schema)


@predicate()
def inferenceservice_schema(ctx: Context, spec: CheckSpec) -> Iterable[Hit]:
    for obj in ctx.repo.objects("InferenceService"):
        if obj.group != "serving.kserve.io":
            continue
        if obj.api_version != KSERVE_API:
            yield Hit(
                obj.file.rel,
                obj.line("apiVersion"),
                f"{obj.label()}: apiVersion {obj.api_version}; InferenceService is served as "
                f"{KSERVE_API}",
            )
            continue
        yield from _object_hits(obj, kserve_validator(), "InferenceService schema")


@predicate()
def servingruntime_schema(ctx: Context, spec: CheckSpec) -> Iterable[Hit]:
    for obj in ctx.repo.objects("ServingRuntime"):
        if obj.group != "serving.kserve.io":
            continue
        if obj.api_version != RUNTIME_API:
            yield Hit(
                obj.file.rel,
                obj.line("apiVersion"),
                f"{obj.label()}: apiVersion {obj.api_version}; ServingRuntime is served as "
                f"{RUNTIME_API}",
            )
            continue
        yield from _object_hits(obj, servingruntime_validator(), "ServingRuntime schema")
