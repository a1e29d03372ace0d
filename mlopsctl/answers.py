"""Collect answers from a file, ``--set`` overrides, defaults and prompts into ``Requirements``.

Errors name the key and, for values that came from a file, the file and line.
"""

from __future__ import annotations

import io
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from mlopsctl.errors import AnswersError, FieldProblem, MissingAnswersError, UsageError
from mlopsctl.requirements import Requirements, required_questions

if TYPE_CHECKING:
    from mlopsctl.questionnaire import Question

MAX_ANSWERS_FILE_BYTES = 256 * 1024

Path_ = tuple[str, ...]


@dataclass
class AnswerSet:
    """Raw answers as nested plain data, with where each value came from."""

    data: dict[str, Any] = field(default_factory=dict)
    sources: dict[Path_, tuple[str, int | None]] = field(default_factory=dict)

    def set(self, path: Path_, value: Any, source: str, line: int | None = None) -> None:
        node = self.data
        for i, part in enumerate(path[:-1]):
            child = node.get(part)
            if not isinstance(child, dict):
                if child is not None:
                    where = ".".join(path[: i + 1])
                    raise UsageError(
                        f"{source}: {where} is not a mapping, cannot set {'.'.join(path)}",
                    )
                child = {}
                node[part] = child
            node = child
        node[path[-1]] = value
        self.sources[path] = (source, line)

    def has(self, key: str) -> bool:
        return key in self.data

    def where(self, path: Path_) -> tuple[str | None, int | None]:
        for n in range(len(path), 0, -1):
            if path[:n] in self.sources:
                return self.sources[path[:n]]
        return None, None


def _plain(node: Any) -> Any:
    """Turn ruamel's round-trip containers and scalars into plain Python values."""
    from ruamel.yaml.comments import CommentedMap, CommentedSeq, TaggedScalar

    if isinstance(node, TaggedScalar):  # !!str, the one tag ruamel keeps (others are refused)
        return str(node.value)

    if isinstance(node, CommentedMap | dict):
        return {str(k) if isinstance(k, str) else k: _plain(v) for k, v in node.items()}
    if isinstance(node, CommentedSeq | list):
        return [_plain(v) for v in node]
    if isinstance(node, bool) or node is None:
        return node
    if isinstance(node, int):
        return int(node)
    if isinstance(node, float):
        return float(node)
    if isinstance(node, str):
        return str(node)
    return node


# Tags an answers file may spell out; anything else (``!!python/object``, ``!!binary``, custom
# ``!tags``) is refused before any value is constructed.
_ALLOWED_TAGS = frozenset(
    f"tag:yaml.org,2002:{name}" for name in ("str", "int", "float", "bool", "null", "map", "seq")
)
MAX_DEPTH = 8  # the deepest valid answer is two levels down (scale_requirements.rps)
MAX_NODES = 10_000
MAX_STRING_CHARS = 4096
MAX_NUMBER_CHARS = 100  # the largest valid answer has a dozen digits
_CORE = "tag:yaml.org,2002:"
# What a tagged scalar's text must read as (YAML 1.2 core schema) for the tag to apply.
_TAG_READS_AS = {
    f"{_CORE}int": {f"{_CORE}int"},
    f"{_CORE}float": {f"{_CORE}int", f"{_CORE}float"},
    f"{_CORE}bool": {f"{_CORE}bool"},
    f"{_CORE}null": {f"{_CORE}null"},
}
# C0 and C1 control characters other than tab and newline, NUL among them, and surrogates (what
# undecodable bytes in a command-line argument become).
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")


def _control_problem(text: str) -> str | None:
    match = _CONTROL.search(text)
    if match is None:
        return None
    return f"contains the control character U+{ord(match.group()):04X}; remove it"


