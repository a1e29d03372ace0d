"""Prometheus predicates: rule files are well-formed, their PromQL parses, their unit tests pass."""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlopsctl.checks._engine import Context, Hit, predicate
from mlopsctl.checks._model import CheckSpec
from mlopsctl.checks._repo import Repo, SourceFile, read_bounded

if TYPE_CHECKING:
    from mlopsctl.checks._isolated import Outcome


_GROUP_KEYS = {"name", "interval", "limit", "rules", "query_offset", "labels"}
_RULE_KEYS = {"record", "alert", "expr", "for", "keep_firing_for", "labels", "annotations"}
_DURATION = re.compile(r"^((\d+)(y|w|d|h|m|s|ms))+$")
_METRIC_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")


def is_rule_doc(doc: Any) -> bool:
    groups = doc.get("groups") if isinstance(doc, dict) else None
    return (
        isinstance(groups, list)
        and bool(groups)
        and all(isinstance(g, dict) and "rules" in g for g in groups)
    )


def rule_groups(ctx: Context) -> Iterator[tuple[SourceFile, int, tuple[Any, ...], dict[str, Any]]]:
    """(file, document, key path, groups document) for rule files and PrometheusRule specs."""
    for f in ctx.repo.data_files():
        if not f.is_yaml:
            continue
        for i, doc in enumerate(f.docs):
            if is_rule_doc(doc):
                yield f, i, (), doc
    for obj in ctx.repo.objects("PrometheusRule"):
        s = obj.data.get("spec")
        if isinstance(s, dict):
            yield obj.file, obj.doc, (*obj.base, "spec"), s


def _structure(groups_doc: dict[str, Any]) -> Iterator[tuple[tuple[Any, ...], str]]:
    groups = groups_doc.get("groups")
    if not isinstance(groups, list):
        yield ("groups",), "groups must be a list"
        return
    names: set[str] = set()
    for gi, g in enumerate(groups):
        gp: tuple[Any, ...] = ("groups", gi)
        if not isinstance(g, dict):
            yield gp, "a group must be a mapping"
            continue
        for k in sorted(set(g) - _GROUP_KEYS):
            yield (*gp, k), f"group: unknown field {k!r}"
        name = g.get("name")
        if not isinstance(name, str) or not name:
            yield gp, "group without a name"
        elif name in names:
            yield (*gp, "name"), f"group name {name!r} repeated"
        else:
            names.add(name)
        if "interval" in g and not _DURATION.match(str(g["interval"])):
            yield (*gp, "interval"), f"interval {g['interval']!r} is not a duration"
        rules = g.get("rules")
        if not isinstance(rules, list):
            yield (*gp, "rules"), "rules must be a list"
            continue
        for ri, r in enumerate(rules):
            rp = (*gp, "rules", ri)
            if not isinstance(r, dict):
                yield rp, "a rule must be a mapping"
                continue
            for k in sorted(set(r) - _RULE_KEYS):
                yield (*rp, k), f"rule: unknown field {k!r}"
            if ("alert" in r) == ("record" in r):
                yield rp, "a rule has exactly one of 'alert' and 'record'"
            if "record" in r and not _METRIC_NAME.match(str(r["record"])):
                yield (*rp, "record"), f"record {r['record']!r} is not a valid metric name"
            if not isinstance(r.get("expr"), str | int | float) or str(r.get("expr")).strip() == "":
                yield rp, "rule without an 'expr'"
            for key in ("for", "keep_firing_for"):
                if key in r and not _DURATION.match(str(r[key])):
                    yield (*rp, key), f"{key} {r[key]!r} is not a duration"
            if "record" in r and ("for" in r or "annotations" in r):
                yield rp, "a recording rule takes no 'for' or 'annotations'"
            for key in ("labels", "annotations"):
                m = r.get(key)
                if m is None:
                    continue
                if not isinstance(m, dict):
                    yield (*rp, key), f"{key} must be a mapping"
                    continue
                for lk, lv in m.items():
                    if not _LABEL_NAME.match(str(lk)):
                        yield (*rp, key, str(lk)), f"{key}: {lk!r} is not a valid label name"
                    if not isinstance(lv, str):
                        yield (*rp, key, str(lk)), f"{key}: value of {lk!r} must be a string"


