"""Turning JSON Schema errors into findings: paths, short messages, the closest errors."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from mlopsctl.checks._engine import Hit
from mlopsctl.checks._repo import KubeObject

SHIPPED = Path(__file__).resolve().parent.parent / "schemas" / "validate"
MAX_ERRORS_PER_OBJECT = 10


def _path(parts: Iterable[Any]) -> str:
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "(document)"


def _short(value: Any, limit: int = 60) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _message(error: Any) -> str:
    """A one-line message for a jsonschema error: where, and what is wrong."""
    where = _path(error.absolute_path)
    v = error.validator
    if v == "additionalProperties":
        named = re.match(r"(.+) (?:does|do) not match any of the regexes: (.+)$", error.message)
        if named:  # the keys of a map must match patternProperties
            return f"{where}: key {named.group(1)} does not match {named.group(2)}"
        extra = re.findall(r"'([^']+)' (?:was|were) unexpected", error.message)
        names = extra or [error.message]
        return f"{where}: unknown field {', '.join(repr(n) for n in names)}"
    if v == "required":
        return f"{where}: {error.message}"
    if v in {"type", "enum", "const", "pattern", "minimum", "maximum", "minLength"}:
        return f"{where}: {_short(error.instance)} {error.message.split(' ', 1)[-1][:120]}"
    if v in {"oneOf", "anyOf"}:
        return f"{where}: {_short(error.instance)} matches none of the allowed forms"
    return f"{where}: {error.message[:160]}"


def _errors(validator: Any, instance: Any) -> list[Any]:
    """Errors sorted by path; a oneOf/anyOf error is replaced by the errors of the branch that
    came closest (fewest errors, ignoring branches that fail on a discriminating const/enum)."""
    out: list[Any] = []
    for err in validator.iter_errors(instance):
        out.extend(_closest(err))
    out.sort(key=lambda e: list(map(str, e.absolute_path)))
    return out[:MAX_ERRORS_PER_OBJECT]


def _closest(err: Any) -> list[Any]:
    if err.validator not in {"oneOf", "anyOf"} or not err.context:
        return [err]
    branches: dict[Any, list[Any]] = {}
    for sub in err.context:
        branches.setdefault(sub.schema_path[0] if sub.schema_path else None, []).append(sub)
    if not isinstance(err.instance, dict):
        return [err]

    def score(errs: list[Any]) -> tuple[int, int]:
        discriminated = any(
            e.validator in {"const", "enum"} and len(e.relative_path) == 1 for e in errs
        )
        return (1 if discriminated else 0, len(errs))

    best = min(branches.values(), key=score)
    return [e for sub in best for e in _closest(sub)]


def _object_hits(obj: KubeObject, validator: Any, what: str) -> Iterator[Hit]:
    for err in _errors(validator, obj.data):
        parts = tuple(err.absolute_path)
        # missing fields are reported at their parent, unknown ones at themselves
        if err.validator == "additionalProperties":
            extra = re.findall(r"'([^']+)' (?:was|were) unexpected", err.message)
            if extra:
                parts = (*parts, extra[0])
        yield Hit(obj.file.rel, obj.line(*parts), f"{obj.label()}: {what}: {_message(err)}")
