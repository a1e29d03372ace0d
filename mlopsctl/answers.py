"""Collect answers from a file, ``--set`` overrides, defaults and prompts into ``Requirements``.

Errors name the key and, for values that came from a file, the file and line.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from mlopsctl.errors import AnswersError, FieldProblem, MissingAnswersError, UsageError
from mlopsctl.requirements import Requirements, required_questions

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
    from ruamel.yaml.comments import CommentedMap, CommentedSeq

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


def _record_lines(answers: AnswerSet, node: Any, prefix: Path_, source: str) -> None:
    from ruamel.yaml.comments import CommentedMap

    if not isinstance(node, CommentedMap):
        return
    for key, value in node.items():
        line = node.lc.key(key)[0] + 1 if node.lc.data and key in node.lc.data else None
        path = (*prefix, str(key))
        answers.sources[path] = (source, line)
        _record_lines(answers, value, path, source)


def load_answers_file(path: Path, answers: AnswerSet | None = None) -> AnswerSet:
    """Read a YAML answers file (YAML 1.2: ``no`` stays a string) into an ``AnswerSet``."""
    from ruamel.yaml import YAML
    from ruamel.yaml.error import MarkedYAMLError, YAMLError

    answers = answers or AnswerSet()
    source = str(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise UsageError(f"answers file {source} does not exist", hint="check the path") from None
    except OSError as exc:
        raise UsageError(f"cannot read answers file {source}: {exc.strerror}") from None
    if len(raw) > MAX_ANSWERS_FILE_BYTES:
        raise UsageError(
            f"answers file {source} is {len(raw)} bytes; answers files are at most "
            f"{MAX_ANSWERS_FILE_BYTES} bytes",
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UsageError(f"{source}: not UTF-8 text (byte {exc.start})") from None
    yaml = YAML(typ="rt", pure=True)
    yaml.allow_duplicate_keys = False
    try:
        doc = yaml.load(io.StringIO(text))
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = exc.problem or exc.context or "not valid YAML"
        raise AnswersError(
            [FieldProblem(key="(file)", message=str(problem).strip(), source=source, line=line)],
            hint="fix the YAML syntax; an answers file is a mapping of question keys to values",
        ) from None
    except YAMLError as exc:
        raise AnswersError(
            [FieldProblem(key="(file)", message=str(exc).strip(), source=source)]
        ) from None
    if doc is None:
        return answers
    if not isinstance(doc, Mapping):
        raise AnswersError(
            [FieldProblem(key="(file)", message="must be a mapping of keys to values", source=source)]
        )
    _record_lines(answers, doc, (), source)
    for key, value in _plain(doc).items():
        if not isinstance(key, str):
            raise AnswersError(
                [FieldProblem(key=repr(key), message="keys must be strings", source=source)]
            )
        answers.data[key] = value
    return answers


def parse_set_option(option: str) -> tuple[Path_, Any]:
    """Parse ``key.path=value``; the value is read as a YAML 1.2 flow scalar or collection."""
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    key, sep, raw_value = option.partition("=")
    key = key.strip()
    if not sep or not key:
        raise UsageError(
            f"--set {option!r}: expected KEY=VALUE",
            hint="for example --set scale_requirements.latency_ms=30",
        )
    parts = tuple(key.split("."))
    if any(not p for p in parts):
        raise UsageError(f"--set {option!r}: {key!r} is not a dotted key path")
    if raw_value.strip() == "":
        return parts, ""
    yaml = YAML(typ="safe", pure=True)
    try:
        value = yaml.load(raw_value)
    except YAMLError:
        value = raw_value  # not YAML: take the text as it is
    if isinstance(value, dict | list):
        return parts, _plain(value)
    if isinstance(value, str | int | float | bool) or value is None:
        return parts, value
    return parts, raw_value


def apply_sets(answers: AnswerSet, options: list[str]) -> AnswerSet:
    for option in options:
        path, value = parse_set_option(option)
        answers.set(path, value, source="--set")
    return answers


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
        message = _message(err, loc, schema_fields)
        if source == "default":
            source = None
        problems.append(FieldProblem(key=key, message=message, source=source, line=line))
    return problems


def _message(err: Any, loc: tuple[str, ...], fields: Mapping[str, Any]) -> str:
    kind = err["type"]
    msg = str(err["msg"])
    if kind == "extra_forbidden":
        parent = loc[:-1]
        allowed = _allowed_keys(parent)
        return f"unknown key; allowed keys here: {', '.join(allowed)}"
    if kind == "literal_error":
        expected = err.get("ctx", {}).get("expected", "")
        return f"{_show(err.get('input'))} is not allowed; use one of {expected}"
    if kind == "value_error":
        return msg.removeprefix("Value error, ")
    return f"{msg} (got {_show(err.get('input'))})"


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _allowed_keys(parent: tuple[str, ...]) -> list[str]:
    from mlopsctl.requirements import ScaleRequirements

    model: Any = Requirements
    if parent == ("scale_requirements",):
        model = ScaleRequirements
    return list(model.model_fields)
