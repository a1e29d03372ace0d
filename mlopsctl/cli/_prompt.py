"""Ask the questionnaire at a terminal, checking every answer when it is given.

An answer is checked at its prompt against its field's constraints and every rule whose inputs
are all settled (``mlopsctl._partial``); a refused answer is explained and asked again, and the
answers already given stand. Questions that do not apply to the answers so far are not asked
(``Question.skip_reason``). ``?`` at any prompt shows the question's help.

At a full terminal choices are picked with the arrow keys or by typing to filter (questionary);
otherwise (``TERM=dumb``, standard input or output not a terminal, or ``MLOPSCTL_PLAIN_PROMPTS=1``)
they are listed, numbered unless a choice is itself a number (maturity levels are typed as the
level), and typed by number or by name, ignoring case.

Ctrl-C or Ctrl-D at any prompt ends the questionnaire as an interrupt (exit 130, nothing written);
the answers given so far are kept in the user's cache (``mlopsctl._resume``) and the next
questionnaire for the same destination offers them.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape

from mlopsctl.answers import AnswerSet
from mlopsctl.questionnaire import Question, questions

PLAIN_ENV = "MLOPSCTL_PLAIN_PROMPTS"
HELP = "?"


class _Retry(ValueError):
    pass


class _Help(Exception):
    """``?`` was typed: show the question's help and ask again."""


@dataclass(frozen=True)
class Skipped:
    """A question not asked, and why."""

    key: str
    reason: str


def full_terminal() -> bool:
    """Whether choice prompts can take over the terminal (arrow keys, filtering)."""
    if os.environ.get(PLAIN_ENV, "").strip() not in ("", "0"):
        return False
    if os.environ.get("TERM", "dumb") in ("", "dumb"):
        return False
    return sys.stdin.isatty() and sys.stdout.isatty()


def _numbered(q: Question) -> bool:
    """Whether choices are shown with numbers: never when a choice could be typed as one."""
    return not any(str(choice).strip().isdigit() for choice in q.choices)


def _parse(q: Question, raw: str) -> Any:
    text = raw.strip()
    if text == HELP:
        raise _Help()
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
    numbered = _numbered(q)
    if numbered and text.isdigit() and 1 <= int(text) <= len(q.choices):
        return q.choices[int(text) - 1]
    choice = q.match(text)
    if choice is not None:
        return choice
    if numbered:
        message = f"choose a number from 1 to {len(q.choices)} or one of the names shown"
    else:
        message = "choose one of " + ", ".join(map(str, q.choices))
    close = None if text.isdigit() else q.suggest(text)
    if close is not None:
        message = f"{text!r} is not a choice; did you mean {close}? ({message})"
    raise _Retry(message)


def _choice_text(q: Question, choice: Any) -> str:
    label = q.label(choice)
    return f"{choice}  {label}" if label else str(choice)


def _show(console: Console, q: Question, number: int, total: int, *, list_choices: bool) -> None:
    console.print(f"\n[bold]({number}/{total}) {escape(q.prompt)}[/]  [dim]{escape(q.key)}[/]")
    if q.help:
        console.print(f"  [dim]{escape(q.help)}[/]")
    if q.choices and list_choices:
        defaults = q.default if isinstance(q.default, list) else [q.default]
        numbered = _numbered(q)
        for i, choice in enumerate(q.choices, start=1):
            mark = "  [green](default)[/]" if choice in defaults else ""
            lead = f"{i}. " if numbered else ""
            console.print(f"  {lead}{escape(_choice_text(q, choice))}{mark}")
        if q.kind == "multi":
            console.print("  [dim]comma-separated numbers or names; '-' for none[/]")


def _help(console: Console, q: Question) -> None:
    console.print(f"  [bold]{escape(q.prompt)}[/] ({escape(q.key)})")
    if q.help:
        console.print(f"  {escape(q.help)}")
    if q.example is not None:
        shown = ", ".join(map(str, q.example)) if isinstance(q.example, list) else q.example
        console.print(f"  example: {escape(str(shown))}")
    if q.choices:
        console.print("  choices:")
        for choice in q.choices:
            console.print(f"    {escape(_choice_text(q, choice))}")
    elif q.kind == "bool":
        console.print("  answer y or n")
    elif q.kind in ("int", "float"):
        console.print("  a whole number" if q.kind == "int" else "  a number")
    if q.optional:
        console.print("  leave it blank to skip it")
    console.print("  [dim]Ctrl-C or Ctrl-D stops; the answers given so far are kept[/]")


def _default_text(q: Question, needed: bool = False) -> str:
    if q.optional and q.default is None:
        return "required" if needed else "blank to skip"
    if q.kind == "bool":
        return "Y/n" if q.default else "y/N"
    if isinstance(q.default, list):
        return ", ".join(map(str, q.default)) or "none"
    return str(q.default)