_PROMTOOL_LINE = re.compile(r"^(?P<file>.+?): (?P<line>\d+):(?P<col>\d+): (?P<msg>.*)$")
_PROMTOOL_YAML = re.compile(r"^\s+line (?P<line>\d+): (?P<msg>.*)$")


PROMTOOL_TIME_LIMIT = 120.0  # seconds; MLOPSCTL_CHECK_TIMEOUT overrides it


def _promtool(args: list[str]) -> Outcome:
    """``promtool ARGS`` with a scratch working directory, a minimal environment and a time
    limit (see ``mlopsctl.checks._isolated``)."""
    from mlopsctl.checks._isolated import program, run, scratch_dir, time_limit

    with scratch_dir("mlopsctl-promtool-") as tmp:
        return run(
            [program("promtool") or "promtool", *args],
            tmp,
            limit=time_limit(PROMTOOL_TIME_LIMIT),
        )


def promtool_check(files: dict[str, tuple[str, int]]) -> Iterator[Hit]:
    """Run ``promtool check rules`` once over ``files`` (absolute path -> (repo path, line
    offset))."""
    proc = _promtool(["check", "rules", "--", *files])
    if proc.timed_out:
        for rel in sorted({rel for rel, _ in files.values()}):
            yield Hit(rel, None, proc.timeout_message("promtool check rules"))
        return
    if proc.returncode == 0:
        return
    current: str | None = None
    reported = False
    for raw in (proc.stderr + "\n" + proc.stdout).splitlines():
        m = _PROMTOOL_LINE.match(raw)
        if m and m.group("file") in files:
            rel, offset = files[m.group("file")]
            yield Hit(rel, int(m.group("line")) + offset, f"promtool: {m.group('msg')}")
            reported = True
            continue
        head = raw.partition(": ")
        if head[0] in files and head[2]:
            current = head[0]
            rel, offset = files[current]
            if not head[2].startswith("yaml: unmarshal errors"):
                yield Hit(rel, None, f"promtool: {head[2]}")
                reported = True
            continue
        m2 = _PROMTOOL_YAML.match(raw)
        if m2 and current is not None:
            rel, offset = files[current]
            yield Hit(rel, int(m2.group("line")) + offset, f"promtool: {m2.group('msg')}")
            reported = True
    if not reported:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["failed"]
        for rel, _ in set(files.values()):
            yield Hit(rel, None, f"promtool: {tail[0]}")


@predicate(slow=True)
def prometheus_rules(ctx: Context, spec: CheckSpec) -> Iterable[Hit]:
    import yaml

    found = list(rule_groups(ctx))
    tests = rule_test_files(ctx)
    if not found and not tests:
        return
    structural: list[Hit] = []
    for f, doc, base, groups in found:
        for path, msg in _structure(groups):
            structural.append(Hit(f.rel, f.line_of(doc, base + path), msg))
    yield from structural
    from mlopsctl.checks._isolated import program

    if program("promtool") is None:
        ctx.note(
            spec.id,
            "PromQL expressions not parsed and rule unit tests not run: promtool is not on PATH "
            "(structure checked only)",
        )
        return
    with tempfile.TemporaryDirectory(prefix="mlopsctl-promtool-") as tmp:
        files: dict[str, tuple[str, int]] = {}
        extracted: dict[str, int | None] = {}  # temp file -> line of the PrometheusRule's spec
        for n, (f, doc_index, base, groups) in enumerate(found):
            if base == () and len(f.docs) == 1:
                files[os.path.abspath(f.path)] = (f.rel, 0)
                continue
            spec_file = os.path.join(tmp, f"{n}.yaml")
            with open(spec_file, "w", encoding="utf-8") as out:
                yaml.safe_dump({"groups": groups.get("groups")}, out, sort_keys=False)
            files[spec_file] = (f.rel, 0)
            extracted[spec_file] = f.line_of(doc_index, base)
        bad = {h.path for h in structural}
        files = {k: v for k, v in files.items() if v[0] not in bad}
        for t in tests:
            yield from promtool_test(t, ctx.repo)
        if not files:
            return
        by_rel_extracted = {files[k][0]: line for k, line in extracted.items() if k in files}
        for h in promtool_check(files):
            if h.path in by_rel_extracted:  # the line refers to the extracted spec
                yield Hit(h.path, by_rel_extracted[h.path], h.message)
            else:
                yield h


