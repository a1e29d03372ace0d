"""Compile Kubeflow pipelines: the child process of check MLV107 (kfp-pipeline-compiles).

Compiling a pipeline means importing its module, so this is the one place ``validate`` runs code
from the repository. It runs only in a child started by ``mlopsctl.checks._isolated`` (isolated
interpreter, scratch working directory, minimal environment, time limit); the pipeline's own
directory is on its import path, so the modules beside it (its components) import as they would
for the compiler.

``python -I mlopsctl/checks/_isolated.py mlopsctl.checks.kfp_compile FILE...`` prints one JSON
line: ``{"results": [{"path", "line", "error"}...]}`` (one entry per file that failed) or
``{"no_kfp": reason}``. It imports nothing of mlopsctl's beyond its package.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import sys
import tempfile
import traceback
import types
from typing import Any


def _stub_client() -> None:
    """Compiling needs no API client: ``kfp.client`` imports the whole Kubernetes client (most of
    kfp's import time), so it stands in empty; its submodules still import from disk."""
    spec = importlib.util.find_spec("kfp")
    if spec is None or spec.submodule_search_locations is None:
        raise ImportError("No module named 'kfp'")
    client = types.ModuleType("kfp.client")
    client.__path__ = [os.path.join(p, "client") for p in spec.submodule_search_locations]

    def Client(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("kfp.Client is not available while pipelines are compiled")

    client.Client = Client  # type: ignore[attr-defined]
    sys.modules["kfp.client"] = client


def _compile_file(path: str, compiler: Any, graph_component: type) -> dict[str, Any] | None:
    """None when every pipeline in ``path`` compiles, else what failed and where."""
    sys.path.insert(0, os.path.dirname(path))
    loaded = set(sys.modules)
    try:
        spec = importlib.util.spec_from_file_location("_mlopsctl_pipeline", path)
        if spec is None or spec.loader is None:
            return {"path": path, "line": None, "error": "not a Python module"}
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        pipelines = [v for v in vars(module).values() if isinstance(v, graph_component)]
        if not pipelines:
            return {"path": path, "line": None, "error": "no @dsl.pipeline function found"}
        for p in pipelines:
            with tempfile.TemporaryDirectory() as tmp:
                compiler.Compiler().compile(p, os.path.join(tmp, "p.yaml"))
    except BaseException as exc:  # the module's own SystemExit and KeyboardInterrupt included
        line = None
        for fr in traceback.extract_tb(exc.__traceback__):
            if os.path.abspath(fr.filename) == os.path.abspath(path):
                line = fr.lineno
        if isinstance(exc, SyntaxError) and exc.lineno:
            line = exc.lineno
        return {"path": path, "line": line, "error": f"{type(exc).__name__}: {exc}"}
    finally:
        sys.path.pop(0)
        here = os.path.dirname(os.path.abspath(path)) + os.sep
        for name in set(sys.modules) - loaded:  # a module beside the pipeline is its own
            if (getattr(sys.modules[name], "__file__", None) or "").startswith(here):
                del sys.modules[name]
    return None


def main(paths: list[str]) -> dict[str, Any]:
    try:
        _stub_client()
        compiler = importlib.import_module("kfp.compiler")
        graph_component = importlib.import_module("kfp.dsl.graph_component").GraphComponent
    except Exception as exc:
        return {"no_kfp": f"{type(exc).__name__}: {exc}"}
    results = [r for r in (_compile_file(p, compiler, graph_component) for p in paths) if r]
    return {"results": results}


if __name__ == "__main__":
    print("\n" + json.dumps(main(sys.argv[1:])), flush=True)
