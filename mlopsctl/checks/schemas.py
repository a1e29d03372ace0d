"""Schema predicates: Kubernetes, KServe, user CRDs, Grafana, Prometheus, CI, KFP, answers.

Every JSON Schema validator is built once per kind and version and reused for every document.
"""

from __future__ import annotations

import json
import os
import re
import sys
import tempfile
from collections.abc import Iterable, Iterator
from functools import cache, lru_cache
from importlib.util import find_spec
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlopsctl.checks._engine import Context, Hit, predicate
from mlopsctl.checks._jsonschema import SchemaValidator
from mlopsctl.checks._model import CheckSpec
from mlopsctl.checks._repo import KubeObject, Repo, SourceFile, read_bounded

SHIPPED = Path(__file__).resolve().parent.parent / "schemas" / "validate"
MAX_ERRORS_PER_OBJECT = 10
KSERVE_API = "serving.kserve.io/v1beta1"

if TYPE_CHECKING:
    from mlopsctl.checks._isolated import Outcome


def _path(parts: Iterable[Any]) -> str:
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "(document)"


def _short(value: Any, limit: int = 60) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _message(error: Any) -> str:
    """A one-line message for a jsonschema error: where, and what is wrong."""
    where = _path(error.absolute_path)
    v = error.validator
    if v == "additionalProperties":
        named = re.match(r"(.+) (?:does|do) not match any of the regexes: (.+)$", error.message)
        if named:  # the keys of a map must match patternProperties
            return f"{where}: key {named.group(1)} does not match {named.group(2)}"
        extra = re.findall(r"'([^']+)' (?:was|were) unexpected", error.message)
        names = extra or [error.message]
        return f"{where}: unknown field {', '.join(repr(n) for n in names)}"
    if v == "required":
        return f"{where}: {error.message}"
    if v in {"type", "enum", "const", "pattern", "minimum", "maximum", "minLength"}:
        return f"{where}: {_short(error.instance)} {error.message.split(' ', 1)[-1][:120]}"
    if v in {"oneOf", "anyOf"}:
        return f"{where}: {_short(error.instance)} matches none of the allowed forms"
    return f"{where}: {error.message[:160]}"


def _errors(validator: Any, instance: Any) -> list[Any]:
    """Errors sorted by path; a oneOf/anyOf error is replaced by the errors of the branch that
    came closest (fewest errors, ignoring branches that fail on a discriminating const/enum)."""
    out: list[Any] = []
    for err in validator.iter_errors(instance):
        out.extend(_closest(err))
    out.sort(key=lambda e: list(map(str, e.absolute_path)))
    return out[:MAX_ERRORS_PER_OBJECT]


def _closest(err: Any) -> list[Any]:
    if err.validator not in {"oneOf", "anyOf"} or not err.context:
        return [err]
    branches: dict[Any, list[Any]] = {}
    for sub in err.context:
        branches.setdefault(sub.schema_path[0] if sub.schema_path else None, []).append(sub)
    if not isinstance(err.instance, dict):
        return [err]

    def score(errs: list[Any]) -> tuple[int, int]:
        discriminated = any(
            e.validator in {"const", "enum"} and len(e.relative_path) == 1 for e in errs
        )
        return (1 if discriminated else 0, len(errs))

    best = min(branches.values(), key=score)
    return [e for sub in best for e in _closest(sub)]


def _object_hits(obj: KubeObject, validator: Any, what: str) -> Iterator[Hit]:
    for err in _errors(validator, obj.data):
        parts = tuple(err.absolute_path)
        # missing fields are reported at their parent, unknown ones at themselves
        if err.validator == "additionalProperties":
            extra = re.findall(r"'([^']+)' (?:was|were) unexpected", err.message)
            if extra:
                parts = (*parts, extra[0])
        yield Hit(obj.file.rel, obj.line(*parts), f"{obj.label()}: {what}: {_message(err)}")


