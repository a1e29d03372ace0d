"""Compiled JSON Schema validators with a fast path.

jsonschema-rs decides whether a document has any error at all; the usual answer is "none", and
it gives it some fifty times faster than the pure-Python library. Only a document with errors is
handed to the Python ``jsonschema`` library, whose errors (paths, ``oneOf`` branches, messages)
the findings are written from, so a finding reads the same whichever path found it. A value that
JSON has no type for (a YAML date, bytes, a non-string key) also takes the Python path.

Neither library fetches anything: jsonschema-rs runs offline, and the Python library is given
no retrieval.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from functools import cached_property
from typing import Any

jsonschema_rs: Any
try:
    import jsonschema_rs
except ImportError:  # pragma: no cover - a platform without a wheel: the Python path alone
    jsonschema_rs = None


class SchemaValidator:
    """``iter_errors(instance)`` as in ``jsonschema``; built once, reused for every document."""

    def __init__(self, schema: dict[str, Any], registry: Callable[[], Any] | None = None) -> None:
        self.schema = schema
        self._registry = registry
        self.fast = _fast(schema)

    @cached_property
    def python(self) -> Any:
        """The Python ``jsonschema`` validator: the errors findings are written from."""
        from jsonschema.validators import validator_for

        cls = validator_for(self.schema)
        if self._registry is None:
            return cls(self.schema)
        return cls(self.schema, registry=self._registry())

    def iter_errors(self, instance: Any) -> Iterator[Any]:
        if self._fast_valid(instance):
            return iter(())
        return iter(self.python.iter_errors(json_keys(instance)))

    def _fast_valid(self, instance: Any) -> bool:
        """True when jsonschema-rs finds no error; False when it finds one, or cannot read the
        document (a key that is not a string, a value JSON has no type for)."""
        if self.fast is None:
            return False
        try:
            return bool(self.fast.is_valid(instance))
        except ValueError:
            return False


def json_keys(node: Any) -> Any:
    """``node`` with every mapping key a string, as YAML becomes JSON for Kubernetes and CI
    systems: ``1:`` is the key "1", ``true:`` the key "true"."""
    if isinstance(node, list):
        return [json_keys(v) for v in node]
    if isinstance(node, dict):
        return {_key(k): json_keys(v) for k, v in node.items()}
    return node


def _key(key: Any) -> str:
    if isinstance(key, str):
        return key
    if isinstance(key, bool) or key is None:
        return json.dumps(key)
    return str(key)


def _fast(schema: dict[str, Any]) -> Any | None:
    if jsonschema_rs is None:
        return None
    try:
        return jsonschema_rs.validator_for(schema, validate_formats=False, offline=True)
    except (ValueError, jsonschema_rs.ReferencingError):
        # e.g. a reference into another document (only the Python path has its registry)
        return None
