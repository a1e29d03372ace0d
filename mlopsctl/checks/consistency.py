"""Consistency predicates: one number, one metric name and one model name across files."""

from __future__ import annotations

import ast
import re
import shlex
from collections import Counter
from collections.abc import Iterable, Iterator
from typing import Any

from mlopsctl.checks._engine import Context, Hit, predicate
from mlopsctl.checks._model import CheckSpec, KeyPath
from mlopsctl.checks._repo import SourceFile
from mlopsctl.checks.ci import workflow_files
from mlopsctl.checks.grafana import _panels as panels
from mlopsctl.checks.grafana import dashboards
from mlopsctl.checks.prometheus import rule_groups
from mlopsctl.monitoring import REPLICAS_AVAILABLE, SERVING_METRICS

# --- PromQL metric names ------------------------------------------------------------------------

_TOKEN = re.compile(
    r"""(?P<ws>\s+)
    |(?P<str>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`)
    |(?P<brace>\{)
    |(?P<bracket>\[)
    |(?P<var>\$\{?\w+\}?|\[\[\w+\]\])
    |(?P<num>0x[0-9a-fA-F]+|\d+(?:\.\d+)?(?:[eE][+-]?\d+)?(?:ms|s|m|h|d|w|y)?|\.\d+)
    |(?P<ident>[a-zA-Z_:][a-zA-Z0-9_:]*)
    |(?P<op>.)""",
    re.VERBOSE,
)
_KEYWORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or",
    "unless", "offset", "atan2", "inf", "nan", "start", "end",
}  # fmt: skip
_LABEL_LIST_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right"}
_AGGREGATIONS = {
    "sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values", "bottomk",
    "topk", "quantile", "limitk", "limit_ratio",
}  # fmt: skip


def promql_metrics(expr: str) -> set[str]:
    """Metric names a PromQL expression selects (functions, keywords, labels excluded)."""
    out: set[str] = set()
    tokens = [(m.lastgroup, m.group(0), m.end()) for m in _TOKEN.finditer(expr)]
    i = 0
    n = len(tokens)
    while i < n:
        kind, text, _end = tokens[i]
        if kind == "brace":  # label matchers: skip to the closing brace, keep __name__="x"
            depth, j = 1, i + 1
            inner = []
            while j < n and depth:
                if tokens[j][1] == "{":
                    depth += 1
                elif tokens[j][1] == "}":
                    depth -= 1
                inner.append(tokens[j][1])
                j += 1
            m = re.search(r'__name__\s*=\s*"([^"]+)"', "".join(inner))
            if m:
                out.add(m.group(1))
            i = j
            continue
        if kind == "bracket":  # range or subquery durations
            while i < n and tokens[i][1] != "]":
                i += 1
            i += 1
            continue
        if kind == "ident":
            nxt = next((t for t in tokens[i + 1 :] if t[0] != "ws"), None)
            if text.lower() in _LABEL_LIST_KEYWORDS and nxt and nxt[1] == "(":
                while i < n and tokens[i][1] != ")":
                    i += 1
                i += 1
                continue
            aggregation = text in _AGGREGATIONS and nxt and nxt[1] in {"by", "without"}
            if text.lower() not in _KEYWORDS and not (nxt and nxt[1] == "(") and not aggregation:
                out.add(text)
        i += 1
    return out


_SUFFIXES = ("_bucket", "_count", "_sum", "_total", "_created", "_info")


def base_name(metric: str) -> str:
    for s in _SUFFIXES:
        if metric.endswith(s):
            return metric[: -len(s)]
    return metric


_CLIENT_METRIC = re.compile(
    r"\b(Counter|Gauge|Histogram|Summary|Info|Enum)\(\s*(?:name\s*=\s*)?['\"]([a-zA-Z_:][\w:]*)['\"]"
)


def project_metrics(ctx: Context) -> set[str]:
    """Metrics the repository's own code defines with prometheus_client."""
    out: set[str] = set()
    for f in ctx.repo.python_files():
        if "prometheus_client" in (f.text or ""):
            out.update(m.group(2) for m in _CLIENT_METRIC.finditer(f.text or ""))
    return out