# --- Kubernetes ---------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _kube_schema_dir() -> Path | None:
    spec = find_spec("kubernetes_validate")
    if spec is None or not spec.submodule_search_locations:
        return None
    base = Path(next(iter(spec.submodule_search_locations))) / "kubernetes-json-schema"
    if not base.is_dir():
        return None

    def version(p: Path) -> tuple[int, ...]:
        return tuple(int(x) for x in re.findall(r"\d+", p.name.split("-")[0]))

    strict = [p for p in base.iterdir() if p.name.endswith("-local-strict")]
    return max(strict, key=version) if strict else None


@lru_cache(maxsize=1)
def _kube_definitions() -> dict[str, Any]:
    schema_dir = _kube_schema_dir()
    assert schema_dir is not None
    data: dict[str, Any] = json.loads((schema_dir / "_definitions.json").read_text("utf-8"))
    return data


def _inline(node: Any, defs: dict[str, Any], stack: tuple[str, ...] = ()) -> Any:
    """Replace ``$ref``s to the shared definitions by their content (descriptions dropped), so
    that validating a document follows no references: about three times faster. A recursive
    reference (only in CustomResourceDefinition's own schema) stays a ``$ref``."""
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and "#/$defs/" in ref:
            name = ref.split("#/$defs/", 1)[1]
            if name in stack or name not in defs:
                return node
            target = _inline(defs[name], defs, (*stack, name))
            rest = {
                k: _inline(v, defs, stack)
                for k, v in node.items()
                if k not in {"$ref", "description"}
            }
            return {**target, **rest} if rest else target
        return {k: _inline(v, defs, stack) for k, v in node.items() if k != "description"}
    if isinstance(node, list):
        return [_inline(v, defs, stack) for v in node]
    return node


@cache
def kube_validator(api_version: str, kind: str) -> Any | None:
    """The compiled validator for one built-in kind and version, or None when unknown. Built
    once per kind and version and reused for every document."""
    schema_dir = _kube_schema_dir()
    if schema_dir is None:
        return None
    group, _, version = api_version.rpartition("/")
    prefix = f"{group.split('.')[0]}-" if group else ""
    path = schema_dir / f"{kind.lower()}-{prefix}{version}.json"
    if not path.is_file():
        return None
    definitions = _kube_definitions()
    schema = _inline(json.loads(path.read_text(encoding="utf-8")), definitions["$defs"])

    def registry() -> Any:
        from referencing import Registry, Resource

        return Resource.from_contents(definitions) @ Registry()

    return SchemaValidator(schema, registry)


def _builtin_group(group: str) -> bool:
    return "." not in group or group.endswith(".k8s.io")


@predicate()
def kubernetes_schema(ctx: Context, spec: CheckSpec) -> Iterable[Hit]:
    objects = [o for o in ctx.repo.kube_objects if _builtin_group(o.group)]
    if not objects:
        return
    if _kube_schema_dir() is None:
        ctx.note(
            spec.id,
            "Kubernetes manifests not checked against the Kubernetes schemas: install "
            "kubernetes-validate (pip install 'mlopsctl[validate]')",
        )
        return
    version = _kube_schema_dir().name.split("-")[0]  # type: ignore[union-attr]
    for obj in objects:
        validator = kube_validator(obj.api_version, obj.kind)
        if validator is None:
            yield Hit(
                obj.file.rel,
                obj.line("kind"),
                f"{obj.label()}: {obj.api_version} {obj.kind} is not a kind of Kubernetes "
                f"{version} (removed or misspelt API version?)",
            )
            continue
        yield from _object_hits(obj, validator, "Kubernetes schema")


# --- KServe and user CRDs -----------------------------------------------------------------------


@lru_cache(maxsize=1)
def kserve_validator() -> Any:
    schema = json.loads((SHIPPED / "kserve" / "inferenceservice-v1beta1.json").read_text("utf-8"))
    return SchemaValidator(schema)


