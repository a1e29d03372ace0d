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
    assert "use one of 'sklearn', 'xgboost'" in message  # says what is allowed


def test_nested_error_line(tmp_path: Path) -> None:
    text = FULL.replace("latency_ms: 150", "latency_ms: fast")
    answers = load_answers_file(write(tmp_path, text))
    with pytest.raises(AnswersError) as exc:
        build_requirements(answers, use_defaults=False)
    assert ":7: scale_requirements.latency_ms:" in exc.value.message


def test_unknown_key_lists_allowed_keys(tmp_path: Path) -> None:
    answers = load_answers_file(write(tmp_path, FULL + "zzzz: red\n"))
    with pytest.raises(AnswersError) as exc:
        build_requirements(answers, use_defaults=False)
    assert ":9: zzzz: unknown key; allowed keys here: project_name" in exc.value.message


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


# --- --set as users type it: lists, case, typos ---------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        "mlflow,kubeflow",
        "mlflow, kubeflow",
        "[mlflow,kubeflow]",
        "[mlflow, kubeflow]",
        "MLflow,Kubeflow",
    ],
)
def test_set_takes_a_list_the_ways_users_write_it(raw: str) -> None:
    answers = apply_sets(AnswerSet(), [f"existing_stack={raw}"])
    assert answers.data["existing_stack"] == ["mlflow", "kubeflow"]
    req = build_requirements(fill_defaults(answers), use_defaults=True)
    assert req.existing_stack == ["kubeflow", "mlflow"]


def test_set_single_value_for_a_list_is_a_list_of_one() -> None:
    answers = apply_sets(AnswerSet(), ["regulations=gdpr", "existing_stack="])
    req = build_requirements(fill_defaults(answers), use_defaults=True)
    assert req.regulations == ["gdpr"]
    assert req.existing_stack == []


def test_set_comma_in_a_text_answer_stays_text() -> None:
    answers = apply_sets(AnswerSet(), ["description=scores, ranks, and flags"])
    req = build_requirements(fill_defaults(answers), use_defaults=True)
    assert req.description == "scores, ranks, and flags"


@pytest.mark.parametrize(
    ("option", "key", "value"),
    [
        ("framework=SKLearn", "framework", "sklearn"),
        ("deployment_target=Batch", "deployment_target", "batch"),
        ("ci_platform= GitLab-CI ", "ci_platform", "gitlab-ci"),
        ("regulations=PCI-DSS", "regulations", ["pci-dss"]),
    ],
)
def test_set_matches_choices_ignoring_case(option: str, key: str, value: object) -> None:
    answers = apply_sets(AnswerSet(), [option])
    assert answers.data[key] == value
    req = build_requirements(fill_defaults(answers), use_defaults=True)
    assert getattr(req, key) == value


@pytest.mark.parametrize(
    ("option", "expected"),
    [
        ("rps=100", "--set: rps: unknown key; did you mean scale_requirements.rps?"),
        ("frameworks=sklearn", "--set: frameworks: unknown key; did you mean framework?"),
        (
            "scale_requirements.rsp=3",
            "--set: scale_requirements.rsp: unknown key; did you mean scale_requirements.rps?",
        ),
        ("framework=xgbost", "--set: framework: 'xgbost' is not allowed; did you mean xgboost?"),
        ("regulations=gdpr,hipa", "--set: regulations: 'hipa' is not allowed; did you mean hipaa?"),
    ],
)
def test_set_typo_suggests_the_nearest_key_or_choice(option: str, expected: str) -> None:
    with pytest.raises(AnswersError) as exc:
        apply_sets(AnswerSet(), ["project_name=x", option])
    assert expected in exc.value.message


def test_set_reports_every_problem_at_once() -> None:
    with pytest.raises(AnswersError) as exc:
        apply_sets(AnswerSet(), ["rps=1", "framework=xgbost"])
    assert [p.key for p in exc.value.problems] == ["rps", "framework"]


def test_set_unknown_key_without_a_near_one_lists_the_keys() -> None:
    with pytest.raises(AnswersError) as exc:
        apply_sets(AnswerSet(), ["zzzz=1"])
    assert "unknown key; the keys are project_name, " in exc.value.message


def test_answers_file_typos_suggest_with_file_and_line(tmp_path: Path) -> None:
    text = FULL.replace("framework: xgboost", "framework: XGBoost") + (
        "frameworks: sklearn\nrps: 100\nregulations: gdpr\n"
    )
    answers = load_answers_file(write(tmp_path, text))
    with pytest.raises(AnswersError) as exc:
        build_requirements(answers, use_defaults=False)
    lines = exc.value.message.splitlines()[1:]
    path = tmp_path / "answers.yaml"
    # answers files are read as written (no case folding), and the message names the spelling
    assert lines == [
        f"  {path}:3: framework: 'XGBoost' is not allowed; did you mean xgboost? (one of "
        "'sklearn', 'xgboost', 'lightgbm', 'pytorch', 'tensorflow', 'keras', 'onnx', "
        "'huggingface', 'custom')",
        f"  {path}:9: frameworks: unknown key; did you mean framework?",
        f"  {path}:10: rps: unknown key; did you mean scale_requirements.rps (rps under "
        "scale_requirements)?",
        f"  {path}:11: regulations: a list is expected (got 'gdpr'); write [gdpr], or [] for none",
    ]
