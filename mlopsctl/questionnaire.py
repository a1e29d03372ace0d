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

    def match(self, text: str) -> Any | None:
        """The choice ``text`` names, ignoring case and surrounding blanks, or None.

        ``"2"`` names the choice whose value is 2 (maturity levels), never the second one."""
        wanted = text.strip().casefold()
        for choice in self.choices:
            if str(choice).casefold() == wanted:
                return choice
        return None

    def suggest(self, text: str) -> str | None:
        """The choice closest to a mistyped ``text``, for "did you mean"."""
        return nearest(text, [str(c) for c in self.choices])


def nearest(text: str, options: list[str]) -> str | None:
    """The option closest to ``text`` (case-insensitive, by difflib's ratio), or None when none
    is close; a unique option that ends with ``.text`` (``rps`` for ``scale_requirements.rps``)
    counts as closest, and a nested key is also matched by its last part."""
    import difflib

    wanted = text.strip().casefold()
    folded = {option.casefold(): option for option in options}
    tails = [o for f, o in folded.items() if f.rsplit(".", 1)[-1] == wanted]
    if len(tails) == 1:
        return tails[0]
    close = difflib.get_close_matches(wanted, list(folded), n=1, cutoff=0.6)
    if close:
        return folded[close[0]]
    by_tail = {f.rsplit(".", 1)[-1]: o for f, o in folded.items() if "." in f}
    close = difflib.get_close_matches(wanted.rsplit(".", 1)[-1], list(by_tail), n=1, cutoff=0.6)
    return by_tail[close[0]] if close else None


def keys() -> list[str]:
    """Every answer key, dotted, in questionnaire order."""
    return [q.key for q in questions()]


def question(key: str) -> Question | None:
    """The question for a dotted key, or None."""
    return next((q for q in questions() if q.key == key), None)


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