@predicate()
def inferenceservice_schema(ctx: Context, spec: CheckSpec) -> Iterable[Hit]:
    for obj in ctx.repo.objects("InferenceService"):
        if obj.group != "serving.kserve.io":
            continue
        if obj.api_version != KSERVE_API:
            yield Hit(
                obj.file.rel,
                obj.line("apiVersion"),
                f"{obj.label()}: apiVersion {obj.api_version}; InferenceService is served as "
                f"{KSERVE_API}",
            )
            continue
        yield from _object_hits(obj, kserve_validator(), "InferenceService schema")


@lru_cache(maxsize=32)
def _crd_validators(paths: tuple[Path, ...]) -> dict[tuple[str, str], Any]:
    from mlopsctl.checks._crd import load_crd_file, root_schema

    out = {}
    for path in paths:
        for key, openapi in load_crd_file(path).items():
            schema = root_schema(openapi)
            out[key] = SchemaValidator(schema)
    return out


def load_user_crds(paths: Iterable[Path]) -> dict[tuple[str, str], Any]:
    """Validators for the user's CRDs; raises UsageError for a bad file (before any check)."""
    return _crd_validators(tuple(Path(p) for p in paths))


@predicate()
def custom_resource_schema(ctx: Context, spec: CheckSpec) -> Iterable[Hit]:
    validators = load_user_crds(ctx.crd_files)
    covered = {"InferenceService", "PrometheusRule"}
    unknown: set[str] = set()
    for obj in ctx.repo.kube_objects:
        if _builtin_group(obj.group):
            continue
        validator = validators.get((obj.api_version, obj.kind))
        if validator is not None:
            yield from _object_hits(obj, validator, "CRD schema")
        elif obj.kind not in covered:
            unknown.add(f"{obj.api_version} {obj.kind}")
    for item in sorted(unknown):
        ctx.note(spec.id, f"{item}: no schema known; pass its CRD with --crd FILE to check it")


# --- Grafana ------------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _grafana() -> dict[str, Any]:
    def load(name: str) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(
            (SHIPPED / "grafana" / f"{name}.jsonschema.json").read_text("utf-8")
        )
        return data

    out: dict[str, Any] = {}
    dash = load("dashboard")
    # The schema's own description says "Nulls currently appear here when serializing -Infinity
    # to JSON": Grafana writes the base threshold step as {"value": null}. Accept that.
    dash["definitions"]["Threshold"]["properties"]["value"]["type"] = ["number", "null"]
    out["dashboard"] = SchemaValidator(dash)
    prom = load("prometheus")
    out["prometheus"] = SchemaValidator(prom)
    for panel in ("timeseries", "stat"):
        s = load(panel)
        defs = s["definitions"]
        dialect = s["$schema"]
        options = {"$schema": dialect, "$ref": "#/definitions/Options", "definitions": defs}
        field = {"$schema": dialect, "$ref": "#/definitions/FieldConfig", "definitions": defs}
        out[f"{panel}.options"] = SchemaValidator(options)
        if "FieldConfig" in defs:
            out[f"{panel}.custom"] = SchemaValidator(field)
    return out


def dashboard_of(doc: Any) -> tuple[dict[str, Any], tuple[str, ...]] | None:
    """The dashboard model in a JSON document (plain, or the API's ``{"dashboard": ...}``)."""
    if not isinstance(doc, dict):
        return None
    inner = doc.get("dashboard")
    if isinstance(inner, dict) and "panels" in inner:
        return inner, ("dashboard",)
    if "panels" in doc and ("schemaVersion" in doc or "title" in doc):
        return doc, ()
    return None


def dashboards(ctx: Context) -> Iterator[tuple[SourceFile, dict[str, Any], tuple[str, ...]]]:
    for f in ctx.repo.data_files():
        if f.is_json and f.docs:
            found = dashboard_of(f.docs[0])
            if found:
                yield f, found[0], found[1]


def _panels(dash: dict[str, Any]) -> Iterator[tuple[tuple[Any, ...], dict[str, Any]]]:
    for i, p in enumerate(dash.get("panels") or []):
        if isinstance(p, dict):
            yield ("panels", i), p
            for j, q in enumerate(p.get("panels") or []):  # collapsed rows
                if isinstance(q, dict):
                    yield ("panels", i, "panels", j), q