def _read(console: Console, prompt: str) -> str:
    """One line from the terminal; Ctrl-D is an interrupt like Ctrl-C."""
    try:
        return console.input(prompt)
    except EOFError:
        console.print()
        raise KeyboardInterrupt from None


def _ask_plain(console: Console, q: Question, needed: bool = False) -> Any:
    raw = _read(console, f"  [cyan]>[/] [dim]\\[{escape(_default_text(q, needed))}][/] ")
    return _parse(q, raw)


def _ask_full(q: Question) -> Any:
    """A choice or several, with questionary: arrow keys, type to filter, ``?`` for help."""
    import questionary
    from prompt_toolkit.key_binding import KeyBindings, merge_key_bindings

    titles = [questionary.Choice(_choice_text(q, c), value=i) for i, c in enumerate(q.choices)]
    if q.kind == "multi":
        defaults = q.default if isinstance(q.default, list) else []
        for title, choice in zip(titles, q.choices, strict=True):
            title.checked = choice in defaults
        question = questionary.checkbox(
            q.prompt,
            choices=titles,
            qmark=">",
            use_jk_keys=False,
            use_search_filter=True,
            instruction="(space to pick, type to filter, enter to accept, ? for help)",
        )
    else:
        default = q.choices.index(q.default) if q.default in q.choices else None
        question = questionary.select(
            q.prompt,
            choices=titles,
            default=None if default is None else titles[default],
            qmark=">",
            use_jk_keys=False,
            use_search_filter=True,
            use_shortcuts=False,
            instruction="(arrow keys, type to filter, enter to pick, ? for help)",
        )
    extra = KeyBindings()

    @extra.add("?", eager=True)
    def _show_help(event: Any) -> None:
        event.app.exit(exception=_Help())

    @extra.add("c-d", eager=True)
    def _end(event: Any) -> None:
        event.app.exit(exception=KeyboardInterrupt())

    app = question.application
    app.key_bindings = merge_key_bindings([app.key_bindings or KeyBindings(), extra])
    picked = question.unsafe_ask()
    if picked is None:  # questionary's own cancel
        raise KeyboardInterrupt
    if q.kind == "multi":
        return [q.choices[i] for i in picked]
    return q.choices[picked]


def _unanswered(answers: AnswerSet, key: str) -> bool:
    node: Any = answers.data
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return True
        node = node[part]
    return False


def _with(data: dict[str, Any], key: str, value: Any) -> dict[str, Any]:
    """A copy of ``data`` with the dotted ``key`` set to ``value``."""
    out = dict(data)
    head, _, sub = key.partition(".")
    if sub:
        inner = out.get(head)
        out[head] = {**(inner if isinstance(inner, dict) else {}), sub: value}
    else:
        out[head] = value
    return out


def _skipped_now(answers: dict[str, Any], pending: list[Question]) -> dict[str, str]:
    out: dict[str, str] = {}
    for q in pending:
        reason = q.skip_reason(answers)
        if reason is not None:
            out[q.key] = reason
    return out


def _refusal(
    data: dict[str, Any],
    pending: list[Question],
    key: str,
    value: Any,
    blank: set[str] | frozenset[str] = frozenset(),
) -> Any:
    """Why ``value`` cannot be the answer to ``key`` with the answers ``data`` so far (and the
    optional questions left ``blank``), or None."""
    from mlopsctl._partial import check_settled, check_value

    if value is None:
        candidate, blank = data, {*blank, key}
    else:
        refusal = check_value(key, value)
        if refusal is not None:
            return refusal
        candidate = _with(data, key, value)
    skipped = _skipped_now(candidate, [q for q in pending if q.key != key])
    return check_settled(candidate, skipped, blank=blank, involving=key)


def check_given(answers: AnswerSet, pending: list[Question]) -> None:
    """Refuse answers from files and ``--set`` before any question: each on its own, then the
    rules they already settle."""
    from mlopsctl._partial import check_given as invalid
    from mlopsctl._partial import check_settled
    from mlopsctl.errors import AnswersError, FieldProblem, RuleAbort

    error = invalid(answers)
    if error is not None:
        raise error
    broken = check_settled(answers.data, _skipped_now(answers.data, pending))
    if broken is None:
        return
    if broken.rule is not None:
        message = broken.message.removeprefix(f"{broken.rule}: ")
        raise RuleAbort(broken.rule, message, broken.hint or "")
    raise AnswersError(
        [FieldProblem(key="scale_requirements", message=broken.message)], hint=broken.hint
    )


