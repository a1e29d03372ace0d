"""Check a partial answer set: what is already known to be wrong before every question is
answered, so that the questionnaire can refuse an answer at the question that makes it wrong.

Two kinds of check. A value against its own field (``check_value``: the model's constraints and
validators, by validating the field on the model). And the rules whose inputs are all settled
(``check_settled``): the catalog's abort rules, evaluated by the engine's own condition
evaluation on the answers given so far with everything else left at its default (only rules
that read settled answers alone, so the defaults never decide), and the scale block's "at least
one figure". An answer is settled when it is given, left blank, or when its question does
not apply. And the destination, before anything is asked (``check_destination``).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from mlopsctl.errors import AnswersError
from mlopsctl.requirements import Requirements, ScaleRequirements

if TYPE_CHECKING:
    from mlopsctl.answers import AnswerSet

SCALE = "scale_requirements"
SCALE_KEYS = tuple(f"{SCALE}.{name}" for name in ScaleRequirements.model_fields)
# Taken when every scale figure is left blank and requests are served (the questionnaire's
# default traffic, as before any figure was asked).
SCALE_FALLBACK = {"rps": 50.0}


@dataclass(frozen=True)
class Refusal:
    """Why an answer cannot stand: the message, what to change, and the rule when one fired."""

    message: str
    hint: str | None = None
    rule: str | None = None


@lru_cache(maxsize=1)
def _base() -> dict[str, Any]:
    """Valid answers for every field (the defaults), to validate one field against."""
    return Requirements.model_construct().model_dump()


def _reason(err: Any) -> str:
    kind = err["type"]
    msg = str(err["msg"])
    if kind == "literal_error":
        expected = err.get("ctx", {}).get("expected", "")
        return f"{err.get('input')!r} is not allowed; use one of {expected}"
    if kind == "value_error":
        return msg.removeprefix("Value error, ")
    return f"{msg} (got {err.get('input')!r})"


def check_value(key: str, value: Any) -> Refusal | None:
    """Whether ``value`` is a valid answer for the dotted ``key`` on its own."""
    if isinstance(value, float) and not math.isfinite(value):
        return Refusal(f"{value} is not a finite number", hint="give a number such as 20")
    path = tuple(key.split("."))
    model: type[Requirements] | type[ScaleRequirements]
    loc: tuple[str, ...]
    if len(path) == 2 and path[0] == SCALE:
        model, data, loc = ScaleRequirements, {path[1]: value}, path[1:]
    else:
        model, data, loc = Requirements, {**_base(), path[0]: value}, path[:1]
        if len(path) > 1:
            data[path[0]] = _nest(path[1:], value)
    try:
        model.model_validate(data)
    except ValidationError as exc:
        for err in exc.errors(include_url=False):
            where = tuple(str(p) for p in err["loc"])
            if where[: len(loc)] == loc:
                return Refusal(_reason(err))
    return None


def _nest(path: tuple[str, ...], value: Any) -> Any:
    for part in reversed(path):
        value = {part: value}
    return value


def given(data: Mapping[str, Any]) -> set[str]:
    """The dotted keys ``data`` answers: every top-level key, and each figure of a scale block."""
    out: set[str] = set()
    for key, value in data.items():
        if key == SCALE and isinstance(value, Mapping):
            out |= {f"{SCALE}.{sub}" for sub in value}
        else:
            out.add(str(key))
    return out


def check_given(answers: AnswerSet) -> AnswersError | None:
    """The answers files and ``--set`` gave, validated as the final answers are (the same
    messages, files and lines), before anything is asked; None when each is valid. A scale
    block that gives no figure yet is left to the questions that ask for them."""
    from mlopsctl.answers import AnswerSet, _problems, fill_defaults

    trial = AnswerSet(copy.deepcopy(answers.data), dict(answers.sources))
    fill_defaults(trial)
    scale = trial.data.get(SCALE)
    if isinstance(scale, Mapping) and not any(v is not None for v in scale.values()):
        trial.data[SCALE] = {**scale, **SCALE_FALLBACK}
    try:
        Requirements.model_validate(trial.data)
    except ValidationError as exc:
        return AnswersError(_problems(exc, trial))
    return None


def _requirements(data: Mapping[str, Any]) -> Requirements:
    """The answers in ``data`` (each valid on its own), the defaults for the rest, unvalidated:
    what the engine's conditions read."""
    values = {**_base(), **{k: v for k, v in data.items() if k != SCALE}}
    scale = data.get(SCALE)
    figures = dict(scale) if isinstance(scale, Mapping) else {}
    values[SCALE] = ScaleRequirements.model_construct(
        **{name: figures.get(name) for name in ScaleRequirements.model_fields}
    )
    return Requirements.model_construct(**values)


