"""Rule files: a stable id, a condition in a small closed language, an outcome, and its reasons.

The condition language is data, never code: a condition is ``all``/``any``/``not`` over leaves
``{field: <dotted Requirements path>, <op>: <value>}`` with the operators in ``OPERATORS``.
Besides the answers, a leaf may read the command's input ``tier_floor`` (``T2`` under
``mlopsctl design``, ``T3`` under ``mlopsctl lifecycle``, unset otherwise) and the derived fact
``tier`` (the highest tier floor of the rules that set one); rules that set a tier floor may not
read ``tier`` themselves.
"""

from __future__ import annotations

import datetime as dt
import re
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from mlopsctl.errors import CatalogError

CATALOG_DIR = Path(__file__).parent / "catalog"
SIZING_DIR = CATALOG_DIR / "sizing"

OPERATORS = ("eq", "ne", "lt", "le", "gt", "ge", "in", "not_in", "contains", "is_set")

Tier = Literal["T1", "T2", "T3"]

# Every capability the engine decides, with the identifiers it may choose. Rule outcomes are
# checked against this table when the catalog loads.
STACK_CHOICES: dict[str, tuple[str, ...]] = {
    "tracking": ("mlflow", "vertex_ai", "sagemaker", "azure_ml", "databricks", "neptune", "wandb"),
    "registry": ("mlflow", "vertex_ai", "sagemaker", "azure_ml", "databricks"),
    "serving": (
        "kserve",
        "seldon",
        "vertex_ai",
        "sagemaker",
        "azure_ml",
        "databricks",
        "mlflow",
        "torchserve",
        "tf_serving",
        "triton",
        "onnxruntime",
        "tflite",
        "torchscript",
        "none",
    ),
    "deployment_pattern": ("online", "batch", "edge", "hybrid"),
    "rollout": ("none", "recreate", "canary", "progressive", "ab", "shadow"),
    "orchestration": (
        "kubeflow",
        "airflow",
        "cronjob",
        "ci",
        "vertex_ai",
        "sagemaker",
        "azure_ml",
        "databricks",
        "none",
    ),
    "monitoring": ("prometheus", "cloud", "none"),
    "drift_detection": ("evidently", "none"),
    "retraining": ("scheduled", "triggered", "manual", "none"),
    "model_optimization": ("none", "recommended", "required"),
    "autoscaling": ("none", "hpa", "knative", "managed"),
    "batch_engine": ("none", "cronjob", "spark"),
    "caching": ("none", "prediction_cache"),
}

# Facts derived from the answers that conditions may read besides the ``Requirements`` fields.
# ``weights_read_gb_per_s``: the memory bandwidth one prediction needs to read the model's weights
# within the latency target (``mlopsctl.rules.sizing.weights_read_gb_per_s``).
DERIVED_FIELDS = ("tier", "weights_read_gb_per_s")
# The answers a derived fact is computed from alone (the tier comes from the rules instead), so
# the questionnaire can refuse as soon as they are settled.
DERIVED_INPUTS = {
    "weights_read_gb_per_s": (
        "model_size_gb",
        "scale_requirements.latency_ms",
        "deployment_target",
    ),
}
# What the command adds to the answers: the tier floor of ``design`` and ``lifecycle``.
INPUT_FIELDS = ("tier_floor",)

AlertPriority = Literal["P0", "P1", "P2", "P3"]
Notify = Literal["page", "alert", "chat", "ticket"]

Scalar = str | int | float | bool
_R = TypeVar("_R", "Rule", "SizingRule")