def declared_metrics(ctx: Context, keys: list[str]) -> set[str]:
    """Metric names a configuration file declares under one of ``keys`` (e.g. the metrics the
    project's jobs push to a Pushgateway): a mapping of name -> metric, or a list of metrics."""
    out: set[str] = set()
    wanted = set(keys)

    def visit(node: Any) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                if k in wanted:
                    values = v.values() if isinstance(v, dict) else v if isinstance(v, list) else []
                    out.update(x for x in values if isinstance(x, str))
                else:
                    visit(v)
        elif isinstance(node, list):
            for v in node:
                visit(v)

    for f in ctx.repo.data_files():
        if f.rel.startswith(".mlopsctl/"):
            continue
        for doc in f.docs:
            visit(doc)
    return out


def _queries(ctx: Context) -> Iterator[tuple[SourceFile, int | None, str, str]]:
    """(file, line, what, expr) for every alert, recording rule and dashboard query."""
    for f, doc, _base, groups in rule_groups(ctx):
        for _gi, g in enumerate(groups.get("groups") or []):
            for _ri, r in enumerate(g.get("rules") or [] if isinstance(g, dict) else []):
                if isinstance(r, dict) and isinstance(r.get("expr"), str):
                    name = r.get("alert") or r.get("record")
                    yield f, doc, f"rule {name}", r["expr"]
    for f, dash, _base in dashboards(ctx):
        for path, panel in panels(dash):  # rows' nested panels too
            for t in panel.get("targets") or []:
                if isinstance(t, dict) and isinstance(t.get("expr"), str):
                    yield f, None, f"panel {panel.get('title', path[-1])!r}", t["expr"]


@predicate()
def metrics_defined(ctx: Context, spec: CheckSpec) -> Iterable[Hit]:
    queries = list(_queries(ctx))
    if not queries:
        return
    known: set[str] = {*SERVING_METRICS, REPLICAS_AVAILABLE}  # what the generated serving exports
    for group in (spec.parameters.get("runtime_metrics") or {}).values():
        known.update(group)
    known.update(project_metrics(ctx))
    known.update(declared_metrics(ctx, list(spec.parameters.get("declaration_keys") or [])))
    for _f, _doc, _b, groups in rule_groups(ctx):
        for g in groups.get("groups") or []:
            for r in (g or {}).get("rules") or [] if isinstance(g, dict) else []:
                if isinstance(r, dict) and isinstance(r.get("record"), str):
                    known.add(r["record"])
    known_bases = {base_name(m) for m in known} | known
    prefixes = tuple(spec.parameters.get("runtime_prefixes") or [])
    for f, _where, what, expr in queries:
        for metric in sorted(promql_metrics(expr)):
            if metric in known or base_name(metric) in known_bases or metric.startswith(prefixes):
                continue
            yield Hit(
                f.rel,
                f.find_line(metric),
                f"{what} queries {metric}, which neither the serving runtime, the project's "
                "code nor a recording rule defines",
            )


# --- drift thresholds ---------------------------------------------------------------------------

_NUM = (int, float)


def _walk(node: Any, path: KeyPath = ()) -> Iterator[tuple[KeyPath, Any]]:
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _walk(v, (*path, str(k)))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _walk(v, (*path, i))
    else:
        yield path, node


def _kind_of(words: str) -> str | None:
    """Which design threshold a key path names: 'psi', 'ks' or None."""
    w = words.lower()
    if "threshold" not in w and "cutoff" not in w and "limit" not in w:
        return None
    if "psi" in w or ("drift" in w and "ks" not in w and "pvalue" not in w and "p_value" not in w):
        return "psi"
    if "ks" in w or "pvalue" in w or "p_value" in w:
        return "ks"
    return None


_COMPARISON = re.compile(r"(>=|<=|>|<)\s*(?:bool\s+)?([0-9.]+(?:[eE][+-]?\d+)?)")
_PY_CONST = re.compile(
    r"^\s*([A-Z][A-Z0-9_]*(?:PSI|DRIFT|KS|PVALUE|P_VALUE)[A-Z0-9_]*)\s*(?::\s*\w+\s*)?=\s*"
    r"([0-9.]+(?:[eE][+-]?\d+)?)\s*(?:#.*)?$",
    re.MULTILINE,
)


