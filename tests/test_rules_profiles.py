"""The profile table (tests/data/profiles.yaml): expected stack, tier, thresholds, sizing and
aborts for requirement profiles on both sides of every threshold, and every existing stack."""

from __future__ import annotations

import json
import typing
from functools import lru_cache
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from mlopsctl.api import assess, load_requirements
from mlopsctl.errors import RuleAbort
from mlopsctl.requirements import ExistingTool

DATA = Path(__file__).parent / "data" / "profiles.yaml"
SCHEMA = Path(__file__).parents[1] / "docs" / "schemas" / "design.schema.json"
PROFILES: list[dict[str, Any]] = yaml.safe_load(DATA.read_text(encoding="utf-8"))


@lru_cache(maxsize=1)
def validator() -> jsonschema.protocols.Validator:
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def test_table_is_large_and_unique() -> None:
    ids = [p["id"] for p in PROFILES]
    assert len(ids) >= 40
    assert len(set(ids)) == len(ids)


def test_table_covers_every_existing_stack_value() -> None:
    listed = {tool for p in PROFILES for tool in p["answers"].get("existing_stack", [])}
    assert listed == set(typing.get_args(ExistingTool))


@pytest.mark.parametrize(
    ("key", "values"),
    [
        ("latency_ms", {49, 50, 51, 499, 500}),
        ("rps", {1000, 1001}),
    ],
)
def test_table_covers_both_sides_of_scale_thresholds(key: str, values: set[float]) -> None:
    seen = {p["answers"].get("scale_requirements", {}).get(key) for p in PROFILES}
    assert values <= seen


def test_table_covers_model_size_and_team_size_edges() -> None:
    assert {1.0, 1.01} <= {p["answers"].get("model_size_gb") for p in PROFILES}
    assert {4, 5} <= {p["answers"].get("team_size") for p in PROFILES}


@pytest.mark.parametrize("profile", PROFILES, ids=[p["id"] for p in PROFILES])
def test_profile(profile: dict[str, Any]) -> None:
    req = load_requirements(profile["answers"], defaults=True)
    if "abort" in profile:
        with pytest.raises(RuleAbort) as info:
            assess(req)
        assert info.value.rule_id == profile["abort"]
        assert info.value.hint, "an abort says what to change"
        return
    # no profile may produce a conflict; tier_floor is the command's (design T2, lifecycle T3)
    design = assess(req, strict=True, tier_floor=profile.get("tier_floor"))
    assert design.tier_floor == profile.get("tier_floor")
    assert design.conflicts == []
    validator().validate(design.json_dict())
    expect = profile["expect"]
    if "tier" in expect:
        assert design.tier == expect["tier"]
    for key, value in expect.get("stack", {}).items():
        assert getattr(design.stack, key) == value, key
    for key, value in expect.get("thresholds", {}).items():
        assert getattr(design.thresholds, key) == pytest.approx(value), key
    for key, value in expect.get("sizing", {}).items():
        assert getattr(design.sizing, key) == value, key
    for item in expect.get("governance", []):
        assert item in design.governance
    warned = {w.split(":", 1)[0] for w in design.warnings}
    for rule_id in expect.get("warnings", []):
        assert rule_id in warned
    for rule_id in expect.get("fired", []):
        assert rule_id in design.fired_rules
    for rule_id in expect.get("not_fired", []):
        assert rule_id not in design.fired_rules
