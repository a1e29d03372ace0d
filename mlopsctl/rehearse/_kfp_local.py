"""Started inside the project image's pod, with the image's Python and its kfp: runs a pipeline
function with the KFP local runner and writes what ran as JSON.

    python _kfp_local.py SPEC.json

``SPEC`` holds ``module`` (the pipeline file), ``function`` (the ``@dsl.pipeline`` function),
``arguments`` (none: a scheduled run takes the pipeline's defaults), ``pipeline_root`` (on the
pod's writable volume), ``paths`` (image path -> local path: the image's WORKDIR, which exists in
the image and not on this machine), ``secrets`` (Secret name -> its keys' values: the Secrets the
rehearsed cluster holds) and ``result`` (where the JSON goes).

The runner is ``SubprocessRunner(use_venv=False)``: each task is a subprocess of this one, with
this interpreter for the ``python3`` of the component's command and this process's environment,
so it runs as the pod runs: the same uid without a passwd entry, read-only root, writable /tmp,
no route to a package index. The task's command is the compiled one; only image paths under the
WORKDIR are pointed at the local copy of it, as the rehearsal does for every pod's arguments.
The local runner ignores the pipeline's platform config; what the kubelet would do with its
``secretAsEnv`` is done here: each step gets the keys it maps as environment, and a step whose
Secret or key does not exist does not start (exit 1, as a pod in CreateContainerConfigError).

The result: ``tasks`` in the order they ran (component name, status, outputs), ``executors``
(each executor's command and arguments from the compiled pipeline spec), ``secret_env`` (each
executor's variables and the ``secret/key`` they come from), ``secret_problems`` (executor ->
what its pod could not get) and ``error`` (a
traceback when the run itself could not start or raised). This file imports nothing of
mlopsctl's: the pod's Python is the image's, where mlopsctl is not installed.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import re
import sys
import traceback
from typing import Any


def _plain(value: Any) -> Any:
    try:
        json.dumps(value)
        return value
    except (TypeError, ValueError):
        return repr(value)


def _relocate(value: str, paths: dict[str, str]) -> str:
    """``value`` with each image path (a whole path component, not ``/application``) local."""
    for image_path, local in sorted(paths.items(), key=lambda p: -len(p[0])):
        prefix = re.escape(image_path.rstrip("/"))
        pattern = re.compile(rf"(?<![\w.-]){prefix}(?=/|[\"'\s]|$)")
        value = pattern.sub(local.replace("\\", "\\\\"), value)
    return value


def secret_env(
    platform: dict[str, Any], secrets: dict[str, dict[str, str]]
) -> tuple[dict[str, dict[str, str]], dict[str, dict[str, str]], dict[str, list[str]]]:
    """From the platform spec (``PlatformSpec`` as JSON): per executor, the environment its
    ``secretAsEnv`` gives it, where each variable comes from (``secret/key``), and what a pod
    could not get (a Secret or key that does not exist and is not optional)."""
    executors = (
        ((platform.get("platforms") or {}).get("kubernetes") or {}).get("deploymentSpec") or {}
    ).get("executors") or {}
    env: dict[str, dict[str, str]] = {}
    sources: dict[str, dict[str, str]] = {}
    problems: dict[str, list[str]] = {}
    for executor, config in executors.items():
        for item in (config or {}).get("secretAsEnv") or []:
            parameter = (item.get("secretNameParameter") or {}).get("runtimeValue") or {}
            name = str(parameter.get("constant") or item.get("secretName") or "")
            values = secrets.get(name)
            for pair in item.get("keyToEnv") or []:
                variable, key = str(pair.get("envVar", "")), str(pair.get("secretKey", ""))
                sources.setdefault(executor, {})[variable] = f"{name}/{key}"
                if values is not None and key in values:
                    env.setdefault(executor, {})[variable] = values[key]
                elif not item.get("optional"):
                    missing = f"Secret {name!r}" if values is None else f"key {key!r} of {name!r}"
                    problems.setdefault(executor, []).append(f"{variable}: no {missing}")
    return env, sources, problems


def main(spec_path: str) -> None:
    with open(spec_path, encoding="utf-8") as f:
        spec = json.load(f)
    result: dict[str, Any] = {
        "tasks": [],
        "executors": {},
        "secret_env": {},
        "secret_problems": {},
        "error": None,
    }
    # The executor of the task being run, and the environment the platform config gives each.
    current: dict[str, str] = {}
    step_env: dict[str, dict[str, str]] = {}
    try:
        # Imported by name: kfp is the image's, not one of mlopsctl's dependencies.
        json_format = importlib.import_module("google.protobuf.json_format")
        local = importlib.import_module("kfp.local")
        subprocess_task_handler = importlib.import_module("kfp.local.subprocess_task_handler")
        task_dispatcher = importlib.import_module("kfp.local.task_dispatcher")

        paths: dict[str, str] = spec.get("paths") or {}
        run_task = task_dispatcher.run_single_task_implementation
        run_process = subprocess_task_handler.run_local_subprocess

        def recorded(*args: Any, **kwargs: Any) -> Any:
            component = kwargs.get("component_spec")
            current["executor"] = str(getattr(component, "executor_label", ""))
            outputs, status = run_task(*args, **kwargs)
            result["tasks"].append(
                {
                    "component": kwargs.get("component_name", ""),
                    "status": getattr(status, "name", str(status)),
                    "outputs": {k: _plain(v) for k, v in (outputs or {}).items()},
                }
            )
            return outputs, status

        def relocated(full_command: list[str], env_vars: Any = None) -> int:
            command = [_relocate(part, paths) for part in full_command]
            env = {k: _relocate(v, paths) for k, v in (env_vars or {}).items()}
            executor = current.get("executor", "")
            if result["secret_problems"].get(executor):
                print(f"{executor}: " + "; ".join(result["secret_problems"][executor]))
                return 1
            env.update(step_env.get(executor, {}))
            return int(run_process(full_command=command, env_vars=env))

        setattr(task_dispatcher, "run_single_task_implementation", recorded)  # noqa: B010
        setattr(subprocess_task_handler, "run_local_subprocess", relocated)  # noqa: B010

        loaded = importlib.util.spec_from_file_location("_rehearsed_pipeline", spec["module"])
        if loaded is None or loaded.loader is None:
            raise ImportError(f"{spec['module']}: not a Python module")
        module = importlib.util.module_from_spec(loaded)
        loaded.loader.exec_module(module)
        pipeline = getattr(module, spec["function"])
        compiled = json_format.MessageToDict(pipeline.pipeline_spec)
        for name, executor in (compiled.get("deploymentSpec") or {}).get("executors", {}).items():
            container = executor.get("container") or {}
            result["executors"][name] = {
                "image": container.get("image", ""),
                "command": container.get("command", []),
                "args": container.get("args", []),
            }
        platform = json_format.MessageToDict(pipeline.platform_spec)
        step_env, result["secret_env"], result["secret_problems"] = secret_env(
            platform, spec.get("secrets") or {}
        )
        local.init(
            runner=local.SubprocessRunner(use_venv=False),
            pipeline_root=spec["pipeline_root"],
            raise_on_error=False,
        )
        pipeline(**(spec.get("arguments") or {}))
    except BaseException:  # the pipeline module's own SystemExit included
        result["error"] = traceback.format_exc()
    with open(spec["result"], "w", encoding="utf-8") as f:
        json.dump(result, f)


if __name__ == "__main__":
    main(sys.argv[1])
