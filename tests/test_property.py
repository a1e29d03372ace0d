"""Every valid answer set renders, and every generated YAML and JSON file parses.

Answer sets are drawn from the questionnaire itself (choices, ranges and optional figures come
from ``Requirements``), so a new question is covered as soon as it exists; a new free-text
question fails ``test_every_question_has_a_strategy`` until it gets a strategy here.
Every generated repository also passes ``mlopsctl validate`` (its checks that run other
programs, on a sample of answer sets).
"""

from __future__ import annotations

import json
import re
import shutil
import typing
from collections.abc import Callable
from itertools import count
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from mlopsctl.api import load_requirements
from mlopsctl.errors import RuleAbort
from mlopsctl.questionnaire import Question, questions
from mlopsctl.render import generate, render_to
from mlopsctl.requirements import (
    DESCRIPTION_MAX,
    PROJECT_NAME_MAX,
    Requirements,
    ScaleRequirements,
)
from mlopsctl.rules.engine import evaluate
from tests.test_determinism import _tree

_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

# ---- Answer sets ----

# Free-text questions need a strategy of their own; everything else is derived.
TEXT_STRATEGIES: dict[str, st.SearchStrategy[str]] = {
    "project_name": st.from_regex(
        rf"\A[a-z]([-a-z0-9]{{0,{PROJECT_NAME_MAX - 2}}}[a-z0-9])?\Z", fullmatch=True
    ),
    "description": st.text(
        alphabet=st.characters(
            exclude_categories=("Cc", "Cs", "Zl", "Zp"),
            exclude_characters="\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069",
        ),
        max_size=DESCRIPTION_MAX,
    ),
}


def _field_info(key: str) -> Any:
    if key.startswith("scale_requirements."):
        return ScaleRequirements.model_fields[key.split(".", 1)[1]]
    return Requirements.model_fields[key]


def _bounds(key: str) -> dict[str, Any]:
    """min/max from the field's constraints (``Annotated`` inside ``Optional`` included)."""
    info = _field_info(key)
    metadata = list(info.metadata)
    for arg in typing.get_args(info.annotation):
        for inner in typing.get_args(arg)[1:]:
            metadata += list(getattr(inner, "metadata", []))
    out: dict[str, Any] = {}
    for item in metadata:
        for attr, bound, exclusive in (
            ("ge", "min_value", False),
            ("gt", "min_value", True),
            ("le", "max_value", False),
            ("lt", "max_value", True),
        ):
            if hasattr(item, attr):
                out[bound] = getattr(item, attr)
                if exclusive:
                    out["exclude_" + bound.split("_")[0]] = True
    return out


def strategy_for(q: Question) -> st.SearchStrategy[Any]:
    if q.kind == "choice":
        return st.sampled_from(q.choices)
    if q.kind == "multi":
        return st.lists(st.sampled_from(q.choices), unique=True, max_size=len(q.choices))
    if q.kind == "bool":
        return st.booleans()
    bounds = _bounds(q.key)
    if q.kind == "int":
        return st.integers(bounds.get("min_value"), bounds.get("max_value"))
    if q.kind == "float":
        # Mostly realistic magnitudes, sometimes the extremes the model allows.
        return st.one_of(
            st.floats(allow_nan=False, allow_infinity=False, **bounds),
            st.floats(**{**bounds, "max_value": min(bounds.get("max_value", 1e4), 1e4)}),
        ).filter(lambda v: v == v)
    return TEXT_STRATEGIES[q.key]


@st.composite
def answer_sets(draw: st.DrawFn) -> dict[str, Any]:
    answers: dict[str, Any] = {}
    scale: dict[str, Any] = {}
    for q in questions():
        if q.key.startswith("scale_requirements."):
            if draw(st.booleans()):
                scale[q.key.split(".", 1)[1]] = draw(strategy_for(q))
            continue
        if q.optional and draw(st.booleans()):
            continue
        answers[q.key] = draw(strategy_for(q))
    if not scale:
        q = next(q for q in questions() if q.key == "scale_requirements.rps")
        scale["rps"] = draw(strategy_for(q))
    answers["scale_requirements"] = scale
    return answers


def test_every_question_has_a_strategy() -> None:
    for q in questions():
        if q.kind == "str":
            assert q.key in TEXT_STRATEGIES, f"add a strategy for the free-text question {q.key}"


# ---- Output checks ----


