"""Answers predicates: mlopsctl.yaml against the answers schema."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path
from typing import Any

from mlopsctl.checks._engine import Context, Hit, predicate
from mlopsctl.checks._jsonschema import SchemaValidator
from mlopsctl.checks._model import CheckSpec
from mlopsctl.checks._validation import _errors, _message


@lru_cache(maxsize=1)
def _answers_validator() -> Any:
    # Shipped with the package (``make docs`` writes it; tests keep it current).
    path = Path(__file__).resolve().parent.parent / "schemas" / "answers.schema.json"
    schema = json.loads(path.read_text(encoding="utf-8"))
    return SchemaValidator(schema)


@predicate()
def answers_schema(ctx: Context, spec: CheckSpec) -> Iterable[Hit]:
    """Read mlopsctl.yaml with the loader ``init`` and ``update`` use, so that what this check
    accepts is what they accept, then match the answers against the answers schema."""
    f = ctx.repo.get("mlopsctl.yaml")
    if f is None or f.text is None or f.parse_error is not None:
        return
    from mlopsctl.answers import load_answers_file
    from mlopsctl.errors import AnswersError, UsageError

    # The loader reads a path: give it the text the other checks read, not the repository's
    # file again (which may have changed, or be a link out of the repository, since).
    with tempfile.TemporaryDirectory(prefix="mlopsctl-answers-") as scratch:
        copy = Path(scratch) / "mlopsctl.yaml"
        copy.write_bytes(f.text.encode("utf-8"))
        try:
            data = load_answers_file(copy).data
        except AnswersError as exc:
            for problem in exc.problems:
                where = "" if problem.key == "(file)" else f"{problem.key}: "
                yield Hit(f.rel, problem.line, f"{where}{problem.message}")
            return
        except UsageError as exc:
            yield Hit(f.rel, None, exc.message.replace(str(copy), f.rel))
            return
    for err in _errors(_answers_validator(), data):
        yield Hit(f.rel, f.line_of(0, tuple(err.absolute_path)), _message(err))
