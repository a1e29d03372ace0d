"""Spark operator predicates: SparkApplications and ScheduledSparkApplications against the
kubeflow/spark-operator CRDs (``sparkoperator.k8s.io/v1beta2``)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from functools import cache
from typing import Any

from mlopsctl.checks._engine import Context, Hit, predicate
from mlopsctl.checks._jsonschema import SchemaValidator
from mlopsctl.checks._model import CheckSpec
from mlopsctl.checks._validation import SHIPPED, _object_hits

SPARK_GROUP = "sparkoperator.k8s.io"
SPARK_API = f"{SPARK_GROUP}/v1beta2"
# kind -> the shipped schema (mlopsctl/schemas/validate/spark-operator/, see its README).
SHIPPED_KINDS = {
    "SparkApplication": "sparkapplication-v1beta2.json",
    "ScheduledSparkApplication": "scheduledsparkapplication-v1beta2.json",
}


@cache
def spark_validator(kind: str) -> Any:
    path = SHIPPED / "spark-operator" / SHIPPED_KINDS[kind]
    return SchemaValidator(json.loads(path.read_text("utf-8")))


@predicate()
def sparkapplication_schema(ctx: Context, spec: CheckSpec) -> Iterable[Hit]:
    for obj in ctx.repo.objects(*SHIPPED_KINDS):
        if obj.group != SPARK_GROUP:
            continue
        if obj.api_version != SPARK_API:
            yield Hit(
                obj.file.rel,
                obj.line("apiVersion"),
                f"{obj.label()}: apiVersion {obj.api_version}; the Spark operator serves "
                f"{obj.kind} as {SPARK_API}",
            )
            continue
        yield from _object_hits(obj, spark_validator(obj.kind), f"{obj.kind} schema")