def parse_every_yaml_and_json(root: Path, req: Requirements) -> None:
    seen = 0
    for path in root.rglob("*"):
        if not path.is_file():
            continue
        text = path.read_text(encoding="utf-8")  # every file is UTF-8
        if path.suffix in {".yaml", ".yml"}:
            list(yaml.load_all(text, Loader=_Loader))
            seen += 1
        elif path.suffix == ".json":
            json.loads(text)
            seen += 1
    assert seen >= 3


def answers_read_back(root: Path, req: Requirements) -> None:
    saved = load_requirements(root / "mlopsctl.yaml")
    assert saved == req


_MARKERS = re.compile(r"{{|}}|{%|%}")


def no_template_markers_left(root: Path, req: Requirements) -> None:
    """Outside the files whose own syntax uses them, no Jinja markers survive rendering."""
    for path in root.rglob("*"):
        if path.is_file() and path.suffix in {".py", ".txt", ".toml", ".cfg"}:
            assert not _MARKERS.search(path.read_text(encoding="utf-8")), path


def _external_checks() -> frozenset[str]:
    """Checks that run another program (promtool, the kfp compiler, a fresh generation for the
    in-sync check): about a second each per repository, so they run on a sample of answer sets
    (``test_full_validate_on_a_sample``) rather than on all of them."""
    from mlopsctl.checks import catalog
    from mlopsctl.checks._engine import predicates

    registered = predicates()
    return frozenset(c.id for c in catalog() if registered[c.predicate].slow)


def validate_finds_nothing(root: Path, req: Requirements) -> None:
    """``mlopsctl validate`` (every check but the external programs) reports no finding."""
    from mlopsctl.checks import validate

    report = validate(root, ignore=_external_checks())
    assert report.ok, [(f.check, f.path, f.line, f.message) for f in report.findings]


def full_validate_finds_nothing(root: Path, req: Requirements) -> None:
    """``mlopsctl validate`` with every check, external programs included."""
    from mlopsctl.checks import validate

    report = validate(root)
    assert report.ok, [(f.check, f.path, f.line, f.message) for f in report.findings]
    skipped = [n for n in report.notes if n.check in _external_checks()]
    assert skipped == [], skipped  # promtool and kfp are installed for the tests


OUTPUT_CHECKS: list[Callable[[Path, Requirements], None]] = [
    parse_every_yaml_and_json,
    answers_read_back,
    no_template_markers_left,
    validate_finds_nothing,
]


# ---- The properties ----

_SETTINGS = settings(
    max_examples=500,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
_serial = count()


def _render_and_check(
    answers: dict[str, Any],
    base: Path,
    checks: list[Callable[[Path, Requirements], None]] = OUTPUT_CHECKS,
) -> None:
    req = load_requirements(answers)
    try:
        design = evaluate(req)
    except RuleAbort:
        assume(False)  # an abort rule refuses the combination; nothing to render
        raise
    out = base / f"p{next(_serial)}"
    try:
        generate(design, out)
        for check in checks:
            check(out, req)
    finally:
        shutil.rmtree(out, ignore_errors=True)


# Two halves of 1,000 examples, so that a two-worker run takes them side by side.
@pytest.mark.slow
@_SETTINGS
@given(answers=answer_sets())
def test_valid_answer_sets_render_and_parse_first_half(
    answers: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> None:
    _render_and_check(answers, tmp_path_factory.getbasetemp())


@pytest.mark.slow
@_SETTINGS
@given(answers=answer_sets())
def test_valid_answer_sets_render_and_parse_second_half(
    answers: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> None:
    _render_and_check(answers, tmp_path_factory.getbasetemp())


@pytest.mark.slow
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(answers=answer_sets())
def test_full_validate_on_a_sample(
    answers: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> None:
    _render_and_check(answers, tmp_path_factory.getbasetemp(), [full_validate_finds_nothing])


@pytest.mark.slow
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(answers=answer_sets())
def test_copier_itself_renders_the_same_trees(
    answers: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> None:
    req = load_requirements(answers)
    try:
        design = evaluate(req)
    except RuleAbort:
        assume(False)
        raise
    base = tmp_path_factory.getbasetemp() / f"c{next(_serial)}"
    try:
        generate(design, base / "fast")
        render_to(design, base / "copier")
        assert _tree(base / "fast") == _tree(base / "copier")
    finally:
        shutil.rmtree(base, ignore_errors=True)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(answers=answer_sets())
def test_a_few_answer_sets_in_the_fast_loop(answers: dict[str, Any], tmp_path_factory: Any) -> None:
    _render_and_check(answers, tmp_path_factory.getbasetemp())
