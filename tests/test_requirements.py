from __future__ import annotations

import pytest
from pydantic import ValidationError

from mlopsctl.requirements import (
    PROJECT_NAME_MAX,
    Requirements,
    answers_json_schema,
    required_questions,
)


def test_defaults_form_valid_requirements() -> None:
    req = Requirements()
    assert req.model_type == "classification"
    assert req.scale_requirements.rps == 50


@pytest.mark.parametrize(
    "name",
    ["a", "fraud-detection", "m1", "a" * PROJECT_NAME_MAX, "x-1-y"],
)
def test_dns_1035_names_accepted(name: str) -> None:
    assert Requirements(project_name=name).project_name == name


@pytest.mark.parametrize(
    "name",
    ["", "1abc", "-abc", "abc-", "Abc", "a_b", "a.b", "a" * (PROJECT_NAME_MAX + 1), "ab c", "é"],
)
def test_non_dns_names_rejected_with_explanation(name: str) -> None:
    with pytest.raises(ValidationError) as exc:
        Requirements(project_name=name)
    assert "DNS-1035" in str(exc.value)


def test_scale_requires_at_least_one_figure() -> None:
    with pytest.raises(ValidationError, match="at least one of rps"):
        Requirements.model_validate({"scale_requirements": {}})


def test_unknown_keys_rejected() -> None:
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        Requirements.model_validate({"colour": "red"})
    with pytest.raises(ValidationError):
        Requirements.model_validate({"scale_requirements": {"rps": 1, "qps": 2}})


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("kubernetes", "yes"),
        ("gpu", "no"),
        ("team_size", "5"),
        ("maturity_level", 3),
        ("model_type", "Classification"),
        ("cloud", "ibm"),
        ("regulations", ["gdpr", "gdpr"]),
        ("existing_stack", ["mlflow", "airflow"]),
        ("model_size_gb", 0),
        ("team_size", 0),
    ],
)
def test_wrong_values_rejected(key: str, value: object) -> None:
    with pytest.raises(ValidationError) as exc:
        Requirements.model_validate({key: value})
    assert exc.value.errors()[0]["loc"][0] == key


def test_lists_are_normalised_sorted() -> None:
    req = Requirements(regulations=["hipaa", "gdpr"])
    assert req.regulations == ["gdpr", "hipaa"]


def test_required_questions_are_the_specification_inputs() -> None:
    assert required_questions() == [
        "project_name",
        "model_type",
        "framework",
        "deployment_target",
        "scale_requirements",
        "governance_level",
    ]


def test_every_field_has_help_and_example() -> None:
    schema = answers_json_schema()
    for name, prop in schema["properties"].items():
        assert prop.get("description"), name
        assert prop.get("examples"), name
    assert schema["additionalProperties"] is False
