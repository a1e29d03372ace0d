"""Model kinds: what each ``model_type`` trains, on what sample data, judged by which metric.

The facts live in ``data/kinds.yaml``; :func:`kind` resolves one (model_type, framework) pair
for the templates (``kind`` in the render context), :func:`unsupported_pairs` lists the tabular
pairs that have no model, which ABT008 refuses at the question.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class Metric(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    higher_is_better: bool


class Estimator(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    class_: str = Field(alias="class")
    params: dict[str, Any]
    flavor: str
    logs: Literal["estimator", "booster"] = "estimator"
    skops_trusted_types: list[str] = Field(default_factory=list)

    @property
    def module(self) -> str:
        return self.class_.rsplit(".", 1)[0]

    @property
    def name(self) -> str:
        return self.class_.rsplit(".", 1)[1]


class Kind(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    sample: str
    metric: Metric
    secondary: list[str]
    prediction: str
    edge_export: bool
    estimators: dict[str, Estimator]


class KindTable(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    fallback: str
    tabular_frameworks: list[str]
    kinds: dict[str, Kind]


@lru_cache(maxsize=1)
def table() -> KindTable:
    import yaml

    raw = yaml.safe_load((Path(__file__).parent / "data" / "kinds.yaml").read_text("utf-8"))
    return KindTable.model_validate(raw)


def kind_name(model_type: str) -> str:
    """The kind a model type trains: its own, or the fallback kind where it has none yet."""
    t = table()
    return model_type if model_type in t.kinds else t.fallback


def supports(model_type: str, framework: str) -> bool:
    """Whether the pair trains a model: every non-tabular framework falls back to the sklearn
    baseline; a tabular framework needs an estimator of the kind."""
    t = table()
    if framework not in t.tabular_frameworks:
        return True
    return framework in t.kinds[kind_name(model_type)].estimators


def edge_export(model_type: str) -> bool:
    """Whether src/export.py converts this kind's model to ONNX (for now the classifiers)."""
    return table().kinds[kind_name(model_type)].edge_export


def unsupported_pairs() -> list[tuple[str, str]]:
    """(model_type, framework) pairs among the tabular frameworks that have no model."""
    from typing import get_args

    from mlopsctl.requirements import Framework, ModelType

    t = table()
    return [
        (m, f)
        for m in get_args(ModelType)
        if m in t.kinds
        for f in get_args(Framework)
        if f in t.tabular_frameworks and not supports(m, f)
    ]


def kind(model_type: str, framework: str) -> dict[str, Any]:
    """The template's view of one pair: the kind's facts and the estimator for the framework."""
    t = table()
    name = kind_name(model_type)
    entry = t.kinds[name]
    estimator = entry.estimators.get(framework) or entry.estimators["sklearn"]
    return {
        "name": name,
        "model_type": model_type,
        "sample": entry.sample,
        "metric": entry.metric.name,
        "higher_is_better": entry.metric.higher_is_better,
        "direction": "higher" if entry.metric.higher_is_better else "lower",
        "secondary": list(entry.secondary),
        "metrics": [entry.metric.name, *entry.secondary],
        "prediction": entry.prediction,
        "edge_export": entry.edge_export,
        "estimator": {
            "class": estimator.class_,
            "module": estimator.module,
            "name": estimator.name,
            "params": dict(estimator.params),
            "flavor": estimator.flavor,
            "logs": estimator.logs,
            "skops_trusted_types": list(estimator.skops_trusted_types),
        },
    }
