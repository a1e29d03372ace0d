"""Checking a partial answer set: each answer on its own, and the rules its settled answers
already decide, evaluated as the engine evaluates them."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlopsctl import _partial, _resume
from mlopsctl.errors import RuleAbort
from mlopsctl.questionnaire import question, questions
from mlopsctl.requirements import Requirements
from mlopsctl.rules.engine import evaluate
from mlopsctl.rules.model import load_catalog
from tests.test_rules_catalog import requirements_strategy


@pytest.mark.parametrize(
    ("key", "value", "reason"),
    [
        ("scale_requirements.rps", -5.0, "greater than or equal to 0"),
        ("scale_requirements.latency_ms", math.nan, "not a finite number"),
        ("scale_requirements.latency_ms", math.inf, "not a finite number"),
        ("model_size_gb", 0.0, "greater than 0"),
        ("team_size", -1, "greater than or equal to 1"),
        ("project_name", "Bad_Name", "not a valid name"),
        ("framework", "tensorflowx", "not allowed"),
        ("maturity_level", True, "not a level"),
        ("existing_stack", ["mlflow", "mlflow"], "list each value once"),
        ("description", "two\nlines", "control character"),
    ],
)
def test_a_bad_value_is_refused_with_its_reason(key: str, value: Any, reason: str) -> None:
    refusal = _partial.check_value(key, value)
    assert refusal is not None
    assert reason in refusal.message


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("scale_requirements.rps", 0.0),
        ("scale_requirements.concurrent_users", 10),
        ("model_size_gb", 0.5),
        ("maturity_level", 2),
        ("project_name", "fraud-detection"),
        ("existing_stack", ["mlflow", "wandb"]),
    ],
)
def test_a_good_value_passes(key: str, value: Any) -> None:
    assert _partial.check_value(key, value) is None


def test_an_abort_rule_fires_once_its_inputs_are_settled() -> None:
    data: dict[str, Any] = {"framework": "xgboost", "model_server": "torchserve"}
    assert _partial.check_settled(data, involving="model_server") is None  # target not known
    data["deployment_target"] = "online"
    refusal = _partial.check_settled(data, involving="deployment_target")
    assert refusal is not None and refusal.rule == "ABT001"
    assert refusal.hint and "model_server" in refusal.hint
    # checking an answer that the rule does not read leaves it to its own question
    assert _partial.check_settled(data, involving="team_size") is None


def test_an_unsettled_input_is_never_taken_at_its_default() -> None:
    # ABT003 fires for gpu: false, the default; gpu is not answered yet
    data = {
        "scale_requirements": {"latency_ms": 10.0},
        "model_size_gb": 2.0,
        "deployment_target": "online",
    }
    assert _partial.check_settled(data) is None
    refusal = _partial.check_settled({**data, "gpu": False})
    assert refusal is not None and refusal.rule == "ABT003"


def test_a_skipped_input_is_settled() -> None:
    # a batch target is not asked for its latency: ABT003 cannot fire, and the rest is known
    data = {"model_size_gb": 2.0, "deployment_target": "batch", "gpu": False}
    skipped = ["scale_requirements.latency_ms"]
    assert _partial.check_settled(data, skipped) is None


def test_a_batch_target_needs_its_one_figure() -> None:
    skipped = [f"scale_requirements.{k}" for k in ("rps", "latency_ms", "concurrent_users")]
    data = {"deployment_target": "batch"}
    blank = ["scale_requirements.data_volume_gb"]
    refusal = _partial.check_settled(data, skipped, blank=blank)
    assert refusal is not None and "data_volume_gb" in refusal.message
    assert _partial.scale_fallback(data, skipped, blank) is None
    # served traffic takes the default figure instead
    all_blank = [*skipped, *blank]
    assert _partial.check_settled({"deployment_target": "online"}, blank=all_blank) is None
    assert _partial.scale_fallback({}, [], all_blank) == {"rps": 50.0}


def _full(answers: dict[str, Any]) -> dict[str, Any]:
    return Requirements.model_validate(answers).model_dump(exclude_none=True)


def _blank(full: dict[str, Any]) -> set[str]:
    """The scale figures a complete answer set leaves blank (ABT009 reads the latency target
    then: the deployment target's default)."""
    given = full.get("scale_requirements", {})
    return {key for key in _partial.SCALE_KEYS if key.split(".")[1] not in given}


def _aborts(answers: dict[str, Any]) -> set[str]:
    try:
        evaluate(Requirements.model_validate(answers))
    except RuleAbort as exc:
        return {exc.rule_id} | {
            line.split()[1] for line in exc.message.splitlines()[1:] if "also" in line
        }
    return set()


ABORT_EXAMPLES = [
    (rule.id, example)
    for rule in load_catalog()
    if rule.then.abort
    for kind in ("fires", "does_not_fire")
    for example in getattr(rule.examples, kind)
]


@pytest.mark.parametrize(("rule_id", "example"), ABORT_EXAMPLES)
def test_all_answers_settled_refuse_exactly_what_the_engine_aborts(
    rule_id: str, example: dict[str, Any]
) -> None:
    base = Requirements.model_construct().model_dump()
    answers = _full({**base, **example})
    refusal = _partial.check_settled(answers, blank=_blank(answers))
    aborts = _aborts(answers)
    assert (refusal is not None) is bool(aborts)
    if refusal is not None:
        assert refusal.rule in aborts


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(requirements_strategy, st.data())
def test_a_partial_answer_set_is_refused_only_when_the_answers_abort(
    answers: dict[str, Any], data: st.DataObject
) -> None:
    full = _full(answers)
    keys = data.draw(st.lists(st.sampled_from(sorted(full)), unique=True))
    partial = {k: full[k] for k in keys}
    refusal = _partial.check_settled(partial)
    if refusal is not None:
        assert refusal.rule in _aborts(full)
    assert (_partial.check_settled(full, blank=_blank(full)) is not None) is bool(_aborts(full))


def test_applicability_lives_on_the_questions() -> None:
    batch = {"deployment_target": "batch"}
    skipped = {q.key for q in questions() if q.skip_reason(batch)}
    assert skipped == {
        "model_server",
        "scale_requirements.rps",
        "scale_requirements.latency_ms",
        "scale_requirements.concurrent_users",
        "gpu",
    }
    for target in ("edge", "embedded"):
        assert {q.key for q in questions() if q.skip_reason({"deployment_target": target})} == {
            "model_server"
        }
    for target in ("online", "hybrid"):
        assert not [q for q in questions() if q.skip_reason({"deployment_target": target})]
    keys = [q.key for q in questions()]
    assert keys.index("deployment_target") < keys.index("model_server")
    assert keys.index("deployment_target") < keys.index("gpu")
    level = question("maturity_level")
    assert level is not None and level.label(2) == "CI/CD for pipelines"


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("MLOPSCTL_NO_CACHE", raising=False)
    return tmp_path / "cache" / "mlopsctl" / _resume.CACHE_NAME


def test_saved_answers_are_private_and_read_back(tmp_path: Path, cache: Path) -> None:
    destination = tmp_path / "proj"
    assert _resume.save(destination, {"project_name": "proj", "team_size": 3})
    (path,) = cache.iterdir()
    assert path.stat().st_mode & 0o777 == 0o600
    assert cache.stat().st_mode & 0o777 == 0o700
    assert not destination.exists()
    saved, note = _resume.load(destination)
    assert note is None and saved is not None
    assert saved.answers == {"project_name": "proj", "team_size": 3}
    # another destination has none; the same one by another path has them
    assert _resume.load(tmp_path / "other") == (None, None)
    assert _resume.load(tmp_path / "other" / ".." / "proj")[0] == saved
    _resume.discard(destination)
    assert _resume.load(destination) == (None, None)


@pytest.mark.parametrize(
    "document",
    [
        {"format": 2, "answers": {}},
        {"format": 1, "destination": "DEST", "saved_at": "yesterday", "answers": {}},
        {"format": 1, "destination": "DEST", "saved_at": "2026-01-01T00:00:00", "answers": []},
        {
            "format": 1,
            "destination": "DEST",
            "saved_at": "2026-01-01T00:00:00",
            "answers": {"rm -rf": 1},
        },
        {
            "format": 1,
            "destination": "DEST",
            "saved_at": "2026-01-01T00:00:00",
            "answers": {"team_size": -4},
        },
    ],
)
def test_tampered_saved_answers_are_ignored_with_a_reason(
    tmp_path: Path, cache: Path, document: dict[str, Any]
) -> None:
    destination = tmp_path / "proj"
    assert _resume.save(destination, {"project_name": "proj"})
    (path,) = cache.iterdir()
    text = json.dumps(document).replace("DEST", str(destination))
    path.write_text(text)
    saved, note = _resume.load(destination)
    assert saved is None
    assert note is not None and str(path) in note


def test_a_saved_answers_file_others_can_read_or_a_symlink_is_ignored(
    tmp_path: Path, cache: Path
) -> None:
    destination = tmp_path / "proj"
    assert _resume.save(destination, {"project_name": "proj"})
    (path,) = cache.iterdir()
    path.chmod(0o644)
    saved, note = _resume.load(destination)
    assert saved is None and note is not None and "private" in note
    elsewhere = tmp_path / "planted.json"
    elsewhere.write_text(path.read_text())
    path.unlink()
    os.symlink(elsewhere, path)
    saved, note = _resume.load(destination)
    assert saved is None and note is not None


def test_no_cache_keeps_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("MLOPSCTL_NO_CACHE", "1")
    assert not _resume.save(tmp_path / "proj", {"project_name": "proj"})
    assert _resume.load(tmp_path / "proj") == (None, None)