_SET_OPERATOR = re.compile(r"\b(and|or|unless)\b")


def _compared_kind(expr: str, position: int) -> str | None:
    """'psi' or 'ks' for the metric a comparison at ``position`` applies to: the metrics of the
    operand left of it, back to the previous and/or/unless."""
    start = 0
    for m in _SET_OPERATOR.finditer(expr, 0, position):
        start = m.end()
    metrics = " ".join(promql_metrics(expr[start:position])).lower()
    if "ks" in metrics or "pvalue" in metrics:
        return "ks"
    if "psi" in metrics or "drift" in metrics:
        return "psi"
    return None


@predicate()
def drift_thresholds_match(ctx: Context, spec: CheckSpec) -> Iterable[Hit]:
    thresholds = (ctx.design or {}).get("thresholds")
    if not isinstance(thresholds, dict):
        ctx.note(spec.id, "skipped: no .mlopsctl/design.json with the design's thresholds")
        return
    psi = {
        float(thresholds[k])
        for k in ("psi_monitor", "psi_investigate", "psi_retrain")
        if k in thresholds
    }
    ks = {float(thresholds["ks_pvalue"])} if "ks_pvalue" in thresholds else set()
    retrain = thresholds.get("psi_retrain")
    allowed = {"psi": psi, "ks": ks}

    def check(kind: str, value: float, words: str) -> str | None:
        expected = allowed[kind]
        if "retrain" in words.lower() and kind == "psi" and retrain is not None:
            expected = {float(retrain)}
        if expected and not any(abs(value - e) < 1e-9 for e in expected):
            names = ", ".join(f"{e:g}" for e in sorted(expected))
            return f"drift threshold {value:g} ({words}) differs from the design's {names}"
        return None

    for f in ctx.repo.data_files():
        if f.rel.startswith(".mlopsctl/") or "schema" in f.name:
            continue
        for i, doc in enumerate(f.docs):
            for path, value in _walk(doc):
                if not isinstance(value, _NUM) or isinstance(value, bool):
                    continue
                words = ".".join(str(p) for p in path if isinstance(p, str))
                kind = _kind_of(words)
                if kind:
                    msg = check(kind, float(value), words)
                    if msg:
                        yield Hit(f.rel, f.line_of(i, path), msg)
    for f, doc, base, groups in rule_groups(ctx):
        for gi, g in enumerate(groups.get("groups") or []):
            for ri, r in enumerate(g.get("rules") or [] if isinstance(g, dict) else []):
                if not isinstance(r, dict) or not isinstance(r.get("expr"), str):
                    continue
                for m in _COMPARISON.finditer(r["expr"]):
                    kind = _compared_kind(r["expr"], m.start())
                    if kind is None:
                        continue
                    words = f"rule {r.get('alert') or r.get('record')} threshold"
                    msg = check(kind, float(m.group(2)), words)
                    if msg:
                        path = (*base, "groups", gi, "rules", ri, "expr")
                        yield Hit(f.rel, f.line_of(doc, path), msg)
    for f in ctx.repo.python_files():
        for m in _PY_CONST.finditer(f.text or ""):
            kind = (
                _kind_of(m.group(1) + "_threshold")
                if "THRESHOLD" not in m.group(1)
                else _kind_of(m.group(1))
            )
            if kind:
                msg = check(kind, float(m.group(2)), m.group(1))
                if msg:
                    yield Hit(f.rel, f.line_at(m.start()), msg)


# --- model names --------------------------------------------------------------------------------

_NAME_KEYS = {"registered_model_name", "model_name", "registeredModelName", "modelName"}
_MODELS_URI = re.compile(r"models:/([A-Za-z0-9_.-]+)")


