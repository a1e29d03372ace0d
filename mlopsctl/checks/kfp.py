"""Kubeflow Pipelines predicates: pipeline files compile."""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterable
from importlib.util import find_spec
from pathlib import Path
from typing import Any

from mlopsctl.checks._engine import Context, Hit, predicate
from mlopsctl.checks._model import CheckSpec
from mlopsctl.checks._repo import SourceFile

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
