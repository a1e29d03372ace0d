"""Questions read off the model, and how typed text is matched to their choices."""

from __future__ import annotations

import pytest

from mlopsctl.questionnaire import keys, nearest, question


def test_a_level_is_matched_by_its_value_not_its_position() -> None:
    q = question("maturity_level")
    assert q is not None
    assert q.choices == (0, 1, 2)
    assert q.match("2") == 2
    assert q.match(" 0 ") == 0
    assert q.match("3") is None


@pytest.mark.parametrize(("typed", "value"), [("SKLearn", "sklearn"), (" XGBoost ", "xgboost")])
def test_choices_match_ignoring_case(typed: str, value: str) -> None:
    q = question("framework")
    assert q is not None
    assert q.match(typed) == value


@pytest.mark.parametrize(
    ("typed", "suggested"),
    [
        ("rps", "scale_requirements.rps"),
        ("latncy_ms", "scale_requirements.latency_ms"),
        ("scale_requirements.rsp", "scale_requirements.rps"),
        ("frameworks", "framework"),
        ("zzz", None),
    ],
)
def test_nearest_key(typed: str, suggested: str | None) -> None:
    assert nearest(typed, keys()) == suggested


def test_a_typo_in_a_choice_gets_the_nearest_one() -> None:
    q = question("framework")
    assert q is not None
    assert q.suggest("xgbost") == "xgboost"
    assert q.suggest("cobol") is None


def test_unknown_key_has_no_question() -> None:
    assert question("rps") is None
