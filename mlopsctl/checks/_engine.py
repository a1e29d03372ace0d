"""Shared evaluation: load the catalog, run each check's predicate, apply suppressions."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import cached_property
from importlib import import_module
from pathlib import Path
from typing import Any

from mlopsctl.checks._model import CheckSpec, Finding, Note, Report, load_catalog
from mlopsctl.checks._repo import Repo, SourceFile

PREDICATE_MODULES = (
    "mlopsctl.checks.syntax",
    "mlopsctl.checks.kubernetes",
    "mlopsctl.checks.kserve",
    "mlopsctl.checks.spark",
    "mlopsctl.checks.seldon",
    "mlopsctl.checks.grafana",
    "mlopsctl.checks.prometheus",
    "mlopsctl.checks.ci",
    "mlopsctl.checks.kfp",
    "mlopsctl.checks.answers_file",
    "mlopsctl.checks.pod_security",
    "mlopsctl.checks.secrets",
    "mlopsctl.checks.governance",
    "mlopsctl.checks.consistency",
    "mlopsctl.checks.sync",
)
SUPPRESSION_CHECK = "MLV004"


@dataclass(frozen=True)
class Hit:
    """What a predicate reports: a file (relative path), a line and a message."""

    path: str
    line: int | None
    message: str


Predicate = Callable[["Context", CheckSpec], Iterable[Hit]]


@dataclass(frozen=True)
class _Registered:
    fn: Predicate
    slow: bool


_PREDICATES: dict[str, _Registered] = {}


def predicate(*, slow: bool = False) -> Callable[[Predicate], Predicate]:
    """Register a predicate under its function name. ``slow`` ones (external tools) run in
    threads beside the rest."""

    def wrap(fn: Predicate) -> Predicate:
        _PREDICATES[fn.__name__] = _Registered(fn, slow)
        return fn

    return wrap


def predicates() -> dict[str, _Registered]:
    for module in PREDICATE_MODULES:
        import_module(module)
    return _PREDICATES


@dataclass
class Context:
    """What predicates see: the repository, the design (when there is one) and user CRDs."""

    repo: Repo
    crd_files: list[Path] = field(default_factory=list)
    notes: list[Note] = field(default_factory=list)

    def note(self, check: str, message: str) -> None:
        n = Note(check, message)
        if n not in self.notes:
            self.notes.append(n)

    @cached_property
    def design(self) -> dict[str, Any] | None:
        """``.mlopsctl/design.json`` as data, or None for repositories mlopsctl did not make."""
        from mlopsctl.layout import LayoutError, read_design

        if self.repo.get(".mlopsctl/design.json") is None:
            return None
        try:  # validated by the one reader of .mlopsctl/; the in-sync check reports a bad one
            design = read_design(self.repo.root)
        except LayoutError:
            return None
        return design.model_dump() if design is not None else None

    @cached_property
    def answers(self) -> dict[str, Any] | None:
        f = self.repo.get("mlopsctl.yaml")
        if f is None or not f.docs or not isinstance(f.docs[0], dict):
            return None
        return f.docs[0]

    @property
    def governance_level(self) -> str | None:
        for source in (self.design and self.design.get("requirements"), self.answers):
            if isinstance(source, dict) and isinstance(source.get("governance_level"), str):
                return str(source["governance_level"])
        return None

    def production(self, check: CheckSpec) -> bool:
        """Whether production-only checks apply; notes why a check is skipped otherwise."""
        level = self.governance_level
        if level is None:
            self.note(
                check.id,
                "production-only check skipped: no .mlopsctl/design.json or mlopsctl.yaml says "
                "which governance level applies",
            )
            return False
        return level == "production"


_SUPPRESS = re.compile(r"mlopsctl:\s*ignore\[([^\]]*)\]([^\n]*)")
_COMMENT_END = re.compile(r"\s*(-->|\*/)\s*$")


@dataclass(frozen=True)
class Suppression:
    ids: frozenset[str]
    reason: str
    line: int


def suppressions(f: SourceFile) -> list[Suppression]:
    text = f.text
    if text is None or "mlopsctl:" not in text:
        return []
    out = []
    for m in _SUPPRESS.finditer(text):
        before = text[text.rfind("\n", 0, m.start()) + 1 : m.start()].strip()
        if not before.endswith(("#", "//", "<!--", "/*", ";", "--")):
            continue  # not in a comment: documentation that quotes the syntax
        ids = frozenset(p.strip() for p in m.group(1).split(",") if p.strip())
        reason = _COMMENT_END.sub("", m.group(2)).strip()
        out.append(Suppression(ids, reason, f.line_at(m.start())))
    return out


@predicate()
def invalid_suppression(ctx: Context, spec: CheckSpec) -> Iterable[Hit]:
    known = {s.id for s in load_catalog()}
    for f in ctx.repo.files:
        for s in suppressions(f):
            unknown = sorted(s.ids - known)
            if not s.ids:
                msg = "suppression names no check id"
            elif unknown:
                msg = f"suppression names unknown check {', '.join(unknown)}"
            elif not s.reason:
                msg = f"suppression of {', '.join(sorted(s.ids))} gives no reason"
            else:
                continue
            yield Hit(f.rel, s.line, msg)


def _run_predicate(fn: Predicate, ctx: Context, spec: CheckSpec) -> list[Hit]:
    return list(fn(ctx, spec))


def select_checks(
    select: Iterable[str] | None = None, ignore: Iterable[str] | None = None
) -> list[CheckSpec]:
    """Checks to run; ``select``/``ignore`` take ids (``MLV203``), names or id prefixes
    (``MLV2``). Unknown selectors are a usage error."""
    from mlopsctl.errors import UsageError

    catalog = list(load_catalog())

    def matches(spec: CheckSpec, sel: str) -> bool:
        s = sel.strip()
        return (
            spec.id == s.upper()
            or spec.name == s
            or (s.upper().startswith("MLV") and spec.id.startswith(s.upper()))
        )

    for opt, values in (("--select", select), ("--ignore", ignore)):
        for sel in values or []:
            if not any(matches(spec, sel) for spec in catalog):
                raise UsageError(
                    f"{opt} {sel}: no check has that id or name",
                    hint="mlopsctl validate --list-checks shows every check",
                )
    chosen = [s for s in catalog if not select or any(matches(s, x) for x in select)]
    return [s for s in chosen if not any(matches(s, x) for x in ignore or [])]


def run(
    root: Path,
    *,
    select: Iterable[str] | None = None,
    ignore: Iterable[str] | None = None,
    crd_files: Iterable[Path] = (),
    exclude: Iterable[str] = (),
) -> Report:
    specs = select_checks(select, ignore)
    repo = Repo.scan(root, exclude=list(exclude))
    ctx = Context(repo=repo, crd_files=list(crd_files))
    registry = predicates()
    report = Report(root=root, checks=specs)
    raw: list[Finding] = []

    def collect(spec: CheckSpec, hits: Iterable[Hit]) -> None:
        for h in hits:
            raw.append(Finding(spec.id, h.path, h.message, h.line, spec.remediation, spec.severity))

    pending: list[tuple[CheckSpec, Future[list[Hit]]]] = []
    with ThreadPoolExecutor(max_workers=4) as pool:
        for spec in specs:
            reg = registry.get(spec.predicate)
            if reg is None:
                from mlopsctl.errors import CatalogError

                raise CatalogError(f"check {spec.id} names unknown predicate {spec.predicate}")
            if reg.slow:
                pending.append((spec, pool.submit(_run_predicate, reg.fn, ctx, spec)))
        try:
            for spec in specs:
                reg = registry[spec.predicate]
                if not reg.slow:
                    collect(spec, reg.fn(ctx, spec))
            for spec, fut in pending:
                collect(spec, fut.result())
        except BaseException:  # Ctrl-C: the slow checks' children go now, not at their limits
            from mlopsctl.checks._isolated import stop_all

            for _, fut in pending:
                fut.cancel()
            stop_all()
            raise

    by_file: dict[str, list[Suppression]] = {}
    kept: list[Finding] = []
    for finding in sorted(set(raw), key=Finding.sort_key):
        if finding.check != SUPPRESSION_CHECK:
            if finding.path not in by_file:
                f = repo.get(finding.path)
                by_file[finding.path] = suppressions(f) if f else []
            if any(finding.check in s.ids and s.reason for s in by_file[finding.path]):
                report.suppressed += 1
                continue
        kept.append(finding)
    report.findings = kept
    report.notes = sorted(ctx.notes, key=lambda n: (n.check, n.message))
    report.files_checked = len(repo.files)
    return report


def report_dict(report: Report) -> dict[str, Any]:
    """The ``--format json`` document."""
    return {
        "root": str(report.root),
        "ok": report.ok,
        "files_checked": report.files_checked,
        "checks_run": [s.id for s in report.checks],
        "suppressed": report.suppressed,
        "findings": [
            {
                "check": f.check,
                "name": _names()[f.check],
                "severity": f.severity,
                "path": f.path,
                "line": f.line,
                "message": f.message,
                "remediation": f.remediation,
            }
            for f in report.findings
        ],
        "notes": [{"check": n.check, "message": n.message} for n in report.notes],
    }


def _names() -> dict[str, str]:
    return {s.id: s.name for s in load_catalog()}


def dumps(data: Any) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"
