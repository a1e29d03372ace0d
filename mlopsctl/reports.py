"""The ``--format json`` documents of ``init``, ``update`` and ``check``: what was (or would be)
written, for machines.

Each document is versioned as ``assess --format json`` is: a top-level ``schema_version`` (an
integer raised on any change a reader could trip over) and a ``command`` naming the command that
wrote it. ``docs/update.md`` and ``docs/api.md`` describe the fields.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mlopsctl.design import StackDesign
    from mlopsctl.update import UpdatePlan

REPORT_SCHEMA_VERSION = 1

DECIDED = ("tracking", "serving", "rollout", "orchestration", "monitoring")


def decided(design: StackDesign) -> dict[str, str]:
    """The few choices a reader wants first, from the design."""
    stack = design.stack.model_dump()
    return {key: str(stack[key]) for key in DECIDED if key in stack}


def _envelope(command: str, destination: Path, *, dry_run: bool, written: bool) -> dict[str, Any]:
    return {
        "schema_version": REPORT_SCHEMA_VERSION,
        "command": command,
        "destination": str(destination),
        "dry_run": dry_run,
        "written": written,
    }


def init_report(
    design: StackDesign,
    destination: Path,
    files: Sequence[str],
    *,
    existing: frozenset[str] = frozenset(),
    dry_run: bool,
) -> dict[str, Any]:
    """``init``'s document: the decisions and every file written (``created``, or
    ``overwritten`` where ``--force`` replaced a file of that name)."""
    return {
        **_envelope("init", destination, dry_run=dry_run, written=not dry_run),
        "tier": design.tier,
        "decided": decided(design),
        "stack": design.stack.model_dump(),
        "files": [
            {"path": rel, "action": "overwritten" if rel in existing else "created"}
            for rel in sorted(files)
        ],
        "warnings": list(design.warnings),
    }


def update_report(plan: UpdatePlan, *, dry_run: bool, exit_code: int) -> dict[str, Any]:
    """``update``'s document: the decision diff, the version changes and one entry per file
    the update touches, with the exit code the command ends with (3: conflicts left)."""
    return {
        **_envelope(
            "update", plan.destination, dry_run=dry_run, written=not dry_run and _writes(plan)
        ),
        "exit_code": exit_code,
        "answers_uncommitted": plan.answers_uncommitted,
        "decisions": [
            {"section": d.section, "key": d.key, "old": _json(d.old), "new": _json(d.new)}
            for d in plan.decisions
        ],
        "versions": {name: {"old": old, "new": new} for name, (old, new) in plan.versions.items()},
        "files": [
            {
                "path": f.path,
                "action": f.action,
                "renamed_from": f.renamed_from,
                "conflicts": f.conflicts,
                "changes_disk": f.changes_disk,
            }
            for f in plan.files
        ],
        "conflicts": [f.path for f in plan.conflicts],
        "warnings": list(plan.warnings),
    }


def _writes(plan: UpdatePlan) -> bool:
    return bool(plan.changed or plan.internal)


def _json(value: Any) -> Any:
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, Mapping):
        return {str(k): _json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json(v) for v in value]
    return str(value)


def dumps(document: Mapping[str, Any]) -> str:
    import json

    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"