def _model_names(ctx: Context) -> Iterator[tuple[str, SourceFile, int | None, str]]:
    """(name, file, line, where) for every place that names the registered model."""
    for f in ctx.repo.data_files():
        if f.rel.startswith(".mlopsctl/") or f.name.endswith(".schema.json"):
            continue
        for i, doc in enumerate(f.docs):
            if isinstance(doc, dict) and doc.get("kind") == "InferenceService":
                continue
            for path, value in _walk(doc):
                if path and path[-1] in _NAME_KEYS and isinstance(value, str) and value:
                    yield value, f, f.line_of(i, path), str(path[-1])
    for obj in ctx.repo.objects("InferenceService"):
        uri = str(
            ((obj.data.get("spec") or {}).get("predictor") or {})
            .get("model", {})
            .get("storageUri", "")
            if isinstance(obj.data.get("spec"), dict)
            else ""
        )
        m = _MODELS_URI.search(uri)
        if m:
            yield (
                m.group(1),
                obj.file,
                obj.line("spec", "predictor", "model", "storageUri"),
                "storageUri",
            )
    for f in ctx.repo.python_files():
        text = f.text or ""
        if "MODEL_NAME" not in text and "registered_model_name" not in text:
            continue
        try:
            tree = ast.parse(text)
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant):
                for t in node.targets:
                    if (
                        isinstance(t, ast.Name)
                        and t.id == "MODEL_NAME"
                        and isinstance(node.value.value, str)
                    ):
                        yield node.value.value, f, node.lineno, "MODEL_NAME"
            elif (
                isinstance(node, ast.keyword)
                and node.arg == "registered_model_name"
                and isinstance(node.value, ast.Constant)
                and isinstance(node.value.value, str)
            ):
                yield node.value.value, f, node.value.lineno, "registered_model_name"


@predicate()
def model_names_agree(ctx: Context, spec: CheckSpec) -> Iterable[Hit]:
    names = list(_model_names(ctx))
    isvcs = ctx.repo.objects("InferenceService")
    design_name = ((ctx.design or {}).get("requirements") or {}).get("project_name")
    if not names and not design_name:
        return
    if isinstance(design_name, str):
        canonical = design_name
        origin = ".mlopsctl/design.json"
    else:
        canonical, _ = Counter(n for n, *_ in names).most_common(1)[0]
        origin = "the other files"
    for name, f, line, where in names:
        if name != canonical:
            yield Hit(f.rel, line, f"{where} names model {name!r}; {origin} use {canonical!r}")
    variants = tuple(spec.parameters.get("inferenceservice_suffixes") or [])
    for obj in isvcs:
        if obj.name == canonical or any(obj.name == canonical + s for s in variants):
            continue
        yield Hit(
            obj.file.rel,
            obj.line("metadata", "name"),
            f"{obj.label()}: serves model {canonical!r} under another name {obj.name!r}",
        )


# --- CI references ------------------------------------------------------------------------------

_PATHISH = re.compile(r"^[\w.@+-][\w./@+-]*$")
_FILE_EXT = re.compile(
    r"\.(py|sh|bash|ya?ml|json|txt|toml|cfg|ini|ipynb|sql|mk|r|jinja|cfg|lock)$", re.I
)
_RUNNERS = {"python", "python3", "bash", "sh", "source", "."}
_FILE_FLAGS = {"-r", "--requirement", "-c", "--constraint", "-f", "--file", "--filename", "-k"}
_OUTPUT_FLAGS = {"-o", "--output", "--out", "--output-file", "--junitxml", "--cov-report"}


def _makefile_targets(ctx: Context, makefile: str) -> set[str] | None:
    f = ctx.repo.get(makefile)
    if f is None or f.text is None:
        return None
    targets: set[str] = set()
    for m in re.finditer(r"^([A-Za-z0-9_./%-]+(?:\s+[A-Za-z0-9_./%-]+)*)\s*:(?!=)", f.text, re.M):
        targets.update(m.group(1).split())
    return targets


