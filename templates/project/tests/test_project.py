"""The project's own tests: configuration consistency, data checks, drift detection, contracts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent


def load(rel: str) -> object:
    text = (ROOT / rel).read_text(encoding="utf-8")
    return yaml.safe_load(text) if rel.endswith((".yaml", ".yml")) else json.loads(text)


def test_thresholds_are_the_same_everywhere() -> None:
    project = load("config/project.json")
    retraining = load("pipelines/retraining.yaml")
    t = project["thresholds"]
    drift = {tr["metric"]: tr["threshold"] for tr in retraining["triggers"] if tr["type"] == "drift"}
    assert drift == {"psi": t["psi_retrain"], "ks_pvalue": t["ks_pvalue"]}
    monitoring_file = ROOT / "config" / "monitoring.json"
    if monitoring_file.exists():
        metrics = {m["name"]: m for m in load("config/monitoring.json")["metrics"]}
        assert metrics["feature_drift_psi"]["alert_threshold"]["value"] == t["psi_investigate"]
        # Latency is watched only where something serves online and its runtime exports it.
        if "prediction_latency_ms" in metrics:
            latency = metrics["prediction_latency_ms"]["alert_threshold"]["p95"]
            assert latency == t["latency_p95_alert_ms"]


def test_reference_data_passes_validation() -> None:
    from data import load_reference, validate

    assert validate(load_reference()) == []


def test_validation_catches_missing_values() -> None:
    from data import load_reference, validate

    frame = load_reference()
    frame.iloc[0, 0] = float("nan")
    assert "missing values present" in validate(frame)


def test_drift_check_passes_on_unshifted_data(capsys: pytest.CaptureFixture[str]) -> None:
    import drift

    assert drift.main([]) == 0


def test_drift_check_fails_on_shifted_data() -> None:
    import drift

    assert drift.main(["--shifted"]) == 1
    from settings import output_path

    report = json.loads(output_path("drift-report.json").read_text(encoding="utf-8"))
    assert report["drifted_features"]
    assert report["max_psi"] > report["thresholds"]["psi_investigate"]


def test_promotion_needs_a_better_challenger() -> None:
    from evaluate import decide

    assert decide(0.80, 0.85, 0.0)
    assert not decide(0.85, 0.85, 0.0)
    assert not decide(0.85, 0.80, 0.0)


@pytest.mark.parametrize(
    ("document", "schema"),
    [
        ("config/experiment-tracking.json", "experiment-tracking"),
        ("config/model-registry.json", "model-registry"),
        ("config/monitoring.json", "monitoring-dashboard"),
        ("pipelines/retraining.yaml", "retraining-pipeline"),
    ],
)
def test_contracts_match_their_schemas(document: str, schema: str) -> None:
    import jsonschema

    if not (ROOT / document).exists():
        return
    jsonschema.validate(load(document), load(f"schemas/{schema}.schema.json"))
