"""Where a command's answers come from: the answers file, ``--set``, the defaults and, at a
terminal, the questionnaire (``mlopsctl.cli._prompt``)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mlopsctl.requirements import Requirements


def collect_requirements(
    answers: Path | None,
    sets: list[str] | None,
    defaults: bool,
    *,
    project_name: str | None = None,
    ask: bool = False,
    destination: Path | None = None,
    force: bool = False,
    skipped: list[Any] | None = None,
) -> Requirements:
    """Read answers from the file, --set and defaults; ask for the rest when ``ask``.

    With ``destination`` (where the answers are generated), a destination that generation would
    refuse is refused before the first question, and an interrupted questionnaire's answers are
    kept for it and offered again. ``skipped`` receives the questions not asked because they do
    not apply (``mlopsctl.cli._prompt.Skipped``)."""
    from mlopsctl.api import Asker, load_requirements

    asker: Asker | None = None
    if ask and not defaults:
        from mlopsctl.answers import AnswerSet
        from mlopsctl.cli._prompt import ask_questions

        if destination is not None:
            from mlopsctl._partial import check_destination

            check_destination(destination, force=force)

        def prompt(answer_set: AnswerSet) -> None:
            ask_questions(
                answer_set, project_name=project_name, destination=destination, skipped=skipped
            )

        asker = prompt

    return load_requirements(
        answers, sets=sets, defaults=defaults, project_name=project_name, ask=asker
    )
