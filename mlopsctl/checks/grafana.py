"""Grafana predicates: dashboards against the Grafana dashboard schema."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from functools import lru_cache
from typing import Any

from mlopsctl.checks._engine import Context, Hit, predicate
from mlopsctl.checks._jsonschema import SchemaValidator
from mlopsctl.checks._model import CheckSpec
from mlopsctl.checks._repo import SourceFile
from mlopsctl.checks._validation import SHIPPED, _errors, _message, _path


@lru_cache(maxsize=1)
def _grafana() -> dict[str, Any]:
    def load(name: str) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(
            (SHIPPED / "grafana" / f"{name}.jsonschema.json").read_text("utf-8")
        )
        return data

    out: dict[str, Any] = {}
    dash = load("dashboard")
    # The schema's own description says "Nulls currently appear here when serializing -Infinity
    # to JSON": Grafana writes the base threshold step as {"value": null}. Accept that.
    dash["definitions"]["Threshold"]["properties"]["value"]["type"] = ["number", "null"]
    out["dashboard"] = SchemaValidator(dash)
    prom = load("prometheus")
    out["prometheus"] = SchemaValidator(prom)
    for panel in ("timeseries", "stat"):
        s = load(panel)
        defs = s["definitions"]
        dialect = s["$schema"]
        options = {"$schema": dialect, "$ref": "#/definitions/Options", "definitions": defs}
        field = {"$schema": dialect, "$ref": "#/definitions/FieldConfig", "definitions": defs}
        out[f"{panel}.options"] = SchemaValidator(options)
        if "FieldConfig" in defs:
            out[f"{panel}.custom"] = SchemaValidator(field)
    return out


def dashboard_of(doc: Any) -> tuple[dict[str, Any], tuple[str, ...]] | None:
    """The dashboard model in a JSON document (plain, or the API's ``{"dashboard": ...}``)."""
    if not isinstance(doc, dict):
        return None
    inner = doc.get("dashboard")
    if isinstance(inner, dict) and "panels" in inner:
        return inner, ("dashboard",)
    if "panels" in doc and ("schemaVersion" in doc or "title" in doc):
        return doc, ()
    return None


def dashboards(ctx: Context) -> Iterator[tuple[SourceFile, dict[str, Any], tuple[str, ...]]]:
    for f in ctx.repo.data_files():
        if f.is_json and f.docs:
            found = dashboard_of(f.docs[0])
            if found:
                yield f, found[0], found[1]


def _panels(dash: dict[str, Any]) -> Iterator[tuple[tuple[Any, ...], dict[str, Any]]]:
    for i, p in enumerate(dash.get("panels") or []):
        if isinstance(p, dict):
            yield ("panels", i), p
            for j, q in enumerate(p.get("panels") or []):  # collapsed rows
                if isinstance(q, dict):
                    yield ("panels", i, "panels", j), q


@predicate()
def grafana_dashboard_schema(ctx: Context, spec: CheckSpec) -> Iterable[Hit]:
    for f, dash, base in dashboards(ctx):
        v = _grafana()
        for err in _errors(v["dashboard"], dash):
            yield Hit(f.rel, f.line_of(0, base + tuple(err.absolute_path)), _message(err))
        for path, panel in _panels(dash):
            kind = panel.get("type")
            checks: list[tuple[tuple[Any, ...], Any, Any]] = []
            if f"{kind}.options" in v and "options" in panel:
                checks.append((("options",), v[f"{kind}.options"], panel["options"]))
            custom = ((panel.get("fieldConfig") or {}).get("defaults") or {}).get("custom")
            if f"{kind}.custom" in v and isinstance(custom, dict):
                checks.append((("fieldConfig", "defaults", "custom"), v[f"{kind}.custom"], custom))
            for i, target in enumerate(panel.get("targets") or []):
                if isinstance(target, dict) and "expr" in target:
                    checks.append((("targets", i), v["prometheus"], target))
            for sub, validator, value in checks:
                for err in _errors(validator, value):
                    where = base + path + sub + tuple(err.absolute_path)
                    msg = _message(err)
                    yield Hit(f.rel, f.line_of(0, where), f"{_path(path + sub)}: {msg}")