def _offer_resume(
    console: Console, answers: AnswerSet, destination: Path, pending: list[Question]
) -> dict[str, Any]:
    """Offer the answers an interrupted questionnaire for ``destination`` left; take the ones
    still unanswered and still valid with the answers given now, and return them (None for a
    question left blank)."""
    from mlopsctl import _resume

    taken: dict[str, Any] = {}
    saved, note = _resume.load(destination)
    if note is not None:
        console.print(f"[yellow]note:[/] ignored the saved answers: {escape(note)}")
        _resume.discard(destination)
    if saved is None:
        return taken
    open_keys = {q.key for q in pending}
    usable = {k: v for k, v in saved.answers.items() if k in open_keys}
    if not usable:
        _resume.discard(destination)
        return taken
    when = saved.saved_at.astimezone().strftime("%Y-%m-%d %H:%M")
    count = len(usable)
    while True:
        raw = _read(
            console,
            f"Resume the {count} answer{'s' if count > 1 else ''} you gave on {when}? \\[Y/n] ",
        )
        text = raw.strip().lower()
        if text in ("", "y", "yes", "n", "no"):
            break
        console.print("  [red]answer y or n[/]")
    if text in ("n", "no"):
        _resume.discard(destination)
        return taken
    blank: set[str] = set()
    for q in pending:
        if q.key not in usable:
            continue
        value = usable[q.key]
        refusal = _refusal(answers.data, pending, q.key, value, blank)
        if refusal is not None:
            console.print(
                f"  [yellow]note:[/] {escape(q.key)} is asked again: {escape(refusal.message)}"
            )
            continue
        taken[q.key] = value
        if value is None:
            blank.add(q.key)
        else:
            answers.set(tuple(q.key.split(".")), value, source="resumed answers")
    return taken


def ask_questions(
    answers: AnswerSet,
    *,
    project_name: str | None = None,
    destination: Path | None = None,
    console: Console | None = None,
    skipped: list[Skipped] | None = None,
) -> list[Skipped]:
    """Ask every question the answers do not already settle and that applies; return (and add
    to ``skipped``) the questions not asked because they do not apply."""
    from mlopsctl import _resume
    from mlopsctl._partial import SCALE, scale_fallback

    if console is None:
        from mlopsctl.cli._common import stdout

        console = stdout()
    out = skipped if skipped is not None else []
    pending = [q for q in questions() if _unanswered(answers, q.key)]
    check_given(answers, pending)
    # the answers given at the prompt, None for a question left blank (resumed ones first)
    given: dict[str, Any] = {}
    if destination is not None:
        given = _offer_resume(console, answers, destination, pending)
        pending = [q for q in pending if q.key not in given]
    blank = {key for key, value in given.items() if value is None}
    full = full_terminal()
    number = 0
    try:
        for index, q in enumerate(pending):
            reason = q.skip_reason(answers.data)
            if reason is not None:
                out.append(Skipped(q.key, reason))
                continue
            if q.key == "project_name" and project_name:
                q = replace(q, default=project_name)
            number += 1
            total = number + sum(
                1 for p in pending[index + 1 :] if p.skip_reason(answers.data) is None
            )
            value = _ask(console, q, (number, total), full, answers, pending, blank)
            given[q.key] = value
            if value is None:
                blank.add(q.key)
            else:
                answers.set(tuple(q.key.split(".")), value, source="prompt")
    except KeyboardInterrupt:
        if destination is not None and given and _resume.save(destination, given):
            console.print(
                f"\nkept the {len(given)} answer{'s' if len(given) > 1 else ''} given; the next "
                f"[bold]mlopsctl init[/] for "
                f"{escape(str(destination))} offers them"
            )
        raise KeyboardInterrupt from None
    fallback = scale_fallback(answers.data, [s.key for s in out], blank)
    if fallback is not None:
        answers.set((SCALE,), fallback, source="default")
    if destination is not None and given:  # kept until the repository is generated
        _resume.save(destination, given)
    if out:
        console.print("\nNot asked, as they do not apply:")
        for item in out:
            console.print(f"  {escape(item.key)}: {escape(item.reason)}")
    return out


def _ask(
    console: Console,
    q: Question,
    place: tuple[int, int],
    full: bool,
    answers: AnswerSet,
    pending: list[Question],
    blank: set[str],
) -> Any:
    """Ask ``q`` until its answer stands with the answers given so far."""
    picker = full and q.kind in ("choice", "multi")
    _show(console, q, *place, list_choices=not picker)
    # an optional question that cannot be left blank now (the one scale figure left)
    needed = q.optional and _refusal(answers.data, pending, q.key, None, blank) is not None
    while True:
        try:
            value = _ask_full(q) if picker else _ask_plain(console, q, needed)
        except _Help:
            _help(console, q)
            continue
        except _Retry as exc:
            console.print(f"  [red]{escape(str(exc))}[/]")
            continue
        refusal = _refusal(answers.data, pending, q.key, value, blank)
        if refusal is None:
            return value
        console.print(f"  [red]{escape(refusal.message)}[/]")
        if refusal.hint:
            console.print(f"  [dim]{escape(refusal.hint)}[/]")