@predicate()
def grafana_dashboard_schema(ctx: Context, spec: CheckSpec) -> Iterable[Hit]:
    for f, dash, base in dashboards(ctx):
        v = _grafana()
        for err in _errors(v["dashboard"], dash):
            yield Hit(f.rel, f.line_of(0, base + tuple(err.absolute_path)), _message(err))
        for path, panel in _panels(dash):
            kind = panel.get("type")
            checks: list[tuple[tuple[Any, ...], Any, Any]] = []
            if f"{kind}.options" in v and "options" in panel:
                checks.append((("options",), v[f"{kind}.options"], panel["options"]))
            custom = ((panel.get("fieldConfig") or {}).get("defaults") or {}).get("custom")
            if f"{kind}.custom" in v and isinstance(custom, dict):
                checks.append((("fieldConfig", "defaults", "custom"), v[f"{kind}.custom"], custom))
            for i, target in enumerate(panel.get("targets") or []):
                if isinstance(target, dict) and "expr" in target:
                    checks.append((("targets", i), v["prometheus"], target))
            for sub, validator, value in checks:
                for err in _errors(validator, value):
                    where = base + path + sub + tuple(err.absolute_path)
                    msg = _message(err)
                    yield Hit(f.rel, f.line_of(0, where), f"{_path(path + sub)}: {msg}")


# --- Prometheus ---------------------------------------------------------------------------------

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


# --- CI workflows -------------------------------------------------------------------------------


@lru_cache(maxsize=4)
def _vendored(name: str) -> Any | None:
    spec = find_spec("check_jsonschema")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = (
        Path(next(iter(spec.submodule_search_locations)))
        / "builtin_schemas"
        / "vendor"
        / f"{name}.json"
    )
    if not path.is_file():
        return None
    schema = json.loads(path.read_text(encoding="utf-8"))
    return SchemaValidator(schema)


def workflow_files(ctx: Context) -> list[SourceFile]:
    return [
        f
        for f in ctx.repo.data_files()
        if f.is_yaml and f.rel.startswith(".github/workflows/") and f.rel.count("/") == 2
    ]


@predicate()
def ci_workflow_schema(ctx: Context, spec: CheckSpec) -> Iterable[Hit]:
    targets = [(f, "github-workflows") for f in workflow_files(ctx)]
    gitlab = ctx.repo.get(".gitlab-ci.yml")
    if gitlab is not None:
        targets.append((gitlab, "gitlab-ci"))
    for f, schema in targets:
        if not f.docs:
            continue
        validator = _vendored(schema)
        if validator is None:
            ctx.note(
                spec.id,
                f"{schema} schema unavailable: install check-jsonschema "
                "(pip install 'mlopsctl[validate]') to check CI files",
            )
            continue
        doc = f.docs[0]
        if schema == "github-workflows" and isinstance(doc, dict) and True in doc:
            # PyYAML reads the key `on` as a YAML 1.1 boolean; workflows mean the string
            doc = {("on" if k is True else k): v for k, v in doc.items()}
        for err in _errors(validator, doc):
            yield Hit(f.rel, f.line_of(0, tuple(err.absolute_path)), _message(err))


# --- KFP ----------------------------------------------------------------------------------------

_KFP_IMPORT = re.compile(r"^\s*(from\s+kfp(\.\w+)*\s+import|import\s+kfp)\b", re.MULTILINE)
_PIPELINE_DECORATOR = re.compile(r"^\s*@(dsl\.|kfp\.dsl\.)?pipeline\b", re.MULTILINE)


def pipeline_files(ctx: Context) -> list[SourceFile]:
    return [
        f
        for f in ctx.repo.python_files()
        if _KFP_IMPORT.search(f.text or "") and _PIPELINE_DECORATOR.search(f.text or "")
    ]


