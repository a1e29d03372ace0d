"""The fast schema path (jsonschema-rs) and the Python jsonschema library agree on every document.

A finding is written from the Python library's errors, but only for documents the fast path calls
invalid. So the two must agree on validity: a document the fast path passes and the Python library
rejects would be a finding lost. Checked on every schema validate uses, with documents from
generated repositories and hypothesis mutations of them (changed values, removed and added keys,
values JSON has no type for).
"""

from __future__ import annotations

import copy
import datetime
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlopsctl.answers import load_answers_file
from mlopsctl.checks import _jsonschema, answers_file, ci, grafana, kserve, kubernetes
from mlopsctl.checks._jsonschema import SchemaValidator, json_keys
from mlopsctl.checks._model import CATALOG_DIR, CHECK_FILE_SCHEMA
from mlopsctl.render import generate
from tests.generated_cases import CASES

RENDERED = (
    "lifecycle-production-xgboost-gdpr",
    "production-lightgbm-gitlab",
    "variant-canary-kubeflow",
    "hybrid-pytorch-gpu-production",
)


def _load(path: Path) -> list[Any]:
    if path.suffix == ".json":
        import json

        return [json.loads(path.read_text("utf-8"))]
    return [d for d in yaml.load_all(path.read_text("utf-8"), Loader=yaml.CSafeLoader) if d]


@cache
def _pairs(root: Path) -> tuple[tuple[str, Any, SchemaValidator], ...]:
    """(label, document, validator) for every document of the rendered cases a schema covers."""
    out: list[tuple[str, Any, SchemaValidator]] = []
    catalog = SchemaValidator(CHECK_FILE_SCHEMA)
    for path in sorted(CATALOG_DIR.glob("*.yaml"))[:5]:
        out.append((path.name, _load(path)[0], catalog))
    for name in RENDERED:
        dest = root / name
        if not dest.exists():
            generate(CASES[name].design(), dest)
        for path in sorted(p for p in dest.rglob("*") if p.suffix in {".yaml", ".yml", ".json"}):
            rel = f"{name}/{path.relative_to(dest)}"
            if "/.mlopsctl/" in f"/{path.relative_to(dest)}":
                continue
            docs = _load(path)
            for doc in docs:
                if not isinstance(doc, dict):
                    continue
                api, kind = doc.get("apiVersion"), doc.get("kind")
                if isinstance(api, str) and isinstance(kind, str):
                    group = api.rpartition("/")[0]
                    if kind == "InferenceService":
                        out.append((rel, doc, kserve.kserve_validator()))
                    elif kubernetes._builtin_group(group):
                        validator = kubernetes.kube_validator(api, kind)
                        if validator is not None:
                            out.append((rel, doc, validator))
                elif grafana.dashboard_of(doc) is not None:
                    out.append((rel, grafana.dashboard_of(doc)[0], grafana._grafana()["dashboard"]))
            if path.name == "mlopsctl.yaml":
                answers = load_answers_file(path).data
                out.append((rel, answers, answers_file._answers_validator()))
            elif path.parent.name == "workflows":
                workflow = docs[0]
                workflow = {("on" if k is True else k): v for k, v in workflow.items()}
                out.append((rel, workflow, ci._vendored("github-workflows")))
            elif path.name == ".gitlab-ci.yml":
                out.append((rel, docs[0], ci._vendored("gitlab-ci")))
    return tuple(out)


@pytest.fixture(scope="module")
def pairs(tmp_path_factory: pytest.TempPathFactory) -> tuple[tuple[str, Any, SchemaValidator], ...]:
    return _pairs(tmp_path_factory.mktemp("fast-path"))


def _invalid(validator: SchemaValidator, doc: Any) -> tuple[bool, bool]:
    """(the validator as validate uses it finds errors, the Python library finds errors), keys
    read as JSON has them (as YAML becomes JSON for Kubernetes: ``1:`` is the key "1")."""
    python = validator.python.iter_errors(json_keys(doc))
    return bool(list(validator.iter_errors(doc))), bool(list(python))


def test_every_schema_takes_the_fast_path(
    pairs: tuple[tuple[str, Any, SchemaValidator], ...],
) -> None:
    assert _jsonschema.jsonschema_rs is not None
    # the catalog, answers, KServe, Grafana, both CI systems and several Kubernetes kinds
    assert len({id(v) for _, _, v in pairs}) >= 10
    slow = sorted({label for label, _, v in pairs if v.fast is None})
    assert slow == []


def test_generated_documents_are_valid_on_both_paths(
    pairs: tuple[tuple[str, Any, SchemaValidator], ...],
) -> None:
    for label, doc, validator in pairs:
        assert _invalid(validator, doc) == (False, False), label


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield prefix
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _paths(value, (*prefix, i))


_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**40), 2**40)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=6,
)
_LIKE = {
    str: st.text(max_size=20)
    | st.sampled_from(["TCP", "ClusterIP", "Always", "1Gi", "250m", "v1"]),
    int: st.integers(-5, 70000),
    float: st.floats(-10, 10, allow_nan=False),
    bool: st.booleans(),
}
_NOT_JSON = st.sampled_from([datetime.date(2026, 1, 2), b"bytes", {1: "int key"}])


@st.composite
def mutations(
    draw: st.DrawFn, pairs: tuple[tuple[str, Any, SchemaValidator], ...]
) -> tuple[str, Any, SchemaValidator]:
    label, doc, validator = draw(st.sampled_from(pairs))
    doc = copy.deepcopy(doc)
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(list(_paths(doc))[1:] or [()]))
        if not path:
            break
        *head, last = path
        parent = doc
        for part in head:
            parent = parent[part]
        old = parent[last]
        op = draw(st.sampled_from(["like", "json", "delete", "add", "not-json"]))
        if op == "like" and type(old) in _LIKE:
            parent[last] = draw(_LIKE[type(old)])
        elif op == "delete" and isinstance(parent, dict):
            del parent[last]
        elif op == "add" and isinstance(old, dict):
            key = draw(st.sampled_from(["extra", "name", "type", "spec", "x-field"]))
            old[key] = copy.deepcopy(draw(_JSON))
        elif op == "not-json":
            parent[last] = copy.deepcopy(draw(_NOT_JSON))
        else:
            parent[last] = copy.deepcopy(draw(_JSON))
    return label, doc, validator


@settings(
    max_examples=400,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_both_paths_agree_on_mutated_documents(
    pairs: tuple[tuple[str, Any, SchemaValidator], ...], data: st.DataObject
) -> None:
    label, doc, validator = data.draw(mutations(pairs))
    used, python = _invalid(validator, doc)
    assert used == python, (label, doc)
