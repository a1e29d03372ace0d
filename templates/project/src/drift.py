"""Data drift check with Evidently: PSI and Kolmogorov-Smirnov per monitored column.

The monitored columns are `data.drift_view(frame)`: the model's input features for tabular data,
the forecast error of the seasonal-naive forecast for a time series, the reference popularity of
the items picked for user-item interactions.

Thresholds come from config/project.json (the design): PSI above `psi_investigate` or a KS p-value
below `ks_pvalue` is drift; PSI above `psi_retrain` also asks for retraining. Exit 1 on drift.

    python src/drift.py             # reference vs. current sample data
    python src/drift.py --shifted   # current data shifted on purpose: must report drift
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

import pandas as pd
from data import drift_view, load_current, load_reference
from evidently import Dataset, DataDefinition, Report
from evidently.metrics import ValueDrift
from metrics_push import push
from settings import output_path, thresholds


def drift_scores(reference: pd.DataFrame, current: pd.DataFrame) -> dict[str, dict[str, float]]:
    """Per column: PSI and the KS test p-value, computed by Evidently."""
    t = thresholds()
    features = list(reference.columns)
    metrics = []
    for column in features:
        metrics.append(ValueDrift(column=column, method="psi", threshold=t["psi_investigate"]))
        metrics.append(ValueDrift(column=column, method="ks", threshold=t["ks_pvalue"]))
    definition = DataDefinition(numerical_columns=features)
    ref = Dataset.from_pandas(reference[features], data_definition=definition)
    cur = Dataset.from_pandas(current[features], data_definition=definition)
    snapshot = Report(metrics).run(current_data=cur, reference_data=ref)
    results = snapshot.dict()["metrics"]
    scores: dict[str, dict[str, float]] = {c: {} for c in features}
    for spec, result in zip(metrics, results, strict=True):
        scores[spec.column]["psi" if spec.method == "psi" else "ks_pvalue"] = float(result["value"])
    return scores


def verdict(scores: dict[str, dict[str, float]], t: dict[str, Any]) -> dict[str, Any]:
    drifted = sorted(
        c for c, s in scores.items() if s["psi"] > t["psi_investigate"] or s["ks_pvalue"] < t["ks_pvalue"]
    )
    retrain = sorted(
        c for c, s in scores.items() if s["psi"] > t["psi_retrain"] or s["ks_pvalue"] < t["ks_pvalue"]
    )
    return {
        "drifted_features": drifted,
        "retrain": bool(retrain),
        "max_psi": max(s["psi"] for s in scores.values()),
        "min_ks_pvalue": min(s["ks_pvalue"] for s in scores.values()),
        "thresholds": {k: t[k] for k in ("psi_monitor", "psi_investigate", "psi_retrain", "ks_pvalue")},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shifted", action="store_true", help="shift the current sample on purpose")
    parser.add_argument("--reference", help="CSV of reference data (default: sample data)")
    parser.add_argument("--current", help="CSV of current data (default: sample data)")
    args = parser.parse_args(argv)
    reference = pd.read_csv(args.reference) if args.reference else load_reference()
    current = pd.read_csv(args.current) if args.current else load_current(shifted=args.shifted)
    scores = drift_scores(drift_view(reference), drift_view(current))
    result = verdict(scores, thresholds())
    result["features"] = scores
    report = json.dumps(result, indent=2) + "\n"
    output_path("drift-report.json").write_text(report, encoding="utf-8")
    from settings import CONFIG

    names = CONFIG["pushed_metrics"]
    push(
        "drift",
        {
            names["drift_psi"]: {(c,): s["psi"] for c, s in scores.items()},
            names["drift_ks_pvalue"]: {(c,): s["ks_pvalue"] for c, s in scores.items()},
        },
        ("feature",),
    )
    if result["drifted_features"]:
        print(
            f"drift detected in {', '.join(result['drifted_features'])}: max PSI "
            f"{result['max_psi']:.3f}, min KS p-value {result['min_ks_pvalue']:.3g}"
            + ("; retraining advised" if result["retrain"] else ""),
            file=sys.stderr,
        )
        return 1
    print(f"no drift: max PSI {result['max_psi']:.3f}, min KS p-value {result['min_ks_pvalue']:.3g}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
