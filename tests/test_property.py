"""Every valid answer set renders, and every generated YAML and JSON file parses.

Answer sets are drawn from the questionnaire itself (choices, ranges and optional figures come
from ``Requirements``), so a new question is covered as soon as it exists; a new free-text
question fails ``test_every_question_has_a_strategy`` until it gets a strategy here.
Every generated repository also passes ``mlopsctl validate``: each on its own, and the checks
that run other programs (promtool, the kfp compiler) over batches of repositories.
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


def _program_checks() -> frozenset[str]:
    """Checks that run another program (promtool, the kfp compiler): they run once per batch of
    repositories (``validate`` over the batch's directory), not once per repository."""
    from mlopsctl.checks import catalog
    from mlopsctl.checks._engine import predicates

    registered = predicates()
    return frozenset(
        c.id
        for c in catalog()
        if registered[c.predicate].slow and c.predicate != "generated_in_sync"
    )


def validate_finds_nothing(root: Path, req: Requirements) -> None:
    """``mlopsctl validate`` (every check but those running other programs) finds nothing."""
    from mlopsctl.checks import validate

    report = validate(root, ignore=_program_checks())
    assert report.ok, [(f.check, f.path, f.line, f.message) for f in report.findings]
    skipped = [n for n in report.notes if "skipped" in n.message]
    assert skipped == [], skipped


def programs_find_nothing(batch: Path) -> None:
    """The checks that run other programs, over a directory of generated repositories: one
    kfp compilation of every pipeline, one ``promtool check rules`` of every rule file and
    ``promtool test rules`` of every repository's alert tests."""
    from mlopsctl.checks import validate

    with pytest.MonkeyPatch.context() as env:
        env.setenv("MLOPSCTL_NO_CACHE", "1")  # promtool and kfp run: no outcome from a cache
        report = validate(batch, select=_program_checks())
    assert report.ok, [(f.check, f.path, f.line, f.message) for f in report.findings]
    assert report.notes == []  # promtool and kfp are installed for the tests


OUTPUT_CHECKS: list[Callable[[Path, Requirements], None]] = [
    parse_every_yaml_and_json,
    answers_read_back,
    no_template_markers_left,
    validate_finds_nothing,
]


# ---- The properties ----

BATCH = 25  # answer sets per hypothesis example
_serial = count()


def _render(answers: dict[str, Any], out: Path) -> bool:
    """Render one answer set into ``out`` and check it; False when an abort rule refuses it."""
    req = load_requirements(answers)
    try:
        design = evaluate(req)
    except RuleAbort:
        return False  # an abort rule refuses the combination; nothing to render
    generate(design, out)
    for check in OUTPUT_CHECKS:
        check(out, req)
    return True


def _render_batch(data: st.DataObject, base: Path) -> int:
    """BATCH valid answer sets, each rendered and checked, then the program checks over all;
    returns how many answer sets passed."""
    batch = base / f"b{next(_serial)}"
    try:
        rendered = 0
        while rendered < BATCH:
            if _render(data.draw(answer_sets()), batch / f"p{rendered}"):
                rendered += 1
        programs_find_nothing(batch)
        return rendered
    finally:
        shutil.rmtree(batch, ignore_errors=True)


HALF = 500  # two halves of the 1,000 answer sets, so that two workers share them


def _half(base: Path) -> None:
    """HALF answer sets (HALF / BATCH hypothesis examples) render and pass validate."""
    passed: list[int] = []

    @settings(
        max_examples=HALF // BATCH,
        deadline=None,
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.filter_too_much,
            HealthCheck.data_too_large,
        ],
    )
    @given(data=st.data())
    def batches(data: st.DataObject) -> None:
        passed.append(_render_batch(data, base))

    batches()
    assert sum(passed) >= HALF, passed


@pytest.mark.slow
@pytest.mark.long
def test_valid_answer_sets_render_and_validate_first_half(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    _half(tmp_path_factory.getbasetemp())


@pytest.mark.slow
@pytest.mark.long
def test_valid_answer_sets_render_and_validate_second_half(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    _half(tmp_path_factory.getbasetemp())


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
    out = tmp_path_factory.getbasetemp() / f"f{next(_serial)}"
    try:
        assume(_render(answers, out))
    finally:
        shutil.rmtree(out, ignore_errors=True)
