"""The public Python API: answers in, a typed design or a generated repository out.

``assess`` is what ``mlopsctl assess`` runs; its result is the typed ``StackDesign`` whose
``model_dump(mode="json")`` is exactly the ``--format json`` output (schema:
``docs/schemas/design.schema.json``)::

    from mlopsctl import assess

    design = assess({"project_name": "fraud", "framework": "xgboost",
                     "scale_requirements": {"rps": 500, "latency_ms": 150},
                     "governance_level": "production"})
    design.tier                          # "T2"
    design.stack.serving                 # "kserve"
    design.stack.rollout                 # "canary"
    design.sizing.max_replicas           # 8, with its formula in design.decisions
    design.thresholds.psi_retrain        # 0.25
    [a.name for a in design.alerts]      # P0..P3 alerts
    [d.rule for d in design.decisions]   # the rules that made each choice

Errors are typed (``mlopsctl.errors``): ``AnswersError`` for invalid answers (exit code 2 in the
CLI), ``RuleAbort`` when an abort rule fires (4; ``exc.rule_id`` names it, ``exc.hint`` says what
to change), ``RuleConflictError`` for conflicting rules under ``strict=True`` (1).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mlopsctl.answers import (
    AnswerSet,
    apply_sets,
    build_requirements,
    fill_defaults,
    load_answers_file,
)
from mlopsctl.design import StackDesign
from mlopsctl.render import GenerationResult
from mlopsctl.requirements import Requirements


def load_requirements(
    answers: Mapping[str, Any] | Path | str | None = None,
    *,
    sets: list[str] | None = None,
    defaults: bool = False,
    project_name: str | None = None,
) -> Requirements:
    """Build ``Requirements`` from a mapping or an answers file, ``--set`` style overrides and
    (optionally) the defaults of every unanswered question."""
    answer_set = AnswerSet()
    if isinstance(answers, Path | str):
        load_answers_file(Path(answers), answer_set)
    elif answers is not None:
        for key, value in answers.items():
            answer_set.set((key,), value, source="(argument)")
    apply_sets(answer_set, sets or [])
    if defaults:
        fill_defaults(answer_set, project_name)
    return build_requirements(answer_set, use_defaults=defaults)


def assess(
    requirements: Requirements | Mapping[str, Any] | Path,
    *,
    strict: bool = False,
    tier_floor: str | None = None,
) -> StackDesign:
    """Run the rules on the requirements and return the explained design.

    ``requirements`` is a ``Requirements``, a mapping of answers (the keys of ``mlopsctl.yaml``)
    or the path of an answers file, validated with the defaults filling what it leaves out.
    ``tier_floor`` is the least tier to design for (``"T2"`` as ``mlopsctl design``, ``"T3"`` as
    ``mlopsctl lifecycle``); the rules see it, so everything they decide for that tier is in the
    design. Raises ``AnswersError`` for invalid answers, ``UsageError`` for an unknown tier
    floor, ``RuleAbort`` when the requirements hit an abort rule, and ``RuleConflictError`` when
    ``strict`` and two rules set one choice differently (without ``strict`` conflicts are listed
    in ``design.conflicts`` and ``design.warnings``).
    """
    from mlopsctl.rules.engine import evaluate

    if not isinstance(requirements, Requirements):
        requirements = load_requirements(requirements, defaults=True)
    return evaluate(requirements, strict=strict, tier_floor=tier_floor)


def generate(
    requirements: Requirements | Mapping[str, Any],
    destination: Path | str,
    *,
    force: bool = False,
    strict: bool = False,
    tier_floor: str | None = None,
) -> GenerationResult:
    """Assess the requirements (at ``tier_floor`` at least, see ``assess``) and generate the
    repository at ``destination``, all or nothing."""
    from mlopsctl.render import generate as _generate

    design = assess(requirements, strict=strict, tier_floor=tier_floor)
    return _generate(design, Path(destination), force=force)
