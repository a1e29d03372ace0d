"""Score a batch of records with the champion model and write the predictions.

    python src/batch_score.py INPUT.csv OUTPUT.csv
"""

from __future__ import annotations

import sys

import mlflow
import pandas as pd
from settings import CONFIG, tracking_uri


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: batch_score.py INPUT.csv OUTPUT.csv", file=sys.stderr)
        return 2
    mlflow.set_tracking_uri(tracking_uri())
    model = mlflow.pyfunc.load_model(f"models:/{CONFIG['model_name']}@{CONFIG['champion_alias']}")
    frame = pd.read_csv(argv[0])
    frame["prediction"] = model.predict(frame)
    frame.to_csv(argv[1], index=False)
    print(f"scored {len(frame)} rows into {argv[1]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