@predicate(slow=True)
def kfp_pipeline_compiles(ctx: Context, spec: CheckSpec) -> Iterable[Hit]:
    files = pipeline_files(ctx)
    if not files:
        return
    if find_spec("kfp") is None:
        ctx.note(spec.id, "KFP pipelines not compiled: the kfp package is not importable here")
        return
    by_path = {os.path.abspath(f.path): f for f in files}
    from mlopsctl.checks.sync import cached

    result = cached(
        f"kfp-{_compile_key(ctx, files)}",
        lambda: _compile(by_path),
        valid=lambda r: _valid_compile_result(r, by_path),
        # a crash or a time limit may be the machine's, not the pipeline's
        keep=lambda r: "crash" not in r and "timeout" not in r,
    )
    if "crash" in result:
        for f in files:
            yield Hit(f.rel, None, f"pipeline compilation crashed: {result['crash']}")
        return
    if "timeout" in result:
        for f in files:
            yield Hit(f.rel, None, result["timeout"])
        return
    if "no_kfp" in result:
        ctx.note(spec.id, f"KFP pipelines not compiled: {result['no_kfp']}")
        return
    for item in result["results"]:
        first = str(item["error"]).splitlines()[0][:300]
        yield Hit(by_path[item["path"]].rel, item["line"], f"KFP compile failed: {first}")


KFP_TIME_LIMIT = 300.0  # seconds; MLOPSCTL_CHECK_TIMEOUT overrides it


def _compile_key(ctx: Context, files: list[SourceFile]) -> str:
    """What a compilation depends on: the compiling module, the interpreter, the kfp version,
    the pipeline files and the Python files in their directories (which they may import), by
    content and place."""
    import hashlib

    from mlopsctl.checks import kfp_compile

    h = hashlib.sha256(Path(kfp_compile.__file__).read_bytes() + b"\0")
    h.update(sys.executable.encode() + b"\0" + sys.version.encode() + b"\0")
    kfp = find_spec("kfp")  # its version file, read directly: importlib.metadata is slow
    for location in (kfp and kfp.submodule_search_locations) or ["no kfp"]:
        try:
            h.update(location.encode() + (Path(location) / "version.py").read_bytes())
        except OSError:
            h.update(location.encode())
    python = ctx.repo.python_files()
    for f in files:
        h.update(os.path.abspath(f.path).encode() + b"\0")
        here = f.path.parent
        # the Python files beside the pipeline and below its directory (packages it imports)
        beside = sorted({p.path for p in python if p.path.parent == here or here in p.path.parents})
        beside += sorted(set(here.glob("*.py")) - set(beside))  # ones validate leaves out
        for side in beside:
            try:
                h.update(str(side.relative_to(here)).encode() + b"\0" + side.read_bytes() + b"\0")
            except (OSError, ValueError):
                h.update(str(side).encode() + b"\0unreadable\0")
    return h.hexdigest()


def _valid_compile_result(value: Any, by_path: dict[str, SourceFile]) -> bool:
    """What ``mlopsctl.checks.kfp_compile`` prints, for exactly these files: the child runs the
    pipelines' code, and a cache entry is trusted no further than its key."""
    if not isinstance(value, dict) or len(value) != 1:
        return False
    if "no_kfp" in value:
        return isinstance(value["no_kfp"], str)
    results = value.get("results")
    return isinstance(results, list) and all(
        isinstance(r, dict)
        and set(r) == {"path", "line", "error"}
        and r["path"] in by_path
        and (r["line"] is None or (type(r["line"]) is int and r["line"] > 0))
        and isinstance(r["error"], str)
        for r in results
    )


def _compile(by_path: dict[str, SourceFile]) -> dict[str, Any]:
    """Compile the pipelines in the isolated child (``mlopsctl.checks.kfp_compile``)."""
    from mlopsctl.checks._isolated import python, scratch_dir, time_limit

    with scratch_dir("mlopsctl-kfp-") as tmp:
        outcome = python(
            "mlopsctl.checks.kfp_compile", list(by_path), tmp, limit=time_limit(KFP_TIME_LIMIT)
        )
    if outcome.timed_out:
        return {"timeout": outcome.timeout_message("compiling the pipeline")}
    result = outcome.last_json()
    if not _valid_compile_result(result, by_path):
        return {"crash": outcome.detail()}
    return dict(result)


