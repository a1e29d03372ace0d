"""Seldon Core v2 predicates: Models, Servers and Experiments (``mlops.seldon.io/v1alpha1``)
against Seldon's own CRDs.

The schemas are Seldon Core's CRDs of tag v2.6.0 (``operator/config/crd/bases/``), the last
release under Apache-2.0 (later releases are under the Business Source License 1.1), shipped
converted by ``mlopsctl.checks._crd`` (mlopsctl/schemas/validate/seldon/, see its README). The
fields mlopsctl writes are the same in later releases; for a check against exactly the CRDs a
cluster runs, pass them with ``--crd`` (``kubectl get crd models.mlops.seldon.io
servers.mlops.seldon.io experiments.mlops.seldon.io -o yaml``): MLV103 checks the same objects
against those.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from functools import cache
from typing import Any

from mlopsctl.checks._engine import Context, Hit, predicate
from mlopsctl.checks._jsonschema import SchemaValidator
from mlopsctl.checks._model import CheckSpec
from mlopsctl.checks._validation import SHIPPED, _object_hits

SELDON_GROUP = "mlops.seldon.io"
SELDON_API = f"{SELDON_GROUP}/v1alpha1"
# kind -> the shipped schema (mlopsctl/schemas/validate/seldon/).
SHIPPED_KINDS = {
    "Model": "model-v1alpha1.json",
    "Server": "server-v1alpha1.json",
    "Experiment": "experiment-v1alpha1.json",
}


@cache
def seldon_validator(kind: str) -> Any:
    path = SHIPPED / "seldon" / SHIPPED_KINDS[kind]
    return SchemaValidator(json.loads(path.read_text("utf-8")))


@predicate()
def seldon_schema(ctx: Context, spec: CheckSpec) -> Iterable[Hit]:
    for obj in ctx.repo.objects(*SHIPPED_KINDS):
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
