"""Questions derived from the ``Requirements`` model: nothing here is typed twice.

Each question carries its key (a dotted path), the prompt, the help text, the allowed choices
(with what each means, where the field labels them) and the default, all read off the model's
fields, and whether it applies given the answers so far (``skip_reason``): a batch target is not
asked for serving figures. The CLI asks them; the core never prompts.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pydantic.fields import FieldInfo

from mlopsctl.requirements import NOT_ASKED, Requirements, ScaleRequirements

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
    labels: tuple[str, ...] = ()  # what each choice means, in the order of ``choices``
    example: Any = None

    def label(self, choice: Any) -> str:
        """What ``choice`` means ("" when the field does not say)."""
        if not self.labels or choice not in self.choices:
            return ""
        return self.labels[self.choices.index(choice)]

    def skip_reason(self, answers: Mapping[str, Any]) -> str | None:
        """Why this question does not apply given ``answers`` (nested plain data), or None when
        it does (or when what decides it is not answered yet)."""
        rule = _SKIPS.get(self.key)
        return rule(answers) if rule is not None else None

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


_ONLINE = ("online", "hybrid")  # the targets with an online endpoint (rules DEP001, DEP004)


def _no_requests(answers: Mapping[str, Any]) -> str | None:
    target = answers.get("deployment_target")
    if target == "batch":
        return "a batch target serves no requests"
    return None


def _no_serving_replicas(answers: Mapping[str, Any]) -> str | None:
    if answers.get("deployment_target") == "batch":
        return "a batch target has no serving replicas to put GPUs on"
    return None


def _no_endpoint(answers: Mapping[str, Any]) -> str | None:
    target = answers.get("deployment_target")
    if isinstance(target, str) and target not in _ONLINE:
        return f"a model server runs only for online serving, and the target is {target}"
    return None


# Questions that apply only to some answers, keyed by question; each gives the reason it is
# skipped. ``deployment_target`` is asked before them (see ``_ORDER``).
_SKIPS: dict[str, Callable[[Mapping[str, Any]], str | None]] = {
    "model_server": _no_endpoint,
    "scale_requirements.rps": _no_requests,
    "scale_requirements.latency_ms": _no_requests,
    "scale_requirements.concurrent_users": _no_requests,
    "gpu": _no_serving_replicas,
}
# Questions asked earlier than their field's place in the model, before the ones they decide.
_ORDER = {"deployment_target": "model_server"}


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
    example = info.examples[0] if info.examples else None
    origin = typing.get_origin(annotation)
    if origin is list:
        (item,) = typing.get_args(annotation)
        choices = typing.get_args(item)
        return Question(key, prompt, help_text, "multi", choices, default or [], example=example)
    if origin is Literal:
        choices = typing.get_args(annotation)
        named = extra.get("labels")
        labels = (
            tuple(str(named.get(str(c), "")) for c in choices) if isinstance(named, dict) else ()
        )
        return Question(
            key, prompt, help_text, "choice", choices, default, labels=labels, example=example
        )
    kind: Kind = {bool: "bool", int: "int", float: "float"}.get(annotation, "str")  # type: ignore[assignment]
    return Question(key, prompt, help_text, kind, (), default, optional, example=example)


def questions() -> list[Question]:
    """Every question, in the order of the model's fields (but for ``_ORDER``), with nested
    figures expanded."""
    defaults = Requirements.model_construct().model_dump()
    names = [n for n in Requirements.model_fields if n not in _ORDER and n not in NOT_ASKED]
    for name, before in _ORDER.items():
        names.insert(names.index(before), name)
    out: list[Question] = []
    for name in names:
        info = Requirements.model_fields[name]
        if name == "scale_requirements":
            for sub, sub_info in ScaleRequirements.model_fields.items():
                out.append(_question(f"{name}.{sub}", sub_info, defaults[name].get(sub)))
            continue
        out.append(_question(name, info, defaults[name]))
    return out
