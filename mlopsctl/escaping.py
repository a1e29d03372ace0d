"""The one way values reach generated YAML and JSON: as data, never as template text.

``yaml_value`` emits a value with PyYAML's own emitter (strings always double-quoted, so ``no``,
``123``, ``{{`` and newlines stay the strings they are; characters outside the basic plane are
escaped as ``\\U`` sequences, which every YAML reader decodes back). ``json_value`` emits JSON
that also reads back unchanged as YAML. Templates reach both as ``yv()`` and ``jv()``;
tests/test_escaping.py fails when a YAML or JSON template interpolates a value any other way.
"""

from __future__ import annotations

import json
import re
from typing import Any

import yaml


class _Dumper(yaml.SafeDumper):
    pass


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style='"')


_Dumper.add_representer(str, _str)


def yaml_value(value: Any) -> str:
    """A YAML flow representation of ``value`` that reads back as exactly ``value``."""
    text = yaml.dump(
        value,
        Dumper=_Dumper,
        default_flow_style=True,
        allow_unicode=True,
        width=2**31 - 1,
        sort_keys=False,
        explicit_end=False,
    )
    text = text.rstrip("\n")
    if text.endswith("\n..."):
        text = text[: -len("\n...")]
    return text


# Characters JSON carries raw but YAML readers do not take raw in a quoted scalar: DEL and the C1
# controls, NEL, U+2028/U+2029 (line breaks to YAML 1.1 readers), the BOM, lone surrogates and the
# BMP noncharacters. Everything else, characters outside the basic plane included, is written as
# itself: ``\ud83d\ude00`` surrogate-pair escapes (what ``ensure_ascii`` and Jinja's ``tojson``
# write) turn into two broken characters when a YAML reader reads them.
_JSON_ESCAPE = re.compile("[\x7f-\x9f\u2028\u2029\ufeff\ud800-\udfff\ufffe\uffff]")


# A JSON string, or a number written with an exponent but no fraction (``1e+20``, ``5e-324``):
# YAML 1.1 readers take such a number for a string, so it gets ``.0`` (``1.0e+20``), as PyYAML's
# own emitter does.
_JSON_BARE_EXPONENT = re.compile(r'"(?:[^"\\]|\\.)*"|(?<![\w.])(-?\d+)([eE][-+]?\d+)')


def portable_float(text: str) -> str:
    """A float's ``repr`` as both YAML 1.1 and 1.2 readers (and JSON readers) read it."""
    return _JSON_BARE_EXPONENT.sub(_with_fraction, text)


def _with_fraction(m: re.Match[str]) -> str:
    return m.group() if m.group(1) is None else f"{m.group(1)}.0{m.group(2)}"


def json_value(value: Any, indent: int | None = None) -> str:
    """A JSON representation of ``value`` (keys sorted) that JSON and YAML readers alike read
    back as exactly ``value``. NaN and infinities are refused: JSON has no spelling for them.
    ``indent`` spreads a whole document over lines, so that edits to it merge line by line."""
    text = json.dumps(value, sort_keys=True, ensure_ascii=False, allow_nan=False, indent=indent)
    return _JSON_ESCAPE.sub(lambda m: f"\\u{ord(m.group()):04x}", portable_float(text))


def json_document(value: Any) -> str:
    """A whole JSON document (indented, keys sorted, ASCII) built from template data."""
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=True) + "\n"
