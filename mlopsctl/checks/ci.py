"""CI predicates: workflow files against the CI systems' schemas."""

from __future__ import annotations

import json
from collections.abc import Iterable
from functools import lru_cache
from importlib.util import find_spec
from pathlib import Path
from typing import Any

from mlopsctl.checks._engine import Context, Hit, predicate
from mlopsctl.checks._jsonschema import SchemaValidator
from mlopsctl.checks._model import CheckSpec
from mlopsctl.checks._repo import SourceFile
from mlopsctl.checks._validation import _errors, _message


@lru_cache(maxsize=4)
def _vendored(name: str) -> Any | None:
    spec = find_spec("check_jsonschema")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = (
        Path(next(iter(spec.submodule_search_locations)))
        / "builtin_schemas"
        / "vendor"
        / f"{name}.json"
    )
    if not path.is_file():
        return None
    schema = json.loads(path.read_text(encoding="utf-8"))
    return SchemaValidator(schema)


def workflow_files(ctx: Context) -> list[SourceFile]:
    return [
        f
        for f in ctx.repo.data_files()
        if f.is_yaml and f.rel.startswith(".github/workflows/") and f.rel.count("/") == 2
    ]


@predicate()
def ci_workflow_schema(ctx: Context, spec: CheckSpec) -> Iterable[Hit]:
    targets = [(f, "github-workflows") for f in workflow_files(ctx)]
    gitlab = ctx.repo.get(".gitlab-ci.yml")
    if gitlab is not None:
        targets.append((gitlab, "gitlab-ci"))
    for f, schema in targets:
        if not f.docs:
            continue
        validator = _vendored(schema)
        if validator is None:
            ctx.note(
                spec.id,
                f"{schema} schema unavailable: install check-jsonschema "
                "(pip install 'mlopsctl[validate]') to check CI files",
            )
            continue
        doc = f.docs[0]
        if schema == "github-workflows" and isinstance(doc, dict) and True in doc:
            # PyYAML reads the key `on` as a YAML 1.1 boolean; workflows mean the string
            doc = {("on" if k is True else k): v for k, v in doc.items()}
        for err in _errors(validator, doc):
            yield Hit(f.rel, f.line_of(0, tuple(err.absolute_path)), _message(err))


# The names Compose looks for (and the ones generated projects use).
COMPOSE_NAMES = ("compose.yaml", "compose.yml", "docker-compose.yaml", "docker-compose.yml")


@predicate()
def compose_file_schema(ctx: Context, spec: CheckSpec) -> Iterable[Hit]:
    for f in ctx.repo.data_files():
        if not f.is_yaml or f.rel.rsplit("/", 1)[-1] not in COMPOSE_NAMES or not f.docs:
            continue
        validator = _vendored("compose-spec")
        if validator is None:
            ctx.note(
                spec.id,
                "compose-spec schema unavailable: install check-jsonschema "
                "(pip install 'mlopsctl[validate]') to check compose files",
            )
            return
        for err in _errors(validator, f.docs[0]):
            yield Hit(f.rel, f.line_of(0, tuple(err.absolute_path)), _message(err))
