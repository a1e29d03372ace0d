"""Compare the challenger with the champion on held-out data; promote the challenger if it wins.

Exit 0 when the champion stands or the challenger was promoted; writes evaluation.json with both
scores (in MLOPS_OUTPUT_DIR when set) so CI and the retraining pipeline can gate deployment on it.
"""

from __future__ import annotations

import json
import sys

import mlflow
from data import TARGET, load_current
from settings import CONFIG, output_path, tracking_uri
from sklearn.metrics import f1_score

MODEL_NAME = CONFIG["model_name"]


def score(alias: str, frame: object) -> tuple[str, float]:
    client = mlflow.MlflowClient()
    version = client.get_model_version_by_alias(MODEL_NAME, alias)
    model = mlflow.pyfunc.load_model(f"models:/{MODEL_NAME}@{alias}")
    x = frame.drop(columns=[TARGET])  # type: ignore[attr-defined]
    y = frame[TARGET]  # type: ignore[index]
    return version.version, float(f1_score(y, model.predict(x)))


def decide(champion: float, challenger: float, min_improvement: float) -> bool:
    """Promote only when the challenger beats the champion by at least ``min_improvement``."""
    return challenger > champion + min_improvement


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
        "champion_version": champion_version,
        "champion_f1": champion,
        "challenger_version": challenger_version,
        "challenger_f1": challenger,
        "promoted": promote,
    }
    report = json.dumps(result, indent=2) + "\n"
    output_path("evaluation.json").write_text(report, encoding="utf-8")
    print(json.dumps(result), file=sys.stdout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
