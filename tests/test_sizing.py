"""Derived numbers: each follows its stated formula and shows it in the explanation."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from mlopsctl.api import assess, load_requirements
from mlopsctl.design import StackDesign
from mlopsctl.rules.sizing import CAPACITY_RPS, TARGET_UTILIZATION


def design(**answers: Any) -> StackDesign:
    return assess(load_requirements(answers, defaults=True))


def decision(d: StackDesign, capability: str) -> Any:
    return next(x for x in d.decisions if x.capability == capability)


@pytest.mark.parametrize("rps", [1, 69, 70, 71, 500, 999])
def test_max_replicas_follow_peak_over_capacity(rps: int) -> None:
    d = design(scale_requirements={"rps": rps, "latency_ms": 200})
    expected = max(2, math.ceil(rps / (100 * 0.7)))
    assert d.sizing.max_replicas == expected
    assert d.sizing.min_replicas == 1
    formula = decision(d, "sizing.max_replicas").formula
    assert f"ceil({rps:g} / (100 x 0.7))" in formula


def test_production_keeps_two_replicas_and_room_above() -> None:
    d = design(governance_level="production", scale_requirements={"rps": 10})
    assert (d.sizing.min_replicas, d.sizing.max_replicas) == (2, 3)


def test_hpa_keeps_a_quarter_of_the_peak_warm() -> None:
    d = design(scale_requirements={"rps": 7000, "latency_ms": 100})
    needed = math.ceil(7000 / 70)  # 100 replicas
    assert d.stack.autoscaling == "hpa"
    assert d.sizing.max_replicas == needed
    assert d.sizing.min_replicas == math.ceil(needed * 0.25)
    assert d.sizing.hpa_cpu_target_percent == 70


def test_max_replicas_are_capped() -> None:
    d = design(framework="pytorch", scale_requirements={"rps": 100_000})
    assert d.sizing.max_replicas == 200


def test_concurrency_target_is_littles_law() -> None:
    d = design(framework="pytorch", gpu=True, scale_requirements={"rps": 100, "latency_ms": 250})
    # 200 rps per GPU replica x 0.7 x 0.25 s = 35 requests in flight
    assert d.sizing.per_replica_rps == CAPACITY_RPS[("deep", True)] == 200
    assert d.sizing.scale_target_concurrency == 35
    assert d.sizing.gpu_per_replica == 1
    assert d.sizing.cpu_request == "1000m" and d.sizing.cpu_limit == "2000m"


def test_peak_from_concurrent_users() -> None:
    d = design(scale_requirements={"concurrent_users": 40, "latency_ms": 400})
    assert d.sizing.peak_rps == pytest.approx(100.0)  # 40 users x 1000 / 400 ms
    assert "concurrent_users x 1000 / latency_target_ms" in decision(d, "sizing.peak_rps").formula


def test_concurrent_users_can_need_more_replicas_than_rps() -> None:
    # 10 rps alone needs 1 replica; 1000 users at 14 in flight each need ceil(1000/14) = 72
    d = design(scale_requirements={"rps": 10, "concurrent_users": 1000, "latency_ms": 200})
    assert d.sizing.scale_target_concurrency == 14
    assert d.sizing.max_replicas == 72


@pytest.mark.parametrize(
    ("size_gb", "mem_request", "mem_limit"),
    [(0.1, "768Mi", "1088Mi"), (1.0, "2560Mi", "3840Mi"), (4.0, "8704Mi", "13056Mi")],
)
def test_memory_from_model_size(size_gb: float, mem_request: str, mem_limit: str) -> None:
    # request = size x 2 + 0.5 GB rounded up to 64 MiB; limit = 1.5 x that
    d = design(model_size_gb=size_gb, gpu=True, framework="pytorch")
    assert (d.sizing.memory_request, d.sizing.memory_limit) == (mem_request, mem_limit)
    assert d.sizing.startup_seconds == 30 + math.ceil(60 * size_gb)


@pytest.mark.parametrize("latency", [49, 50, 150, 500])
def test_latency_alert_is_one_and_a_half_times_the_sla(latency: float) -> None:
    d = design(scale_requirements={"latency_ms": latency})
    assert d.thresholds.latency_p95_alert_ms == pytest.approx(1.5 * latency)
    assert d.thresholds.latency_alert_for_minutes == 10
    assert (
        decision(d, "thresholds.latency_p95_alert_ms").formula
        == f"1.5 x latency_target_ms = 1.5 x {latency:g}"
    )


def test_default_latency_target_by_pattern() -> None:
    assert (
        design(
            deployment_target="batch", scale_requirements={"data_volume_gb": 5}
        ).sizing.latency_target_ms
        == 60_000
    )
    assert design(scale_requirements={"rps": 5}).sizing.latency_target_ms == 200


def test_error_rate_thresholds() -> None:
    d = design()
    assert (d.thresholds.error_rate_alert, d.thresholds.error_rate_page) == (0.01, 0.05)


def test_every_sizing_number_has_a_formula_and_the_assumptions_are_stated() -> None:
    d = design(governance_level="production")
    for field in d.sizing.model_dump():
        if field in {"assumptions", "target_utilization"}:
            continue
        dec = decision(d, f"sizing.{field}")
        assert dec.formula, field
        assert dec.rule.startswith("SIZ") and dec.references, field
    text = " ".join(d.sizing.assumptions)
    assert f"{TARGET_UTILIZATION:.0%}" in text and "rps" in text and "memory" in text


def test_each_sizing_decision_is_one_sizing_rule_of_the_catalog() -> None:
    """Every number is decided by its own rule (id, formula, rationale, real references), each
    rule decides a number of every design, and the docs list them."""
    from mlopsctl.rules.model import load_sizing_rules

    rules = {r.id: r for r in load_sizing_rules()}
    d = design(governance_level="production")
    sized = [dec for dec in d.decisions if dec.rule.startswith("SIZ")]
    assert {dec.rule for dec in sized} == set(rules)
    assert len(sized) == len(rules)  # one decision per rule
    for dec in sized:
        rule = rules[dec.rule]
        assert dec.capability == rule.capability
        assert dec.reason == " ".join(rule.rationale.split())
        assert [r.url for r in dec.references] == [r.url for r in rule.references]
        assert all(r.url.startswith("https://") for r in dec.references)
    reference = (Path(__file__).parents[1] / "docs" / "rules.md").read_text(encoding="utf-8")
    for rule_id, rule in rules.items():
        assert f"### {rule_id} {rule.name}" in reference
