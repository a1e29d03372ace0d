"""Ask the questionnaire at a terminal: choices as numbered lists with the default marked."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.markup import escape

from mlopsctl.answers import AnswerSet
from mlopsctl.questionnaire import Question, questions


class _Retry(ValueError):
    pass


def _parse(q: Question, raw: str) -> Any:
    text = raw.strip()
    if text == "":
        if q.optional:
            return None
        if q.default is None:
            raise _Retry("an answer is required")
        return q.default
    if q.kind == "choice":
        return _pick(q, text)
    if q.kind == "multi":
        if text in {"-", "none"}:
            return []
        picked = [_pick(q, part.strip()) for part in text.split(",") if part.strip()]
        return sorted(set(picked), key=picked.index)
    if q.kind == "bool":
        if text.lower() in {"y", "yes", "true"}:
            return True
        if text.lower() in {"n", "no", "false"}:
            return False
        raise _Retry("answer y or n")
    if q.kind == "int":
        try:
            return int(text)
        except ValueError:
            raise _Retry("a whole number, please") from None
    if q.kind == "float":
        try:
            return float(text)
        except ValueError:
            raise _Retry("a number, please") from None
    return text


def _pick(q: Question, text: str) -> Any:
    if text.isdigit() and 1 <= int(text) <= len(q.choices):
        return q.choices[int(text) - 1]
    for choice in q.choices:
        if str(choice) == text:
            return choice
    raise _Retry(f"choose a number from 1 to {len(q.choices)} or one of the names shown")


def _show(console: Console, q: Question, number: int, total: int) -> None:
    console.print(f"\n[bold]({number}/{total}) {escape(q.prompt)}[/]  [dim]{escape(q.key)}[/]")
    if q.help:
        console.print(f"  [dim]{escape(q.help)}[/]")
    if q.choices:
        defaults = q.default if isinstance(q.default, list) else [q.default]
        for i, choice in enumerate(q.choices, start=1):
            mark = "  [green](default)[/]" if choice in defaults else ""
            console.print(f"  {i}. {escape(str(choice))}{mark}")
        if q.kind == "multi":
            console.print("  [dim]comma-separated numbers or names; '-' for none[/]")


def _default_text(q: Question) -> str:
    if q.optional and q.default is None:
        return "blank to skip"
    if q.kind == "bool":
        return "Y/n" if q.default else "y/N"
    if isinstance(q.default, list):
        return ", ".join(map(str, q.default)) or "none"
    return str(q.default)


def _check(q: Question, value: Any) -> None:
    if q.key == "project_name":
        from pydantic import ValidationError

        from mlopsctl.requirements import Requirements

        try:
            Requirements(project_name=value)
        except ValidationError as exc:
            raise _Retry(str(exc.errors()[0]["msg"]).removeprefix("Value error, ")) from None


def ask_questions(
    answers: AnswerSet, *, project_name: str | None = None, console: Console | None = None
) -> None:
    """Ask every question the answers do not already settle."""
    console = console or Console(highlight=False)
    pending = [q for q in questions() if _unanswered(answers, q.key)]
    total = len(pending)
    scale_given = False
    for number, q in enumerate(pending, start=1):
        if q.key == "project_name" and project_name:
            q = Question(q.key, q.prompt, q.help, q.kind, q.choices, project_name, q.optional)
        _show(console, q, number, total)
        while True:
            raw = console.input(f"  [cyan]>[/] [dim]\\[{escape(_default_text(q))}][/] ")
            try:
                value = _parse(q, raw)
                _check(q, value)
            except _Retry as exc:
                console.print(f"  [red]{escape(str(exc))}[/]")
                continue
            break
        if value is None:
            continue
        if q.key.startswith("scale_requirements."):
            scale_given = True
        answers.set(tuple(q.key.split(".")), value, source="prompt")
    if not scale_given and not answers.has("scale_requirements"):
        answers.set(("scale_requirements",), {"rps": 50.0}, source="default")


def _unanswered(answers: AnswerSet, key: str) -> bool:
    node: Any = answers.data
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return True
        node = node[part]
    return False