def _references(script: str) -> Iterator[tuple[str, str]]:
    """('file'|'make', value) references in one shell script."""
    for raw in re.split(r"\n|&&|\|\||;|\|", script):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        try:
            words = shlex.split(line, comments=True)
        except ValueError:
            continue
        words = [w for w in words if "=" not in w or w.startswith("-")] if words else []
        if not words:
            continue
        cmd = words[0]
        if cmd == "make":
            makefile = "Makefile"
            skip = False
            for i, w in enumerate(words[1:], 1):
                if skip:
                    skip = False
                    continue
                if w in {"-f", "--file", "-C", "--directory"}:
                    if w in {"-f", "--file"} and i + 1 < len(words):
                        makefile = words[i + 1]
                    skip = True
                    continue
                if w.startswith("-"):
                    continue
                yield "make", f"{makefile}\0{w}"
            yield "file", makefile
            continue
        prev = ""
        for i, w in enumerate(words):
            if prev in _OUTPUT_FLAGS or prev in {">", ">>", "tee"} or w.startswith(">"):
                prev = w
                continue
            if cmd.startswith("python") and prev in {"-c", "-m"}:
                prev = w  # python -c CODE / -m MODULE: not files
                continue
            value = w.split("=", 1)[1] if w.startswith("-") and "=" in w else w
            is_arg_file = (
                prev in _FILE_FLAGS
                or (i == 1 and cmd in _RUNNERS)
                or (i == 0 and value.startswith("./"))
            )
            if (
                _PATHISH.match(value)
                and not value.startswith(("-", "/", "~"))
                and "://" not in value
                and (
                    is_arg_file
                    or ("/" in value and _FILE_EXT.search(value))
                    or (
                        i > 0
                        and _FILE_EXT.search(value)
                        and "/" not in value
                        and prev in _FILE_FLAGS
                    )
                )
                and not any(ch in value for ch in "*?$")
            ):
                yield "file", value
            prev = w


@predicate()
def ci_references_exist(ctx: Context, spec: CheckSpec) -> Iterable[Hit]:
    repo = ctx.repo
    dirs = {
        "/".join(f.rel.split("/")[:i]) for f in repo.files for i in range(1, f.rel.count("/") + 1)
    }

    def exists(rel: str, base: str = "") -> bool:
        p = rel[2:] if rel.startswith("./") else rel
        p = f"{base}/{p}" if base and base != "." else p
        p = p.rstrip("/")
        return p in repo.by_rel or p in dirs

    for f in workflow_files(ctx):
        if not f.docs or not isinstance(f.docs[0], dict):
            continue
        jobs = f.docs[0].get("jobs")
        for job_id, job in (jobs or {}).items() if isinstance(jobs, dict) else []:
            if not isinstance(job, dict):
                continue
            defaults = ((job.get("defaults") or {}).get("run") or {}).get("working-directory", "")
            for si, step in enumerate(job.get("steps") or []):
                if not isinstance(step, dict):
                    continue
                path = ("jobs", job_id, "steps", si)
                uses = step.get("uses")
                if isinstance(uses, str) and uses.startswith("./") and not exists(uses):
                    yield Hit(
                        f.rel, f.line_of(0, (*path, "uses")), f"local action {uses} does not exist"
                    )
                wd = str(step.get("working-directory") or defaults or "")
                if wd and "$" not in wd and not exists(wd):
                    yield Hit(f.rel, f.line_of(0, path), f"working-directory {wd} does not exist")
                    continue
                run = step.get("run")
                if isinstance(run, str):
                    yield from _check_script(ctx, f, f.line_of(0, (*path, "run")), run, wd, exists)
    gitlab = repo.get(".gitlab-ci.yml")
    if gitlab is not None and gitlab.docs and isinstance(gitlab.docs[0], dict):
        for name, job in gitlab.docs[0].items():
            if not isinstance(job, dict):
                continue
            for key in ("before_script", "script", "after_script"):
                lines = job.get(key)
                lines = [lines] if isinstance(lines, str) else lines or []
                for li, line in enumerate(lines):
                    if isinstance(line, str):
                        where = gitlab.line_of(0, (str(name), key, li))
                        yield from _check_script(ctx, gitlab, where, line, "", exists)


def _check_script(
    ctx: Context, f: SourceFile, line: int | None, script: str, wd: str, exists: Any
) -> Iterator[Hit]:
    for kind, value in _references(script):
        if kind == "make":
            makefile, target = value.split("\0")
            mk = makefile if not wd else f"{wd}/{makefile}"
            targets = _makefile_targets(ctx, mk)
            if targets is not None and target not in targets:
                yield Hit(f.rel, line, f"make target {target!r} is not defined in {mk}")
        elif not exists(value, wd):
            where = f"{wd}/{value}" if wd else value
            yield Hit(f.rel, line, f"references {where}, which does not exist")
