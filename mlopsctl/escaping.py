"""The one way values reach generated YAML and JSON: as data, never as template text.

``yaml_value`` emits a value with PyYAML's own emitter (strings always double-quoted, so ``no``,
``123``, ``{{`` and newlines stay the strings they are; characters outside the basic plane are
escaped as ``\\U`` sequences, which every YAML reader decodes back). ``json_value`` emits JSON.
"""

from __future__ import annotations

import json
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


def json_value(value: Any) -> str:
    """A JSON representation of ``value`` (keys sorted, non-ASCII escaped)."""
    return json.dumps(value, sort_keys=True, ensure_ascii=True)
