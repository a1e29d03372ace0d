"""Sample data: a reference set to train on and a current set, optionally shifted, to check drift.

Replace `load_reference` / `load_current` with your own data sources; keep the column names in
the model's signature.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
from settings import CONFIG

TARGET = "target"


def _sample() -> pd.DataFrame:
    """One draw from a fixed distribution; reference and current data are disjoint parts of it."""
    from sklearn.datasets import make_classification

    n_features = CONFIG["sample_data"]["n_features"]
    n_samples = CONFIG["sample_data"]["n_samples"]
    x, y = make_classification(
        n_samples=n_samples + n_samples // 2,
        n_features=n_features,
        n_informative=5,
        random_state=CONFIG["seed"],
    )
    frame = pd.DataFrame(x, columns=[f"feature_{i}" for i in range(n_features)])
    frame[TARGET] = y
    return frame


def load_reference() -> pd.DataFrame:
    return _sample().iloc[: CONFIG["sample_data"]["n_samples"]].reset_index(drop=True)


def load_current(shifted: bool = False) -> pd.DataFrame:
    frame = _sample().iloc[CONFIG["sample_data"]["n_samples"] :].reset_index(drop=True)
    if shifted:
        features = [c for c in frame.columns if c != TARGET]
        frame[features] = frame[features] + CONFIG["sample_data"]["drift_shift"]
    return frame


def validate(frame: pd.DataFrame) -> list[str]:
    """Schema checks before training: columns, types, missing values. Returns the problems."""
    problems = []
    expected = [f"feature_{i}" for i in range(CONFIG["sample_data"]["n_features"])] + [TARGET]
    if list(frame.columns) != expected:
        problems.append(f"columns {list(frame.columns)} differ from {expected}")
    if frame.isna().any().any():
        problems.append("missing values present")
    numeric = frame.drop(columns=[TARGET], errors="ignore")
    if not all(np.issubdtype(t, np.number) for t in numeric.dtypes):
        problems.append("non-numeric feature columns")
    return problems


def data_version(frame: pd.DataFrame) -> str:
    """A content hash of the training data, logged with every run for lineage."""
    digest = hashlib.sha256(pd.util.hash_pandas_object(frame, index=True).values.tobytes())
    return digest.hexdigest()[:16]


if __name__ == "__main__":
    issues = validate(load_reference())
    for issue in issues:
        print(f"data validation: {issue}")
    raise SystemExit(1 if issues else 0)
