"""Answers -> ``Requirements`` -> the rules -> ``StackDesign``: the one path every command and
check takes (``mlopsctl.api`` re-exports it; ``update`` and ``validate``'s in-sync check call it
from below the API)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlopsctl.design import StackDesign
from mlopsctl.requirements import Requirements

if TYPE_CHECKING:
    from mlopsctl.answers import AnswerSet

Answers = Mapping[str, Any] | Path | str | Sequence[Path | str] | None
"""A mapping of answers, the path of an answers file, or several files laid over one another."""

Asker = Callable[["AnswerSet"], None]
"""Fills the unanswered questions of an ``AnswerSet`` (the CLI's prompts at a terminal)."""


def load_requirements(
    answers: Answers = None,
    *,
    sets: list[str] | None = None,
    defaults: bool = False,
    project_name: str | None = None,
    ask: Asker | None = None,
) -> Requirements:
    """Build ``Requirements`` from a mapping or answers files (later files over earlier ones),
    ``--set`` style overrides, the answers ``ask`` gives (called with the answer set; the CLI's
    questionnaire) and, with ``defaults``, the default of every question still unanswered.
    Raises ``AnswersError`` (each problem names the key and the file and line it came from) or
    ``MissingAnswersError``."""
    from mlopsctl.answers import (
        AnswerSet,
        apply_sets,
        build_requirements,
        fill_defaults,
        load_answers_file,
    )

    answer_set = AnswerSet()
    if isinstance(answers, Path | str):
        load_answers_file(Path(answers), answer_set)
    elif isinstance(answers, Mapping):
        for key, value in answers.items():
            answer_set.set((key,), value, source="(argument)")
    elif answers is not None:
        for path in answers:
            load_answers_file(Path(path), answer_set)
    apply_sets(answer_set, sets or [])
    if ask is not None:
        ask(answer_set)
    if defaults:
        fill_defaults(answer_set, project_name)
    return build_requirements(answer_set, use_defaults=defaults or ask is not None)


def assess(
    requirements: Requirements | Mapping[str, Any] | Path | str,
    *,
    strict: bool = False,
    tier_floor: str | None = None,
) -> StackDesign:
    """Run the rules on the requirements and return the explained design.

    ``requirements`` is a ``Requirements``, a mapping of answers (the keys of ``mlopsctl.yaml``)
    or the path of an answers file, validated with the defaults filling what it leaves out.
    ``tier_floor`` is the least tier to design for (``"T2"`` as ``mlopsctl design``, ``"T3"`` as
    ``mlopsctl lifecycle``); the rules see it, so everything they decide for that tier is in the
    design. Raises ``AnswersError`` for invalid answers, ``UsageError`` for an unknown tier
    floor, ``RuleAbort`` when the requirements hit an abort rule, and ``RuleConflictError`` when
    ``strict`` and two rules set one choice differently (without ``strict`` conflicts are listed
    in ``design.conflicts`` and ``design.warnings``).
    """
    from mlopsctl.rules.engine import evaluate

    if not isinstance(requirements, Requirements):
        requirements = load_requirements(requirements, defaults=True)
    return evaluate(requirements, strict=strict, tier_floor=tier_floor)


def project_requirements(
    answers_file: Path,
    extra: Path | None,
    sets: list[str] | None,
    project_name: str | None,
) -> tuple[Requirements, Requirements]:
    """(requirements from a project's answers file alone, with ``extra`` and ``sets`` over it):
    what ``update`` compares."""
    own = load_requirements(answers_file, defaults=True, project_name=project_name)
    files = [answers_file] if extra is None else [answers_file, extra]
    new = load_requirements(files, sets=sets, defaults=True, project_name=project_name)
    return own, new
