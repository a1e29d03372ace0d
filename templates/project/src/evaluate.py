"""Compare the challenger with the champion on held-out data; promote the challenger if it wins.

Both are scored on the project's primary metric (config/project.json `primary_metric`, in the
direction `higher_is_better`); the challenger is promoted when it beats the champion by at least
`min_improvement`. Exit 0 when the champion stands or the challenger was promoted; writes
evaluation.json (in MLOPS_OUTPUT_DIR when set) with the metric, both scores and `promoted`, so CI
and the retraining pipeline can gate deployment on it.
"""

from __future__ import annotations

import json
import sys

import mlflow
import pandas as pd
from data import load_current
from scoring import HIGHER_IS_BETTER, PRIMARY, better, scores
from settings import CONFIG, output_path, tracking_uri

MODEL_NAME = CONFIG["model_name"]


def score(alias: str, frame: pd.DataFrame) -> tuple[str, float]:
    client = mlflow.MlflowClient()
    version = client.get_model_version_by_alias(MODEL_NAME, alias)
    model = mlflow.pyfunc.load_model(f"models:/{MODEL_NAME}@{alias}")
    return version.version, scores(model, frame)[PRIMARY]


def decide(champion: float, challenger: float, min_improvement: float) -> bool:
    """Promote only when the challenger beats the champion by at least ``min_improvement``, in
    the primary metric's direction."""
    return better(challenger, champion, min_improvement)


def main() -> int:
    mlflow.set_tracking_uri(tracking_uri())
    holdout = load_current()
    champion_version, champion = score(CONFIG["champion_alias"], holdout)
    challenger_version, challenger = score(CONFIG["challenger_alias"], holdout)
    promote = challenger_version != champion_version and decide(
        champion, challenger, CONFIG["min_improvement"]
    )
    if promote:
        mlflow.MlflowClient().set_registered_model_alias(
            MODEL_NAME, CONFIG["champion_alias"], challenger_version
        )
    result = {
        "metric": PRIMARY,
        "higher_is_better": HIGHER_IS_BETTER,
        "min_improvement": CONFIG["min_improvement"],
        "champion_version": champion_version,
        "champion_score": champion,
        "challenger_version": challenger_version,
        "challenger_score": challenger,
        "promoted": promote,
    }
    report = json.dumps(result, indent=2) + "\n"
    output_path("evaluation.json").write_text(report, encoding="utf-8")
    print(json.dumps(result), file=sys.stdout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