def _check_events(text: str, source: str, numbers: bool = False) -> None:
    """Refuse what a plain answers file never needs, before anything is constructed:
    anchors and aliases (no entity-expansion bombs), tags outside the core schema (no object
    construction), nesting deeper than ``MAX_DEPTH`` and more than ``MAX_NODES`` values. With
    ``numbers``, also a plain scalar YAML takes for a number but cannot read as one (``._``,
    ``+_``: ruamel.yaml raises ValueError or IndexError while constructing it)."""
    from ruamel.yaml import YAML
    from ruamel.yaml.events import (
        AliasEvent,
        CollectionEndEvent,
        CollectionStartEvent,
        MappingStartEvent,
        NodeEvent,
        ScalarEvent,
    )
    from ruamel.yaml.nodes import ScalarNode
    from ruamel.yaml.resolver import VersionedResolver

    resolver = VersionedResolver(version=(1, 2))

    # One frame per open collection: [is_mapping, next node is a key, current key or index].
    stack: list[list[Any]] = []

    def path() -> str:
        parts = [str(frame[2]) for frame in stack if frame[2] not in (None, "")]
        return ".".join(parts) if parts else "(file)"

    def problem(event: Any, message: str, hint: str) -> AnswersError:
        line = event.start_mark.line + 1 if event.start_mark is not None else None
        return AnswersError(
            [FieldProblem(key=path(), message=message, source=source, line=line)], hint=hint
        )

    def finished() -> None:
        # A finished node in a mapping flips it between key and value position.
        if stack and stack[-1][0]:
            stack[-1][1] = not stack[-1][1]

    nodes = 0
    no_refs = "write each answer out in full; answers files take no anchors or aliases"
    for event in YAML(typ="rt", pure=True).parse(io.StringIO(text)):
        if isinstance(event, CollectionEndEvent):
            stack.pop()
            finished()
            continue
        if not isinstance(event, NodeEvent):
            continue
        if stack:
            frame = stack[-1]
            if not frame[0]:
                frame[2] = 0 if frame[2] is None else frame[2] + 1
            elif frame[1] and isinstance(event, ScalarEvent):
                frame[2] = event.value
        if isinstance(event, AliasEvent):
            raise problem(event, f"alias *{event.anchor} is not allowed", no_refs)
        nodes += 1
        if event.anchor is not None:
            raise problem(event, f"anchor &{event.anchor} is not allowed", no_refs)
        tag = getattr(event, "tag", None)
        if tag is not None and str(tag) not in _ALLOWED_TAGS:
            raise problem(
                event,
                f"tag {tag} is not allowed",
                "remove the tag; answers are plain strings, numbers, booleans, lists and mappings",
            )
        if nodes > MAX_NODES:
            raise problem(event, f"more than {MAX_NODES} values", "answers files are small")
        if isinstance(event, ScalarEvent):
            reads_as = str(resolver.resolve(ScalarNode, event.value, (True, False)))
            if tag is not None and str(tag) in _TAG_READS_AS:
                if reads_as not in _TAG_READS_AS[str(tag)]:
                    name = str(tag).removeprefix(_CORE)
                    raise problem(
                        event,
                        f"{_show(event.value)} is not a valid !!{name}",
                        "remove the tag, or write a value of that type",
                    )
            elif tag is not None or event.style is not None:
                reads_as = f"{_CORE}str"
            numeric = reads_as in {f"{_CORE}int", f"{_CORE}float"}
            if numeric and len(event.value) > MAX_NUMBER_CHARS:
                raise problem(
                    event,
                    f"a number of {len(event.value)} characters; answers take numbers of at "
                    f"most {MAX_NUMBER_CHARS}",
                    "write the number out in full, e.g. 200 or 0.5",
                )
        if numbers and isinstance(event, ScalarEvent) and event.style is None:
            try:
                YAML(typ="rt", pure=True).load(io.StringIO(event.value))
            except (ValueError, IndexError):
                raise problem(
                    event,
                    f"{event.value!r} looks like a number but is not one",
                    "write the number out (e.g. 0.5), or quote the value to mean text",
                ) from None
        if isinstance(event, CollectionStartEvent):
            if len(stack) >= MAX_DEPTH:
                raise problem(
                    event,
                    f"nested more than {MAX_DEPTH} levels deep",
                    "an answers file is a flat mapping with scale_requirements one level down",
                )
            stack.append([isinstance(event, MappingStartEvent), True, None])
            continue
        finished()


def _check_tree(node: Any, prefix: Path_, source: str, line: int | None) -> None:
    """Every key a string, every string free of control characters and of bounded length."""
    from ruamel.yaml.comments import CommentedMap, CommentedSeq, TaggedScalar

    def where(key: Any) -> int | None:
        lc = getattr(node, "lc", None)
        if lc is not None and lc.data and key in lc.data:
            return int(lc.data[key][0]) + 1
        return line

    def fail(path: Path_, message: str, at: int | None) -> AnswersError:
        key = ".".join(path) if path else "(file)"
        return AnswersError([FieldProblem(key=key, message=message, source=source, line=at)])

    if isinstance(node, CommentedMap | dict):
        for key, value in node.items():
            at = where(key)
            if not isinstance(key, str):
                raise fail(prefix, f"key {_show(key)} is not a string; keys are question names", at)
            path = (*prefix, key)
            bad = _control_problem(key)
            if bad or len(key) > 200:
                shown = ".".join((*prefix, _show(key)))
                raise AnswersError(
                    [FieldProblem(key=shown, message=bad or "key too long", source=source, line=at)]
                )
            _check_tree(value, path, source, at)
    elif isinstance(node, CommentedSeq | list):
        for index, item in enumerate(node):
            at = line
            lc = getattr(node, "lc", None)
            if lc is not None and lc.data and index in lc.data:
                at = int(lc.data[index][0]) + 1
            _check_tree(item, (*prefix, str(index)), source, at)
    elif isinstance(node, str):
        check_string(node, prefix, source, line)
    elif isinstance(node, TaggedScalar):  # a !!str scalar
        check_string(str(node.value), prefix, source, line)


