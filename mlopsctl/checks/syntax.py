"""Syntax predicates: files parse, no unrendered template markers, no merge leftovers."""

from __future__ import annotations

import bisect
import io
import json
import re
import tokenize
from collections.abc import Iterable, Iterator
from typing import Any

from mlopsctl.checks._engine import Context, Hit, predicate
from mlopsctl.checks._model import CheckSpec
from mlopsctl.checks._repo import SourceFile, helm_template, line_starts

# A Jinja expression or statement as an unrendered copier/cookiecutter template leaves it.
_EXPR = re.compile(r"\{\{-?[^{}\n]*?-?\}\}")
# Bounded lengths keep the search linear on long lines full of unclosed openers.
_STMT = re.compile(r"\{%-?\s*[a-zA-Z_]+\b[^\n]{0,300}?-?%\}")
# Inside a Python string (not an f-string) only Jinja-shaped markers count: `{{ name }}` with a
# space inside both braces, or a statement; `"{{x}}".format()` is a brace escape.
_PY_EXPR = re.compile(r"\{\{-?\s+[A-Za-z_][\w.]*(\([^)]*\))?(\s*\|[^}]*)?\s+-?\}\}")
_GH_EXPR = re.compile(r"\$\{\{.{0,1000}?\}\}")
_CONFLICT = re.compile(r"^(<{7}|>{7}|\|{7})( |$)|^={7}$", re.MULTILINE)
_SKIP_SUFFIXES = {".html", ".htm", ".rej", ".orig", ".svg", ".ipynb", ".lock"}


@predicate()
def parse_error(ctx: Context, spec: CheckSpec) -> Iterable[Hit]:
    """YAML and JSON files that do not parse or are past a limit of the reader
    (``mlopsctl/checks/_repo.py``). Other files that are not read get a note."""
    for f in ctx.repo.data_files():
        if helm_template(f.rel, ctx.repo.by_rel):
            continue
        if f.text is None:
            if f.unread is not None:
                yield Hit(f.rel, None, f"not read: {f.unread}")
            elif f.size > 0:
                yield Hit(f.rel, None, "not UTF-8 text")
            continue
        err = f.parse_error
        if err is not None:
            yield Hit(f.rel, err.line, err.message)
    for u in ctx.repo.unread:
        if u.is_data or u.limit:
            yield Hit(u.rel, None, f"not read: {u.reason}")
        else:
            ctx.note(spec.id, f"not read: {u.rel}: {u.reason}")


def _markers(text: str) -> Iterator[re.Match[str]]:
    yield from _EXPR.finditer(text)
    yield from _STMT.finditer(text)


def _line_hits(f: SourceFile, text: str) -> Iterator[Hit]:
    seen: set[int] = set()
    starts = line_starts(text)
    for m in sorted(_markers(text), key=lambda m: m.start()):
        line = bisect.bisect_right(starts, m.start())
        if line not in seen:
            seen.add(line)
            yield Hit(f.rel, line, f"unrendered template marker {m.group(0)!r}")


def _is_workflow(rel: str) -> bool:
    parts = rel.split("/")
    name = parts[-1]
    return (len(parts) >= 3 and parts[-3] == ".github" and parts[-2] == "workflows") or name in {
        "action.yml",
        "action.yaml",
    }


def _kfp_placeholder(doc: Any, path: tuple[str | int, ...], marker: str) -> bool:
    """A placeholder of a compiled Kubeflow pipeline (``{{$}}``, the executor input, and
    ``{{$.inputs.parameters['x']}}``): the KFP backend fills them in when a step starts."""
    return (
        isinstance(doc, dict)
        and str(doc.get("sdkVersion", "")).startswith("kfp-")
        and "pipelineInfo" in doc
        and path[:1] == ("deploymentSpec",)
        and marker.startswith("{{$")
    )


def _go_template_context(doc: Any, path: tuple[str | int, ...]) -> bool:
    """Where another tool's own template language legitimately uses ``{{ }}``."""
    if not isinstance(doc, dict):
        return False
    keys = [p for p in path if isinstance(p, str)]
    # Prometheus rule files and PrometheusRule objects: Go templates in annotations and labels.
    spec = doc.get("spec")
    rules = doc.get("groups") if "groups" in doc else None
    if rules is None and isinstance(spec, dict):
        rules = spec.get("groups")
    if rules is not None and ("annotations" in keys or "labels" in keys) and "rules" in keys:
        return True
    # Alertmanager configuration: notification texts are Go templates.
    if "receivers" in doc and "route" in doc and keys[:1] == ["receivers"]:
        return True
    # Grafana: legendFormat takes {{label}}.
    if keys and keys[-1] == "legendFormat":
        return True
    # Argo Workflows reference parameters as {{inputs.parameters.x}}.
    api = str(doc.get("apiVersion", ""))
    return api.startswith("argoproj.io/") and doc.get("kind") in {
        "Workflow",
        "WorkflowTemplate",
        "ClusterWorkflowTemplate",
        "CronWorkflow",
    }