# --- mlopsctl.yaml ------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _answers_validator() -> Any:
    # Shipped with the package (``make docs`` writes it; tests keep it current).
    path = Path(__file__).resolve().parent.parent / "schemas" / "answers.schema.json"
    schema = json.loads(path.read_text(encoding="utf-8"))
    return SchemaValidator(schema)


@lru_cache(maxsize=1)
def _yaml12_loader() -> Any:
    """PyYAML's C loader reading scalars as mlopsctl reads the answers file (ruamel.yaml, YAML
    1.2): only true/false are booleans (`no` stays a string), `1e+20` is a float, `017` is
    seventeen and `0o17` fifteen, and `190:20:30` is a string."""
    import yaml

    class Loader(yaml.CSafeLoader):
        pass

    replaced = ("tag:yaml.org,2002:bool", _INT, _FLOAT)
    Loader.yaml_implicit_resolvers = {
        k: [(tag, rx) for tag, rx in v if tag not in replaced]
        for k, v in yaml.CSafeLoader.yaml_implicit_resolvers.items()
    }
    Loader.add_implicit_resolver(
        "tag:yaml.org,2002:bool",
        re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
        list("tTfF"),
    )
    Loader.add_implicit_resolver(
        _INT,
        # at least one digit: "-_" or "0x_" (which mlopsctl refuses) stay strings here
        re.compile(
            r"^(?:[-+]?0b[0-1_]*[0-1][0-1_]*|[-+]?0o[0-7_]*[0-7][0-7_]*"
            r"|[-+]?[0-9_]*[0-9][0-9_]*|[-+]?0x[0-9a-fA-F_]*[0-9a-fA-F][0-9a-fA-F_]*)$"
        ),
        list("-+0123456789"),
    )
    Loader.add_implicit_resolver(
        _FLOAT,
        re.compile(
            r"^(?:[-+]?[0-9][0-9_]*\.[0-9_]*(?:[eE][-+]?[0-9]+)?"
            r"|[-+]?[0-9][0-9_]*[eE][-+]?[0-9]+"
            r"|[-+]?\.[0-9_]*[0-9][0-9_]*(?:[eE][-+][0-9]+)?"
            r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
        ),
        list("-+0123456789."),
    )
    Loader.add_constructor(_INT, _yaml12_int)
    return Loader


def _yaml12_int(loader: Any, node: Any) -> int:
    import yaml

    from mlopsctl.checks._repo import MAX_INT_DIGITS

    text = str(loader.construct_scalar(node)).replace("_", "")
    if len(text) > MAX_INT_DIGITS:  # octal and hex integers escape Python's int/str limit
        raise yaml.constructor.ConstructorError(
            None, None, f"an integer of more than {MAX_INT_DIGITS} digits", node.start_mark
        )
    sign = -1 if text.startswith("-") else 1
    digits = text.lstrip("+-")
    base = {"0b": 2, "0o": 8, "0x": 16}.get(digits[:2].lower(), 10)
    return sign * int(digits[2:] if base != 10 else digits, base)


_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"


@predicate()
def answers_schema(ctx: Context, spec: CheckSpec) -> Iterable[Hit]:
    f = ctx.repo.get("mlopsctl.yaml")
    if f is None or f.text is None or f.parse_error is not None:
        return
    import yaml

    try:
        data = yaml.load(f.text, Loader=_yaml12_loader())  # YAML 1.2 booleans, as mlopsctl reads
    except yaml.YAMLError as exc:
        yield Hit(f.rel, None, f"not valid YAML: {exc}")
        return
    if data is None:
        data = {}
    for err in _errors(_answers_validator(), data):
        yield Hit(f.rel, f.line_of(0, tuple(err.absolute_path)), _message(err))