def check_string(value: str, path: Path_, source: str | None, line: int | None = None) -> None:
    """Refuse control characters and overlong strings in any answer, naming the key."""
    key = ".".join(path) if path else "(value)"
    bad = _control_problem(value)
    if bad is None and len(value) > MAX_STRING_CHARS:
        bad = f"is {len(value)} characters long; answers are at most {MAX_STRING_CHARS}"
    if bad is not None:
        raise AnswersError([FieldProblem(key=key, message=bad, source=source, line=line)])


def _record_lines(answers: AnswerSet, node: Any, prefix: Path_, source: str) -> None:
    from ruamel.yaml.comments import CommentedMap

    if not isinstance(node, CommentedMap):
        return
    for key, value in node.items():
        line = node.lc.key(key)[0] + 1 if node.lc.data and key in node.lc.data else None
        path = (*prefix, str(key))
        answers.sources[path] = (source, line)
        _record_lines(answers, value, path, source)


def _read_bounded(path: Path, source: str) -> bytes:
    """Read at most one byte past the limit, so that /dev/zero or a huge file cannot exhaust
    memory."""
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_ANSWERS_FILE_BYTES + 1)
    except FileNotFoundError:
        raise UsageError(f"answers file {source} does not exist", hint="check the path") from None
    except IsADirectoryError:
        raise UsageError(f"answers file {source} is a directory", hint="give a YAML file") from None
    except OSError as exc:
        raise UsageError(f"cannot read answers file {source}: {exc.strerror or exc}") from None
    if len(raw) > MAX_ANSWERS_FILE_BYTES:
        raise UsageError(
            f"answers file {source} is larger than {MAX_ANSWERS_FILE_BYTES} bytes; "
            "an answers file is a short list of answers",
        )
    return raw


def load_answers_file(path: Path, answers: AnswerSet | None = None) -> AnswerSet:
    """Read a YAML answers file (YAML 1.2: ``no`` stays a string) into an ``AnswerSet``.

    Refused, each with the file and line: non-UTF-8 bytes, NUL and other control characters,
    anchors and aliases, tags outside the core schema, duplicate keys, non-string keys, deep
    nesting, more than one document, and files over ``MAX_ANSWERS_FILE_BYTES``.
    """
    from ruamel.yaml import YAML
    from ruamel.yaml.error import MarkedYAMLError, YAMLError

    answers = answers or AnswerSet()
    source = str(path)
    raw = _read_bounded(path, source)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise AnswersError(
            [
                FieldProblem(
                    key="(file)",
                    message=f"not UTF-8 text (byte {exc.start})",
                    source=source,
                    line=line,
                )
            ],
            hint="save the answers file as UTF-8",
        ) from None
    text = text.removeprefix("\ufeff")
    for number, line_text in enumerate(text.split("\n"), start=1):
        bad = _control_problem(line_text.rstrip("\r"))
        if bad is not None:
            raise AnswersError(
                [FieldProblem(key="(file)", message=bad, source=source, line=number)]
            )
    yaml = YAML(typ="rt", pure=True)
    yaml.allow_duplicate_keys = False
    try:
        _check_events(text, source)
        doc = yaml.load(io.StringIO(text))
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        at: int | None = int(mark.line) + 1 if mark is not None else None
        problem = exc.problem or exc.context or "not valid YAML"
        raise AnswersError(
            [FieldProblem(key="(file)", message=str(problem).strip(), source=source, line=at)],
            hint="fix the YAML syntax; an answers file is a mapping of question keys to values",
        ) from None
    except YAMLError as exc:
        raise AnswersError(
            [FieldProblem(key="(file)", message=str(exc).strip(), source=source)]
        ) from None
    except (ValueError, IndexError):  # ruamel.yaml on a scalar such as "._" or "+_"
        _check_events(text, source, numbers=True)  # raises, naming the value and its line
        raise
    if doc is None:
        return answers
    if not isinstance(doc, Mapping):
        raise AnswersError(
            [
                FieldProblem(
                    key="(file)", message="must be a mapping of keys to values", source=source
                )
            ]
        )
    _check_tree(doc, (), source, None)
    _record_lines(answers, doc, (), source)
    for key, value in _plain(doc).items():
        answers.data[key] = value
    return answers