def rule_test_files(ctx: Context) -> list[SourceFile]:
    """promtool unit-test files: ``rule_files`` and ``tests`` at the top."""
    return [
        f
        for f in ctx.repo.data_files()
        if f.is_yaml
        and len(f.docs) == 1
        and isinstance(f.docs[0], dict)
        and isinstance(f.docs[0].get("rule_files"), list)
        and isinstance(f.docs[0].get("tests"), list)
    ]


def promtool_test(f: SourceFile, repo: Repo) -> Iterator[Hit]:
    """``promtool test rules FILE`` (run beside the file: rule_files are relative to it). The
    outcome is cached by the contents of the test file and its rule files, and the promtool
    binary: evaluating alerts over time takes a few hundred milliseconds. Not run when a rule
    file is not one of the repository's files (outside it, a device, a FIFO, too large)."""
    from mlopsctl.checks.sync import cached

    doc = f.docs[0] if f.docs and isinstance(f.docs[0], dict) else {}
    for name in doc.get("rule_files") or []:
        try:
            target = (f.path.parent / str(name)).resolve()
            exists = target.exists()
        except (OSError, ValueError, RuntimeError):  # a NUL byte, a symlink loop
            target, exists = f.path.parent, True
        rel = target.relative_to(repo.root).as_posix() if target.is_relative_to(repo.root) else ""
        rule = repo.get(rel)
        if exists and (rule is None or rule.unread is not None):
            message = f"rule file {name} is not a file of the repository that validate reads"
            yield Hit(f.rel, None, f"promtool test rules not run: {message}")
            return

    result = cached(
        f"promtool-test-{_promtool_test_key(f)}",
        lambda: _promtool_test(f),
        valid=lambda r: isinstance(r, str),
        keep=lambda r: isinstance(r, str),  # not a time limit: that may be the machine's
    )
    if isinstance(result, dict):
        yield Hit(f.rel, None, result["timeout"])
    elif result:
        yield Hit(f.rel, None, f"promtool test rules: {result}")


def _promtool_test_key(f: SourceFile) -> str:
    import hashlib

    from mlopsctl.checks._isolated import program

    h = hashlib.sha256(os.path.abspath(f.path).encode() + b"\0" + (f.read_bytes() or b""))
    binary = Path(program("promtool") or "promtool")
    try:
        st = binary.stat()
        h.update(f"{binary}:{st.st_size}:{st.st_mtime_ns}".encode())
    except OSError:
        h.update(b"no promtool")
    doc = f.docs[0] if f.docs and isinstance(f.docs[0], dict) else {}
    for name in doc.get("rule_files") or []:
        raw = read_bounded(f.path.parent / str(name))
        h.update(str(name).encode() + b"\0" + (raw if raw is not None else b"missing") + b"\0")
    return h.hexdigest()


def _promtool_test(f: SourceFile) -> str | dict[str, str]:
    """What failed, "" when every test passes, or {"timeout": message}. promtool reads the
    test's ``rule_files`` relative to the test file."""
    proc = _promtool(["test", "rules", "--", os.path.abspath(f.path)])
    if proc.timed_out:
        return {"timeout": proc.timeout_message("promtool test rules")}
    if proc.returncode == 0:
        return ""
    lines = [ln.strip() for ln in (proc.stdout + "\n" + proc.stderr).splitlines()]
    lines = [ln for ln in lines if ln and not ln.startswith("Unit Testing")]
    start = next((i for i, ln in enumerate(lines) if "FAILED" in ln), 0)
    detail = " ".join(lines[start : start + 12])
    if len(detail) > 400:
        detail = detail[:397] + "..."
    return detail or "failed"
