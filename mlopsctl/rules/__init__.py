"""The rules engine and its catalog: one YAML data file per rule under ``catalog/``."""

from mlopsctl.rules.engine import evaluate
from mlopsctl.rules.model import Rule, load_catalog

__all__ = ["Rule", "evaluate", "load_catalog"]