_KEY_PART = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")


def parse_set_option(option: str) -> tuple[Path_, Any]:
    """Parse ``key.path=value``; the value is read as a YAML 1.2 flow scalar or collection.

    The same limits as for answers files apply (no anchors, aliases or non-core tags, no control
    characters); text that is not YAML at all is taken as the string it is.
    """
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    key, sep, raw_value = option.partition("=")
    key = key.strip()
    if not sep or not key:
        raise UsageError(
            f"--set {_show(option)}: expected KEY=VALUE",
            hint="for example --set scale_requirements.latency_ms=30",
        )
    parts = tuple(key.split("."))
    if any(not _KEY_PART.match(p) for p in parts):
        raise UsageError(
            f"--set {_show(option)}: {_show(key)} is not a question key",
            hint="keys are dotted question names such as scale_requirements.rps; "
            "see docs/questions.md",
        )
    check_string(raw_value, parts, "--set")
    if raw_value.strip() == "":
        return parts, ""
    try:
        _check_events(raw_value, "--set")
    except AnswersError as exc:
        problem = exc.problems[0]
        raise AnswersError(
            [FieldProblem(key=key, message=problem.message, source="--set")], hint=exc.hint
        ) from None
    except YAMLError:
        return parts, raw_value  # not YAML: take the text as it is
    yaml = YAML(typ="rt", pure=True)
    yaml.allow_duplicate_keys = False
    try:
        value = yaml.load(raw_value)
    except (YAMLError, ValueError, IndexError):  # "._", "+_" pass for numbers but are not
        return parts, raw_value
    if isinstance(value, dict | list):
        if _has_non_string_key(value):
            return parts, raw_value  # e.g. "{{ x }}": text, not a mapping keyed by a mapping
        _check_tree(value, parts, "--set", None)
        return parts, _plain(value)
    if isinstance(value, str | int | float | bool) or value is None:
        return parts, _plain(value)
    return parts, raw_value


def _has_non_string_key(node: Any) -> bool:
    if isinstance(node, dict):
        return any(not isinstance(k, str) or _has_non_string_key(v) for k, v in node.items())
    if isinstance(node, list):
        return any(_has_non_string_key(v) for v in node)
    return False


def apply_sets(answers: AnswerSet, options: list[str]) -> AnswerSet:
    """Lay ``--set`` options over ``answers``. Each key must be a question's (an unknown one is
    refused with the nearest key); a choice is matched ignoring case and stored as the choice's
    own spelling (a mistyped one is refused with the nearest choice); a list answer also takes
    ``a,b``, ``a, b`` and a single ``a``. Every problem is reported at once, before anything is
    asked."""
    problems: list[FieldProblem] = []
    for option in options:
        path, value = parse_set_option(option)
        try:
            value = normalize_set_value(path, value)
        except AnswersError as exc:
            problems.extend(exc.problems)
            continue
        answers.set(path, value, source="--set")
    if problems:
        raise AnswersError(problems, hint="see docs/questions.md for every key and its values")
    return answers


def normalize_set_value(path: Path_, value: Any) -> Any:
    """The value of ``--set KEY=VALUE`` as the question of ``KEY`` takes it; raises
    ``AnswersError`` for a key that is no question's and for a choice that is none of the
    question's, each with the nearest spelling."""
    from mlopsctl.questionnaire import keys, nearest, question

    key = ".".join(path)
    if key == "scale_requirements":  # the whole mapping at once: its keys are checked later
        return value
    q = question(key)
    if q is None:
        known = [*keys(), "scale_requirements"]
        guess = nearest(key, known)
        message = "unknown key" + (f"; did you mean {guess}?" if guess else "")
        if guess is None:
            message += "; the keys are " + ", ".join(known)
        raise AnswersError([FieldProblem(key=key, message=message, source="--set")])
    if q.kind == "multi":
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        elif isinstance(value, int | float | bool):
            value = [value]
        if isinstance(value, list):
            return [_choice(q, item) for item in value]
        return value
    if q.kind == "choice":
        return _choice(q, value)
    return value


