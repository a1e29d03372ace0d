"""Questions derived from the ``Requirements`` model: nothing here is typed twice.

Each question carries its key (a dotted path), the prompt, the help text, the allowed choices
and the default, all read off the model's fields. The CLI asks them; the core never prompts.
"""

from __future__ import annotations

import types
import typing
from dataclasses import dataclass
from typing import Any, Literal

from pydantic.fields import FieldInfo

from mlopsctl.requirements import Requirements, ScaleRequirements

Kind = Literal["choice", "multi", "bool", "int", "float", "str"]


@dataclass(frozen=True)
class Question:
    key: str
    prompt: str
    help: str
    kind: Kind
    choices: tuple[Any, ...] = ()
    default: Any = None
    optional: bool = False  # may be left blank


def _unwrap(annotation: Any) -> tuple[Any, bool]:
    """Strip ``Optional`` and ``Annotated``; report whether None is allowed."""
    optional = False
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        optional = len(args) < len(typing.get_args(annotation))
        annotation = args[0]
    if typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    return annotation, optional


def _question(key: str, info: FieldInfo, default: Any) -> Question:
    annotation, optional = _unwrap(info.annotation)
    extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
    prompt = str(extra.get("question", key))
    help_text = info.description or ""
    origin = typing.get_origin(annotation)
    if origin is list:
        (item,) = typing.get_args(annotation)
        return Question(key, prompt, help_text, "multi", typing.get_args(item), default or [])
    if origin is Literal:
        return Question(key, prompt, help_text, "choice", typing.get_args(annotation), default)
    kind: Kind = {bool: "bool", int: "int", float: "float"}.get(annotation, "str")  # type: ignore[assignment]
    return Question(key, prompt, help_text, kind, (), default, optional)


def questions() -> list[Question]:
    """Every question, in the order of the model's fields, with nested figures expanded."""
    defaults = Requirements.model_construct().model_dump()
    out: list[Question] = []
    for name, info in Requirements.model_fields.items():
        if name == "scale_requirements":
            for sub, sub_info in ScaleRequirements.model_fields.items():
                out.append(_question(f"{name}.{sub}", sub_info, defaults[name].get(sub)))
            continue
        out.append(_question(name, info, defaults[name]))
    return out
