"""Score a batch of records with the champion model and write the predictions.

    python src/batch_score.py INPUT OUTPUT

INPUT and OUTPUT are object-store prefixes (``s3://bucket/batch/input/``, as the batch CronJob
passes them) or local paths. Every CSV object under INPUT is scored and written under OUTPUT with
the same name and, per input row, the model's answer: one ``prediction`` column, or the columns
of the model's output where it answers with several (a recommender's top items). The store is the tracking server's, from
``MLFLOW_S3_ENDPOINT_URL`` (empty for AWS S3) and the ``AWS_*`` credentials.
"""

from __future__ import annotations

import io
import os
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import mlflow
import pandas as pd
from settings import CONFIG, tracking_uri


def _s3() -> Any:
    try:
        import boto3
    except ImportError:  # pragma: no cover - the image installs it with the batch job
        raise SystemExit("batch_score.py: s3:// paths need boto3 (pip install boto3)") from None
    return boto3.client("s3", endpoint_url=os.environ.get("MLFLOW_S3_ENDPOINT_URL") or None)


def inputs(uri: str) -> list[str]:
    """The CSV files under ``uri`` (an ``s3://`` prefix, a directory or one file)."""
    if uri.startswith("s3://"):
        parts = urlsplit(uri)
        pages = _s3().get_paginator("list_objects_v2").paginate(
            Bucket=parts.netloc, Prefix=parts.path.lstrip("/")
        )
        keys = [o["Key"] for page in pages for o in page.get("Contents", [])]
        return [f"s3://{parts.netloc}/{k}" for k in sorted(keys) if k.endswith(".csv")]
    path = Path(uri)
    return [str(p) for p in sorted(path.glob("*.csv"))] if path.is_dir() else [uri]


def read(uri: str) -> pd.DataFrame:
    if uri.startswith("s3://"):
        parts = urlsplit(uri)
        body = _s3().get_object(Bucket=parts.netloc, Key=parts.path.lstrip("/"))["Body"].read()
        return pd.read_csv(io.BytesIO(body))
    return pd.read_csv(uri)


def write(frame: pd.DataFrame, uri: str) -> None:
    if uri.startswith("s3://"):
        parts = urlsplit(uri)
        body = frame.to_csv(index=False).encode("utf-8")
        _s3().put_object(Bucket=parts.netloc, Key=parts.path.lstrip("/"), Body=body)
        return
    Path(uri).parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(uri, index=False)


def destination(source: str, output_uri: str) -> str:
    """Where the predictions of ``source`` go: its name under OUTPUT when OUTPUT is a prefix
    (ends with ``/``, or is a local directory), else OUTPUT itself."""
    if output_uri.endswith("/") or Path(output_uri).is_dir():
        return output_uri.rstrip("/") + "/" + source.rsplit("/", 1)[-1]
    return output_uri


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: batch_score.py INPUT OUTPUT", file=sys.stderr)
        return 2
    input_uri, output_uri = argv
    sources = inputs(input_uri)
    if not sources:
        print(f"batch_score.py: no CSV input under {input_uri}", file=sys.stderr)
        return 1
    mlflow.set_tracking_uri(tracking_uri())
    model = mlflow.pyfunc.load_model(f"models:/{CONFIG['model_name']}@{CONFIG['champion_alias']}")
    for source in sources:
        frame = read(source)
        predictions = model.predict(frame)
        if isinstance(predictions, pd.DataFrame):
            frame = pd.concat([frame, predictions.set_index(frame.index)], axis=1)
        else:
            frame["prediction"] = predictions
        target = destination(source, output_uri)
        write(frame, target)
        print(f"scored {len(frame)} rows of {source} into {target}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