def _choice(q: Question, value: Any) -> Any:
    """The choice of ``q`` that the text ``value`` names ignoring case; ``value`` unchanged when
    it is not text or the choices are numbers (the model says how to write those); a text naming
    no choice is refused with the nearest one."""
    if not isinstance(value, str):
        return value
    found = q.match(value)
    if found is not None:
        return found
    if not all(isinstance(c, str) for c in q.choices):
        return value
    raise AnswersError([FieldProblem(key=q.key, message=_not_a_choice(q, value), source="--set")])


def _not_a_choice(q: Question, value: Any) -> str:
    guess = q.suggest(value) if isinstance(value, str) else None
    allowed = ", ".join(repr(c) for c in q.choices)
    if guess is not None:
        return f"{_show(value)} is not allowed; did you mean {guess}? (one of {allowed})"
    return f"{_show(value)} is not allowed; use one of {allowed}"


def _defaults() -> dict[str, Any]:
    defaults = Requirements.model_construct().model_dump(exclude_none=True)
    return defaults


def missing_required(answers: AnswerSet) -> list[str]:
    return [key for key in required_questions() if not answers.has(key)]


def fill_defaults(answers: AnswerSet, project_name: str | None = None) -> AnswerSet:
    """Fill every unanswered top-level question with its default."""
    for key, value in _defaults().items():
        if not answers.has(key):
            if key == "project_name" and project_name:
                value = project_name
            answers.set((key,), value, source="default")
    return answers


def build_requirements(answers: AnswerSet, *, use_defaults: bool) -> Requirements:
    """Validate the collected answers. Without defaults, missing required answers are an error."""
    if not use_defaults:
        missing = missing_required(answers)
        if missing:
            raise MissingAnswersError(missing)
    try:
        return Requirements.model_validate(answers.data)
    except ValidationError as exc:
        raise AnswersError(_problems(exc, answers)) from None


def _problems(exc: ValidationError, answers: AnswerSet) -> list[FieldProblem]:
    problems: list[FieldProblem] = []
    schema_fields = Requirements.model_fields
    for err in exc.errors(include_url=False):
        loc = tuple(str(p) for p in err["loc"])
        key = ".".join(loc) if loc else "(answers)"
        source, line = answers.where(loc) if loc else (None, None)
        message = _message(err, loc, schema_fields, in_file=source not in (None, "--set"))
        if source == "default":
            source = None
        problems.append(FieldProblem(key=key, message=message, source=source, line=line))
    return sorted(problems, key=lambda p: (p.line is None, p.line or 0))  # in file order


def _message(
    err: Any, loc: tuple[str, ...], fields: Mapping[str, Any], *, in_file: bool = False
) -> str:
    from mlopsctl.questionnaire import keys, nearest, question

    kind = err["type"]
    msg = str(err["msg"])
    if kind == "extra_forbidden":
        parent = loc[:-1]
        if parent[:1] == ("measured",):  # no question's: name the section's own keys
            return f"unknown key; allowed keys here: {', '.join(_allowed_keys(parent))}"
        guess = nearest(".".join(loc), [*keys(), "scale_requirements"])
        if guess is not None:
            if in_file and "." in guess and guess.split(".")[:-1] != list(parent):
                *above, last = guess.split(".")
                return f"unknown key; did you mean {guess} ({last} under {'.'.join(above)})?"
            return f"unknown key; did you mean {guess}?"
        allowed = _allowed_keys(parent)
        return f"unknown key; allowed keys here: {', '.join(allowed)}"
    if kind == "literal_error":
        q = question(".".join(p for p in loc if not p.isdigit()))
        if q is not None:
            # Answers files are read as written (mlopsctl.yaml is the record validate checks):
            # the message names the spelling to write.
            return _not_a_choice(q, err.get("input"))
        expected = err.get("ctx", {}).get("expected", "")
        return f"{_show(err.get('input'))} is not allowed; use one of {expected}"
    if kind == "list_type" and loc and question(".".join(loc)) is not None:
        given = err.get("input")
        example = f"[{given}]" if isinstance(given, str) and given else "[a, b]"
        return f"a list is expected (got {_show(given)}); write {example}, or [] for none"
    if kind == "value_error":
        return msg.removeprefix("Value error, ")
    return f"{msg} (got {_show(err.get('input'))})"


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _allowed_keys(parent: tuple[str, ...]) -> list[str]:
    from mlopsctl.measured import MeasuredCapacity
    from mlopsctl.requirements import ScaleRequirements

    model: Any = Requirements
    if parent == ("scale_requirements",):
        model = ScaleRequirements
    elif parent == ("measured",):
        model = MeasuredCapacity
    return list(model.model_fields)