def _strings(
    node: Any, path: tuple[str | int, ...] = ()
) -> Iterator[tuple[tuple[str | int, ...], str]]:
    if isinstance(node, dict):
        for k, v in node.items():
            if isinstance(k, str):
                yield (*path, k), k
            yield from _strings(v, (*path, str(k)))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _strings(v, (*path, i))
    elif isinstance(node, str):
        yield path, node


def _python_hits(f: SourceFile, text: str) -> Iterator[Hit]:
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(text).readline))
    except (tokenize.TokenError, SyntaxError, IndentationError):
        yield from _line_hits(f, text)
        return
    for i, tok in enumerate(tokens):
        if tok.type == tokenize.STRING:
            prefix = tok.string[: len(tok.string) - len(tok.string.lstrip("rRbBuUfF"))]
            if "f" in prefix.lower():
                continue
            m = _PY_EXPR.search(tok.string) or _STMT.search(tok.string)
            if m:
                yield Hit(f.rel, tok.start[0], f"unrendered template marker {m.group(0)!r}")
        elif tok.type == tokenize.OP and tok.string == "{" and i + 1 < len(tokens):
            nxt = tokens[i + 1]
            if nxt.string in {"{", "%"} and nxt.start == tok.end:
                marker = "{" + nxt.string
                yield Hit(f.rel, tok.start[0], f"unrendered template marker {marker!r}")


def _markdown_text(text: str) -> str:
    """Markdown with code blocks and code spans blanked out (lines kept)."""
    out = []
    fenced = False
    for line in text.split("\n"):
        if line.lstrip().startswith(("```", "~~~")):
            fenced = not fenced
            out.append("")
            continue
        out.append("" if fenced else re.sub(r"`[^`]*`", "", line))
    return "\n".join(out)


def _answered(answers: Any) -> tuple[str, ...]:
    """The answers' own text that looks like a template marker (a description such as
    ``{{ evil }}``), in the forms a generated file writes it: verbatim and JSON-escaped. Each such
    answer lands in the output exactly as written, so it is no unrendered marker."""
    found: set[str] = set()
    for _, value in _strings(answers):
        if "{{" in value or "{%" in value:
            found.add(value)
            found.add(json.dumps(value, ensure_ascii=False)[1:-1])
            found.add(json.dumps(value)[1:-1])
    return tuple(sorted(found, key=len, reverse=True))


def _blank(text: str, answered: tuple[str, ...]) -> str:
    """``text`` with every answered string blanked out (same length, lines kept)."""
    for value in answered:
        if value in text:
            text = text.replace(value, re.sub(r"[^\n]", " ", value))
    return text


@predicate()
def unrendered_template(ctx: Context, spec: CheckSpec) -> Iterable[Hit]:
    repo = ctx.repo
    answered = _answered(ctx.answers) if ctx.answers else ()
    for f in repo.files:
        if f.is_template or f.suffix in _SKIP_SUFFIXES or helm_template(f.rel, repo.by_rel):
            continue
        text = f.text
        if text is None or ("{{" not in text and "{%" not in text):
            continue
        if answered:
            text = _blank(text, answered)
            if "{{" not in text and "{%" not in text:
                continue
        if _is_workflow(f.rel):
            text = _GH_EXPR.sub(lambda m: " " * len(m.group(0)), text)
            if "{{" not in text and "{%" not in text:
                continue
        if f.suffix == ".py":
            yield from _python_hits(f, text)
        elif f.suffix in {".md", ".markdown"}:
            yield from _line_hits(f, _markdown_text(text))
        elif (f.is_yaml or f.is_json) and f.parsed:
            seen: set[int | None] = set()
            # Each marker's first line in the file, found in one pass.
            first: dict[str, int] = {}
            for m in _markers(text):
                first.setdefault(m.group(0), f.line_at(m.start()))
            for doc in f.docs:
                for path, value in _strings(doc):
                    value = _blank(value, answered)
                    if _is_workflow(f.rel):
                        value = _GH_EXPR.sub("", value)
                    for m in _markers(value):
                        if m.group(0).startswith("{{") and _go_template_context(doc, path):
                            continue
                        if _kfp_placeholder(doc, path, m.group(0)):
                            continue
                        line = first.get(m.group(0))
                        if line not in seen:
                            seen.add(line)
                            yield Hit(f.rel, line, f"unrendered template marker {m.group(0)!r}")
        else:
            yield from _line_hits(f, text)


@predicate()
def merge_leftover(ctx: Context, spec: CheckSpec) -> Iterable[Hit]:
    for f in ctx.repo.files:
        if f.suffix == ".rej":
            yield Hit(f.rel, None, "rejected merge hunk file left behind")
            continue
        text = f.text
        if text is None or "<<<<<<<" not in text:
            continue
        markers = list(_CONFLICT.finditer(text))
        if not any(m.group(0).startswith("<") for m in markers) or not any(
            m.group(0).startswith(">") for m in markers
        ):
            continue
        for m in markers:
            if m.group(0).startswith("<"):
                line = f.line_at(m.start())
                yield Hit(f.rel, line, "merge conflict marker '<<<<<<<'")
