"""The public Python API: answers in, a typed design, a generated repository, an update plan or a
validation report out. It has the shape of copier's ``run_copy``/``run_update``: one function per
command, and the CLI is a thin shell over them (it parses options, calls one of these, prints).

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

``generate`` (``init``, ``design`` at ``tier_floor="T2"``, ``lifecycle`` at ``"T3"``), ``update``
and ``validate`` are the other commands. Answers go to Requirements in one place
(``load_requirements``) and Requirements to a design in one place (``assess``): every command,
the in-sync check included, goes through these two.

Errors are typed (``mlopsctl.errors``): ``AnswersError`` for invalid answers (exit code 2 in the
CLI), ``RuleAbort`` when an abort rule fires (4; ``exc.rule_id`` names it, ``exc.hint`` says what
to change), ``RuleConflictError`` for conflicting rules under ``strict=True`` (1).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlopsctl.design import StackDesign
from mlopsctl.requirements import Requirements

if TYPE_CHECKING:
    from mlopsctl.checks import Report
    from mlopsctl.render import GenerationResult
    from mlopsctl.update import UpdatePlan

from mlopsctl._assess import Answers, Asker, assess, load_requirements

__all__ = ["Answers", "Asker", "assess", "generate", "load_requirements", "update", "validate"]


def generate(
    requirements: StackDesign | Requirements | Mapping[str, Any] | Path | str,
    destination: Path | str,
    *,
    force: bool = False,
    strict: bool = False,
    tier_floor: str | None = None,
) -> GenerationResult:
    """Assess the requirements (at ``tier_floor`` at least, see ``assess``) and generate the
    repository at ``destination``, all or nothing. A ``StackDesign`` (from ``assess``) is
    generated as it is: ``strict`` and ``tier_floor`` were the assessment's."""
    from mlopsctl.render import generate as _generate

    if isinstance(requirements, StackDesign):
        design = requirements
    else:
        design = assess(requirements, strict=strict, tier_floor=tier_floor)
    return _generate(design, Path(destination), force=force)


def update(
    destination: Path | str,
    *,
    answers: Path | str | None = None,
    sets: list[str] | None = None,
    strict: bool = False,
    dry_run: bool = False,
) -> UpdatePlan:
    """Re-run the rules on the project's answers (its ``mlopsctl.yaml``, then ``answers`` and
    ``sets`` over it) at the tier floor the project was generated with, and regenerate with a
    3-way merge that keeps the user's edits. With ``dry_run`` nothing is written: the plan's
    ``decisions`` are the changed choices and ``file_diff()`` the changed files. Conflicts are in
    ``plan.conflicts``; an unclean git work tree raises ``UsageError``."""
    from mlopsctl.update import update as _update

    extra = Path(answers) if answers is not None else None
    return _update(Path(destination), answers=extra, sets=sets, strict=strict, dry_run=dry_run)


def validate(
    directory: Path | str,
    *,
    select: list[str] | None = None,
    ignore: list[str] | None = None,
    crd_files: list[Path] | None = None,
    exclude: list[str] | None = None,
) -> Report:
    """Check a repository offline (syntax, schemas, policies, consistency, whether the generated
    files still match its answers); ``report.ok`` when there are no findings. ``select`` and
    ``ignore`` take check ids, names or id prefixes."""
    from mlopsctl.checks import validate as _validate

    return _validate(
        Path(directory),
        select=select,
        ignore=ignore,
        crd_files=crd_files or [],
        exclude=exclude or [],
    )