def scale_fallback(
    data: Mapping[str, Any], skipped: Iterable[str], blank: Iterable[str] = ()
) -> dict[str, float] | None:
    """The figures to take when every scale question is settled and none was given: the
    default traffic when requests are served (rps was not skipped), else None."""
    skipped = set(skipped)
    known = given(data) | skipped | set(blank)
    if not all(key in known for key in SCALE_KEYS) or _figures(data):
        return None
    return None if f"{SCALE}.rps" in skipped else dict(SCALE_FALLBACK)


def _figures(data: Mapping[str, Any]) -> dict[str, Any]:
    scale = data.get(SCALE)
    figures = dict(scale) if isinstance(scale, Mapping) else {}
    return {k: v for k, v in figures.items() if v is not None}


def check_settled(
    data: Mapping[str, Any],
    skipped: Iterable[str] = (),
    *,
    blank: Iterable[str] = (),
    involving: str | None = None,
) -> Refusal | None:
    """The first rule that the settled answers already break, or None.

    ``data`` holds the answers given (each valid on its own), ``skipped`` the dotted keys whose
    questions do not apply and ``blank`` the optional ones left blank; an answer is settled when
    it is any of these. With ``involving``, only the rules that read that key (the answer just
    given): the others were checked when their last input was settled."""
    from mlopsctl.rules.engine import Facts, abort_message, answer_facts, matches
    from mlopsctl.rules.model import (
        DERIVED_FIELDS,
        DERIVED_INPUTS,
        INPUT_FIELDS,
        condition_fields,
        load_catalog,
    )

    skipped = set(skipped)
    blank = set(blank)
    known = given(data) | skipped | blank
    if (
        all(key in known for key in SCALE_KEYS)
        and (involving is None or involving in SCALE_KEYS)
        and not _figures(data)
        and scale_fallback(data, skipped, blank) is None
    ):
        asked = [key.split(".")[1] for key in SCALE_KEYS if key not in skipped]
        return Refusal(
            f"give at least one of {', '.join(asked)}",
            hint="the scale figures size the deployment and its jobs",
        )
    facts: Facts | None = None
    for rule in load_catalog():
        if not rule.then.abort:
            continue
        fields = set(condition_fields(rule.when))
        # A fact derived from answers alone reads as the answers it is computed from.
        for name in fields & set(DERIVED_INPUTS):
            fields = (fields - {name}) | set(DERIVED_INPUTS[name])
        if fields & {*DERIVED_FIELDS, *INPUT_FIELDS} or not fields <= known:
            continue
        if involving is not None and involving not in fields:
            continue
        facts = facts or answer_facts(_requirements(data))
        if matches(facts, rule.when):
            error = abort_message([rule])
            return Refusal(error.message, error.hint, rule.id)
    return None


def check_destination(destination: Path, *, force: bool = False) -> None:
    """Raise the ``DestinationError`` generation would raise for ``destination`` before
    rendering (not empty without ``force``, a symlink, not a directory): checked before the
    first question, so that no answer is given for a destination that cannot take them."""
    from mlopsctl.render import check_destination as refuse

    refuse(destination, force=force)
