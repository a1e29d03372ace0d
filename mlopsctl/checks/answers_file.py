"""Answers predicates: mlopsctl.yaml against the answers schema."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlopsctl.checks._engine import Context, Hit, predicate
from mlopsctl.checks._jsonschema import SchemaValidator
from mlopsctl.checks._model import CheckSpec
from mlopsctl.checks._validation import _errors, _message

if TYPE_CHECKING:
    pass


@lru_cache(maxsize=1)
def _answers_validator() -> Any:
    # Shipped with the package (``make docs`` writes it; tests keep it current).
    path = Path(__file__).resolve().parent.parent / "schemas" / "answers.schema.json"
    schema = json.loads(path.read_text(encoding="utf-8"))
    return SchemaValidator(schema)


@lru_cache(maxsize=1)
def _yaml12_loader() -> Any:
    """PyYAML's C loader reading scalars as mlopsctl reads the answers file (ruamel.yaml, YAML
    1.2): only true/false are booleans (`no` stays a string), `1e+20` is a float, `017` is
    seventeen and `0o17` fifteen, and `190:20:30` is a string."""
    import yaml

    class Loader(yaml.CSafeLoader):
        pass

    replaced = ("tag:yaml.org,2002:bool", _INT, _FLOAT)
    Loader.yaml_implicit_resolvers = {
        k: [(tag, rx) for tag, rx in v if tag not in replaced]
        for k, v in yaml.CSafeLoader.yaml_implicit_resolvers.items()
    }
    Loader.add_implicit_resolver(
        "tag:yaml.org,2002:bool",
        re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
        list("tTfF"),
    )
    Loader.add_implicit_resolver(
        _INT,
        # at least one digit: "-_" or "0x_" (which mlopsctl refuses) stay strings here
        re.compile(
            r"^(?:[-+]?0b[0-1_]*[0-1][0-1_]*|[-+]?0o[0-7_]*[0-7][0-7_]*"
            r"|[-+]?[0-9_]*[0-9][0-9_]*|[-+]?0x[0-9a-fA-F_]*[0-9a-fA-F][0-9a-fA-F_]*)$"
        ),
        list("-+0123456789"),
    )
    Loader.add_implicit_resolver(
        _FLOAT,
        re.compile(
            r"^(?:[-+]?[0-9][0-9_]*\.[0-9_]*(?:[eE][-+]?[0-9]+)?"
            r"|[-+]?[0-9][0-9_]*[eE][-+]?[0-9]+"
            r"|[-+]?\.[0-9_]*[0-9][0-9_]*(?:[eE][-+][0-9]+)?"
            r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
        ),
        list("-+0123456789."),
    )
    Loader.add_constructor(_INT, _yaml12_int)
    return Loader


def _yaml12_int(loader: Any, node: Any) -> int:
    text = str(loader.construct_scalar(node)).replace("_", "")
    sign = -1 if text.startswith("-") else 1
    digits = text.lstrip("+-")
    base = {"0b": 2, "0o": 8, "0x": 16}.get(digits[:2].lower(), 10)
    return sign * int(digits[2:] if base != 10 else digits, base)


_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"


@predicate()
def answers_schema(ctx: Context, spec: CheckSpec) -> Iterable[Hit]:
    f = ctx.repo.get("mlopsctl.yaml")
    if f is None or f.text is None or f.parse_error is not None:
        return
    import yaml

    try:
        data = yaml.load(f.text, Loader=_yaml12_loader())  # YAML 1.2 booleans, as mlopsctl reads
    except yaml.YAMLError as exc:
        yield Hit(f.rel, None, f"not valid YAML: {exc}")
        return
    if data is None:
        data = {}
    for err in _errors(_answers_validator(), data):
        yield Hit(f.rel, f.line_of(0, tuple(err.absolute_path)), _message(err))