class Leaf(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    field: str
    eq: Scalar | None = None
    ne: Scalar | None = None
    lt: float | None = None
    le: float | None = None
    gt: float | None = None
    ge: float | None = None
    in_: list[Scalar] | None = Field(default=None, alias="in")
    not_in: list[Scalar] | None = None
    contains: Scalar | None = None
    is_set: bool | None = None

    @model_validator(mode="after")
    def _one_operator(self) -> Leaf:
        used = [op for op in OPERATORS if self.operand(op) is not None]
        if len(used) != 1:
            raise ValueError(f"a leaf takes exactly one operator of {', '.join(OPERATORS)}")
        return self

    def operand(self, op: str) -> Any:
        return getattr(self, "in_" if op == "in" else op)

    @cached_property
    def op(self) -> str:
        return next(op for op in OPERATORS if self.operand(op) is not None)


class Condition(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    all: list[Condition | Leaf] | None = None
    any: list[Condition | Leaf] | None = None
    not_: Condition | Leaf | None = Field(default=None, alias="not")

    @model_validator(mode="after")
    def _one_combinator(self) -> Condition:
        if sum(x is not None for x in (self.all, self.any, self.not_)) != 1:
            raise ValueError("a condition takes exactly one of all, any, not")
        return self


class AlertSpec(BaseModel):
    """An alert the monitoring setup must carry, by priority and notification channel."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[a-z0-9]+(-[a-z0-9]+)*$")
    priority: AlertPriority
    notify: Notify
    signal: str  # what is measured, in words; the numbers come from ``thresholds``
    thresholds: list[str] = Field(default_factory=list)  # the Thresholds fields it reads

    @field_validator("thresholds")
    @classmethod
    def _known(cls, value: list[str]) -> list[str]:
        from mlopsctl.design import Thresholds

        for key in value:
            if key not in Thresholds.model_fields:
                raise ValueError(f"unknown threshold {key!r}")
        return value


class Outcome(BaseModel):
    """What a rule decides when it fires."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    set: dict[str, str] = Field(default_factory=dict)
    tier: Tier | None = None  # a floor: the design's tier is the highest floor of fired rules
    thresholds: dict[str, float] = Field(default_factory=dict)
    rollout_steps: list[int] | None = None  # applies when this rule's rollout choice wins
    require: list[str] = Field(default_factory=list)  # governance controls, accumulated
    alerts: list[AlertSpec] = Field(default_factory=list)
    warn: str | None = None
    abort: bool = False

    @field_validator("require")
    @classmethod
    def _kebab(cls, value: list[str]) -> list[str]:
        for item in value:
            if not re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", item):
                raise ValueError(f"governance control {item!r} must be a kebab-case name")
        return value

    @field_validator("rollout_steps")
    @classmethod
    def _steps(cls, value: list[int] | None) -> list[int] | None:
        if value is not None and (
            not value or any(not 0 <= v <= 100 for v in value) or value != sorted(value)
        ):
            raise ValueError("rollout_steps are increasing traffic percentages from 0 to 100")
        return value

    @model_validator(mode="after")
    def _steps_need_rollout(self) -> Outcome:
        if self.rollout_steps is not None and "rollout" not in self.set:
            raise ValueError("rollout_steps belong to a rule that sets rollout")
        return self

    def decides_anything(self) -> bool:
        return bool(
            self.set
            or self.tier
            or self.thresholds
            or self.require
            or self.alerts
            or self.warn
            or self.abort
        )

    @field_validator("set")
    @classmethod
    def _known_choices(cls, value: dict[str, str]) -> dict[str, str]:
        for key, choice in value.items():
            if key not in STACK_CHOICES:
                raise ValueError(f"unknown capability {key!r}; known: {', '.join(STACK_CHOICES)}")
            if choice not in STACK_CHOICES[key]:
                raise ValueError(
                    f"{key}: unknown choice {choice!r}; known: {', '.join(STACK_CHOICES[key])}"
                )
        return value

    @field_validator("thresholds")
    @classmethod
    def _known_thresholds(cls, value: dict[str, float]) -> dict[str, float]:
        from mlopsctl.design import Thresholds

        for key in value:
            if key not in Thresholds.model_fields:
                raise ValueError(f"unknown threshold {key!r}")
        return value


class Reference(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    title: str
    url: str
    accessed: dt.date


class AlternativeSpec(BaseModel):
    """A choice the rule's author considered and did not take, and why."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    choice: str
    why_not: str


class Examples(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    fires: list[dict[str, Any]] = Field(min_length=1)
    does_not_fire: list[dict[str, Any]] = Field(default_factory=list)


class Rule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^[A-Z]{3}\d{3}$")
    name: str = Field(pattern=r"^[a-z0-9]+(-[a-z0-9]+)*$")
    category: Literal[
        "stack",
        "serving",
        "deployment",
        "maturity",
        "monitoring",
        "alerting",
        "rollout",
        "governance",
        "abort",
    ]
    capability: str
    summary: str
    when: Condition
    then: Outcome
    overrides: list[str] = Field(default_factory=list)
    rationale: str
    remediation: str
    references: list[Reference] = Field(min_length=1)
    alternatives: list[AlternativeSpec] = Field(default_factory=list)
    examples: Examples

    @property
    def unconditional(self) -> bool:
        return self.when.all == []

    @model_validator(mode="after")
    def _decides(self) -> Rule:
        if not self.then.decides_anything():
            raise ValueError("a rule must decide, require, warn or abort something")
        if self.id in self.overrides:
            raise ValueError("a rule cannot override itself")
        if self.then.tier and "tier" in condition_fields(self.when):
            raise ValueError("a rule that sets a tier floor cannot read the derived tier")
        return self

    @model_validator(mode="after")
    def _examples_both_ways(self) -> Rule:
        if not self.examples.does_not_fire and not self.unconditional:
            raise ValueError("a conditional rule needs at least one does_not_fire example")
        return self

    @model_validator(mode="after")
    def _abort_is_alone(self) -> Rule:
        if self.then.abort and (self.then.set or self.then.thresholds or self.then.tier):
            raise ValueError("an abort rule decides nothing else")
        return self


class SizingRule(BaseModel):
    """A number the engine derives by a formula (``mlopsctl.rules.sizing``) rather than by a
    condition: its id, the formula in general (each decision states it with the numbers), why,
    how to change the outcome, and its sources. One file per rule under ``catalog/sizing/``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^SIZ\d{3}$")
    name: str = Field(pattern=r"^[a-z0-9]+(-[a-z0-9]+)*$")
    category: Literal["sizing"] = "sizing"
    capability: str = Field(pattern=r"^(sizing|thresholds)\.[a-z0-9_]+$")
    summary: str
    formula: str
    rationale: str
    remediation: str
    references: list[Reference] = Field(min_length=1)

    @field_validator("capability")
    @classmethod
    def _known_number(cls, value: str) -> str:
        from mlopsctl.design import Sizing, Thresholds

        kind, name = value.split(".", 1)
        fields = Sizing.model_fields if kind == "sizing" else Thresholds.model_fields
        if name not in fields or name == "assumptions":
            raise ValueError(f"{value!r} is not a number of the design")
        return value


def condition_fields(cond: Condition | Leaf) -> set[str]:
    """Every field a condition reads."""
    if isinstance(cond, Leaf):
        return {cond.field}
    out: set[str] = set()
    for child in (cond.all or []) + (cond.any or []) + ([cond.not_] if cond.not_ else []):
        out |= condition_fields(child)
    return out


def _load_file(path: Path, model: type[_R]) -> _R:
    import yaml

    try:
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=loader)
        rule = model.model_validate(data)
    except (yaml.YAMLError, ValidationError) as exc:
        raise CatalogError(f"rule file {path.name} is invalid: {exc}") from None
    if path.stem.split("-", 1)[0] != rule.id:
        raise CatalogError(f"rule file {path.name} must be named after its id {rule.id}")
    return rule


def _unique_ids(rules: tuple[Rule, ...] | tuple[SizingRule, ...]) -> None:
    ids = [r.id for r in rules]
    dupes = {i for i in ids if ids.count(i) > 1}
    if dupes:
        raise CatalogError(f"duplicate rule ids: {', '.join(sorted(dupes))}")


@lru_cache(maxsize=4)
def load_catalog(directory: Path = CATALOG_DIR) -> tuple[Rule, ...]:
    """Load and check every rule file; ids are unique and overrides name existing rules."""
    rules = tuple(_load_file(p, Rule) for p in sorted(directory.glob("*.yaml")))
    _unique_ids(rules)
    known = {r.id for r in rules}
    for rule in rules:
        for other in rule.overrides:
            if other not in known:
                raise CatalogError(f"{rule.id} overrides unknown rule {other}")
        _check_fields(rule.id, rule.when)
    return rules


@lru_cache(maxsize=1)
def known_fields() -> frozenset[str]:
    """Every field a condition may read: the answers, the command's inputs, the derived facts."""
    from mlopsctl.requirements import Requirements, ScaleRequirements

    fields = set(Requirements.model_fields) - {"scale_requirements"}
    fields |= {f"scale_requirements.{name}" for name in ScaleRequirements.model_fields}
    fields |= set(INPUT_FIELDS) | set(DERIVED_FIELDS)
    return frozenset(fields)


def _check_fields(rule_id: str, cond: Condition | Leaf) -> None:
    for name in sorted(condition_fields(cond)):
        if name not in known_fields():
            raise CatalogError(f"{rule_id}: condition uses unknown field {name!r}")


@lru_cache(maxsize=4)
def load_sizing_rules(directory: Path = SIZING_DIR) -> tuple[SizingRule, ...]:
    """Load and check the sizing rules; ids are unique and each decides one number."""
    rules = tuple(_load_file(p, SizingRule) for p in sorted(directory.glob("*.yaml")))
    _unique_ids(rules)
    numbers = [r.capability for r in rules]
    twice = {n for n in numbers if numbers.count(n) > 1}
    if twice:
        raise CatalogError(f"more than one sizing rule decides {', '.join(sorted(twice))}")
    return rules


def sizing_rule(rule_id: str) -> SizingRule:
    for rule in load_sizing_rules():
        if rule.id == rule_id:
            return rule
    raise CatalogError(f"no sizing rule {rule_id}")


def catalog_digest(directory: Path = CATALOG_DIR) -> str:
    """A digest of the rule catalog (sizing rules included), recorded in generated projects."""
    import hashlib

    h = hashlib.sha256()
    for path in sorted(directory.rglob("*.yaml")):
        h.update(path.relative_to(directory).as_posix().encode())
        h.update(b"\0")
        h.update(path.read_bytes())
    return h.hexdigest()[:16]
