from __future__ import annotations

from pathlib import Path

import pytest

from mlopsctl.answers import (
    AnswerSet,
    apply_sets,
    build_requirements,
    fill_defaults,
    load_answers_file,
    parse_set_option,
)
from mlopsctl.errors import AnswersError, MissingAnswersError, UsageError

FULL = """\
project_name: fraud
model_type: classification
framework: xgboost
deployment_target: online
scale_requirements:
  rps: 200
  latency_ms: 150
governance_level: production
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "answers.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_file_answers_validate(tmp_path: Path) -> None:
    answers = load_answers_file(write(tmp_path, FULL))
    req = build_requirements(answers, use_defaults=False)
    assert req.framework == "xgboost"
    assert req.scale_requirements.latency_ms == 150
    assert req.team_size == 5  # optional questions take their default


def test_set_overrides_file_with_dotted_paths(tmp_path: Path) -> None:
    answers = load_answers_file(write(tmp_path, FULL))
    apply_sets(
        answers, ["scale_requirements.latency_ms=30", "regulations=[gdpr, hipaa]", "gpu=true"]
    )
    req = build_requirements(answers, use_defaults=False)
    assert req.scale_requirements.latency_ms == 30
    assert req.scale_requirements.rps == 200  # sibling kept
    assert req.regulations == ["gdpr", "hipaa"]
    assert req.gpu is True


def test_error_names_file_line_and_key(tmp_path: Path) -> None:
    text = FULL.replace("framework: xgboost", "framework: scikit")
    answers = load_answers_file(write(tmp_path, text))
    with pytest.raises(AnswersError) as exc:
        build_requirements(answers, use_defaults=False)
    message = exc.value.message
    assert f"{tmp_path / 'answers.yaml'}:3: framework:" in message
    assert "'sklearn'" in message  # says what is allowed


def test_nested_error_line(tmp_path: Path) -> None:
    text = FULL.replace("latency_ms: 150", "latency_ms: fast")
    answers = load_answers_file(write(tmp_path, text))
    with pytest.raises(AnswersError) as exc:
        build_requirements(answers, use_defaults=False)
    assert ":7: scale_requirements.latency_ms:" in exc.value.message


def test_unknown_key_lists_allowed_keys(tmp_path: Path) -> None:
    answers = load_answers_file(write(tmp_path, FULL + "colour: red\n"))
    with pytest.raises(AnswersError) as exc:
        build_requirements(answers, use_defaults=False)
    assert ":9: colour: unknown key; allowed keys here: project_name" in exc.value.message


def test_yaml_12_keeps_no_a_string(tmp_path: Path) -> None:
    answers = load_answers_file(write(tmp_path, FULL + "kubernetes: no\n"))
    with pytest.raises(AnswersError) as exc:
        build_requirements(answers, use_defaults=False)
    assert "kubernetes" in exc.value.message


def test_duplicate_keys_rejected(tmp_path: Path) -> None:
    with pytest.raises(AnswersError) as exc:
        load_answers_file(write(tmp_path, FULL + "framework: sklearn\n"))
    assert "answers.yaml:9" in exc.value.message


def test_syntax_error_has_line(tmp_path: Path) -> None:
    with pytest.raises(AnswersError) as exc:
        load_answers_file(write(tmp_path, "project_name: [unclosed\nmodel_type: x\n"))
    assert "answers.yaml:" in exc.value.message


def test_top_level_must_be_mapping(tmp_path: Path) -> None:
    with pytest.raises(AnswersError, match="mapping"):
        load_answers_file(write(tmp_path, "- a\n- b\n"))


def test_missing_file_is_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="does not exist"):
        load_answers_file(tmp_path / "nope.yaml")


def test_missing_required_listed() -> None:
    answers = AnswerSet()
    apply_sets(answers, ["project_name=x", "framework=sklearn"])
    with pytest.raises(MissingAnswersError) as exc:
        build_requirements(answers, use_defaults=False)
    assert exc.value.missing == [
        "model_type",
        "deployment_target",
        "scale_requirements",
        "governance_level",
    ]


def test_defaults_fill_only_unanswered() -> None:
    answers = AnswerSet()
    apply_sets(answers, ["framework=lightgbm"])
    fill_defaults(answers, project_name="from-dir")
    req = build_requirements(answers, use_defaults=True)
    assert req.framework == "lightgbm"
    assert req.project_name == "from-dir"


@pytest.mark.parametrize(
    ("option", "path", "value"),
    [
        ("a=1", ("a",), 1),
        ("a.b=2.5", ("a", "b"), 2.5),
        ("a=no", ("a",), "no"),  # YAML 1.2: stays a string
        ("a=true", ("a",), True),
        ("a=[x, y]", ("a",), ["x", "y"]),
        ("a=x=y", ("a",), "x=y"),
        ("a=", ("a",), ""),
    ],
)
def test_parse_set_option(option: str, path: tuple[str, ...], value: object) -> None:
    assert parse_set_option(option) == (path, value)


@pytest.mark.parametrize("option", ["noequals", "=1", "a..b=1", ".a=1"])
def test_bad_set_option(option: str) -> None:
    with pytest.raises(UsageError):
        parse_set_option(option)
