"""Design -> template data -> copier -> files, written atomically.

The template ships inside the package (``templates/`` in the source tree, ``mlopsctl/templates``
in the wheel). Copier renders into a temporary directory beside the destination; the result is
moved into place only when every file rendered, so a failure or Ctrl-C leaves the destination as
it was.
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from mlopsctl import __version__, _renderer, _write
from mlopsctl.design import TIER_COMMAND, StackDesign
from mlopsctl.errors import DestinationError, GenerationError, Interrupted
from mlopsctl.escaping import json_document, json_value, yaml_value
from mlopsctl.interrupts import current, held, redeliver
from mlopsctl.monitoring import monitoring_contract, runtime_latency_metric, serving_table

TEMPLATE_VERSION = "1"
ANSWERS_FILE = "mlopsctl.yaml"
TMP_PREFIX = _write.TMP_PREFIX  # the staging directory generation makes beside the destination


def template_dir() -> Path:
    """The copier template: packaged inside the wheel, or at the top of a source checkout."""
    here = Path(__file__).resolve().parent
    packaged = here / "templates"
    if (packaged / "copier.yml").is_file():
        return packaged
    source = here.parent / "templates"
    if (source / "copier.yml").is_file():
        return source
    raise GenerationError(
        "the project template is missing from this installation", hint="reinstall mlopsctl"
    )


@lru_cache(maxsize=1)
def versions() -> dict[str, Any]:
    import yaml

    data: dict[str, Any] = yaml.safe_load(
        (Path(__file__).parent / "data" / "versions.yaml").read_text(encoding="utf-8")
    )
    return data


_PLAIN_SAFE = re.compile(r"^[a-z][a-z0-9_-]*$")
_YAML11_WORDS = frozenset({"y", "n", "yes", "no", "on", "off", "true", "false", "null"})


def _answer_scalar(value: Any) -> Any:
    """Strings that any YAML reader (1.1 or 1.2) reads back as the same string stay plain;
    every other string is double-quoted."""
    from ruamel.yaml.scalarstring import DoubleQuotedScalarString

    if isinstance(value, str) and not (_PLAIN_SAFE.match(value) and value not in _YAML11_WORDS):
        return DoubleQuotedScalarString(value)
    return value


def _answer_float(representer: Any, value: float) -> Any:
    """Floats as both YAML 1.1 and 1.2 readers read them (``1.0e+20``, never ``1e+20``)."""
    from mlopsctl.escaping import portable_float

    return representer.represent_scalar("tag:yaml.org,2002:float", portable_float(repr(value)))


def answers_yaml(design: StackDesign) -> str:
    """The human-editable ``mlopsctl.yaml``: every answer with its help text as a comment."""
    import io

    from ruamel.yaml import YAML
    from ruamel.yaml.comments import CommentedMap

    from mlopsctl.measured import MeasuredCapacity
    from mlopsctl.requirements import Requirements, ScaleRequirements

    data = design.requirements.model_dump(mode="json")
    root = CommentedMap()
    for name, info in Requirements.model_fields.items():
        value = data[name]
        if name == "measured":
            if value is None:
                continue  # not measured: the section is left out
            sub = CommentedMap()
            for sub_name, sub_info in MeasuredCapacity.model_fields.items():
                if value.get(sub_name) is not None:
                    sub[sub_name] = value[sub_name]
                    sub.yaml_add_eol_comment(sub_info.description or "", sub_name)
            value = sub
        elif name == "scale_requirements":
            sub = CommentedMap()
            for sub_name, sub_info in ScaleRequirements.model_fields.items():
                if value.get(sub_name) is not None:
                    sub[sub_name] = value[sub_name]
                    sub.yaml_add_eol_comment(sub_info.description or "", sub_name)
            value = sub
        root[name] = _answer_scalar(value)
        root.yaml_set_comment_before_after_key(name, before=info.description, indent=0)
    yaml = YAML()
    yaml.representer.add_representer(float, _answer_float)
    yaml.width = 100
    yaml.indent(mapping=2, sequence=4, offset=2)
    out = io.StringIO()
    out.write(
        "# mlopsctl requirements. Edit an answer and run `mlopsctl update` to regenerate.\n"
        "# yaml-language-server: $schema=.mlopsctl/answers.schema.json\n"
    )
    yaml.dump(root, out)
    return out.getvalue()


def flags(design: StackDesign) -> dict[str, bool]:
    """Component switches the templates branch on: the design's ``components``, as decided."""
    return design.components.model_dump()


def _canary_percent(design: StackDesign) -> int:
    """The first traffic share a new version receives: the canary decision or the first step."""
    steps = [step for step in design.sizing.rollout_steps if 0 < step < 100]
    return design.sizing.canary_percent or (steps[0] if steps else 0)


def _cpu_cores(quantity: str) -> float:
    return int(quantity[:-1]) / 1000 if quantity.endswith("m") else float(quantity)


def _memory_gb(quantity: str) -> float:
    units = {"Ki": 1 / 1024**2, "Mi": 1 / 1024, "Gi": 1.0, "Ti": 1024.0}
    for suffix, factor in units.items():
        if quantity.endswith(suffix):
            return round(float(quantity[: -len(suffix)]) * factor, 3)
    return round(float(quantity) / 1024**3, 3)


# serving.yaml's `runtime` for the ServingRuntime the project generates itself.
PROJECT_RUNTIME = "project"


def serving_image_ref(image: str) -> str:
    """The project's serving image with its tag: the MLflow release its requirements pin (the
    project image's convention), so a new pin is a new image."""
    return f"{image}:{versions()['packages']['mlflow']}"


def _startup_probe(design: StackDesign, fw: dict[str, Any]) -> dict[str, Any] | None:
    """The serving containers' startup probe: failureThreshold x periodSeconds covers the
    startup window (``sizing.startup_seconds``); None where nothing serves online. It asks the
    runtime's readiness endpoint on its HTTP port: the Open Inference Protocol's
    ``/v2/health/ready`` (MLServer, Triton), else KServe's v1 ``/v1/models/<name>``."""
    from mlopsctl.rules.sizing import STARTUP_PROBE_PERIOD_SECONDS, startup_probe_failures

    window = design.sizing.startup_seconds
    if window is None:
        return None
    v2 = fw["project_runtime"] or fw["protocol"] == "v2" or fw["runtime"] == "kserve-tritonserver"
    return {
        "window_seconds": window,
        "period_seconds": STARTUP_PROBE_PERIOD_SECONDS,
        "failure_threshold": startup_probe_failures(window),
        "path": "/v2/health/ready" if v2 else f"/v1/models/{design.requirements.project_name}",
        # KServe's runtimes and the project's MLServer listen for HTTP on 8080.
        "port": serving_table()["mlserver"]["http_port"] if fw["project_runtime"] else 8080,
    }


def _serving(design: StackDesign) -> dict[str, Any]:
    from mlopsctl.kinds import kind

    table = serving_table()
    fw = dict(table["frameworks"][design.requirements.framework])
    fw["project_runtime"] = fw["runtime"] == PROJECT_RUNTIME
    fw.setdefault("protocol", "v1")
    if fw["project_runtime"]:
        from mlopsctl.names import resource_names

        names = resource_names(design.requirements.project_name)
        fw["runtime"] = names["serving_runtime"]
        fw["runtime_image_ref"] = serving_image_ref(names["serving_image"])
    else:
        fw["runtime_image_ref"] = versions()["images"][fw["runtime_image"]]
    fw["runtime_latency_metric"] = runtime_latency_metric(design.requirements.framework)
    if fw["project_runtime"]:  # the tabular frameworks: the flavor the kind's model is logged in
        fw["mlflow_flavor"] = kind(design.requirements.model_type, design.requirements.framework)[
            "estimator"
        ]["flavor"]
    return {
        "cpu_cores": _cpu_cores(design.sizing.cpu_limit),
        "memory_gb": _memory_gb(design.sizing.memory_limit),
        "canary_percent": _canary_percent(design),
        "startup_probe": _startup_probe(design, fw),
        "framework": fw,
        "mlserver": table["mlserver"],
    }


def context(design: StackDesign) -> dict[str, Any]:
    """Everything the template sees. ``yv``/``jv`` are the only ways values reach YAML/JSON."""
    from mlopsctl.kinds import kind
    from mlopsctl.names import resource_names
    from mlopsctl.requirements import answers_json_schema
    from mlopsctl.rules.model import catalog_digest
    from mlopsctl.spark import spark_sizing

    design_dict = design.json_dict()
    state = {
        "mlopsctl_version": __version__,
        "template_version": TEMPLATE_VERSION,
        "catalog_digest": "sha256:" + catalog_digest(),
        "design_schema_version": design.schema_version,
        "tier": design.tier,
        "tier_floor": design.tier_floor,
        "command": TIER_COMMAND[design.tier],
    }
    return {
        "req": design_dict["requirements"],
        "design": design_dict,
        "flags": flags(design),
        "names": resource_names(design.requirements.project_name),
        "monitoring": monitoring_contract(design),
        "serving": _serving(design),
        "kind": kind(design.requirements.model_type, design.requirements.framework),
        "spark": spark_sizing(
            design.requirements.scale_requirements.data_volume_gb, design.requirements.model_size_gb
        ),
        "versions": versions(),
        "state": state,
        "yv": yaml_value,
        "jv": json_value,
        "jv_doc": json_document,
        "answers_yaml": answers_yaml(design),
        "design_json": json.dumps(design_dict, indent=2, sort_keys=True, ensure_ascii=False) + "\n",
        "state_json": json.dumps(state, indent=2, sort_keys=True) + "\n",
        "answers_schema_json": json.dumps(answers_json_schema(), indent=2, sort_keys=True) + "\n",
    }


@dataclass(frozen=True)
class GenerationResult:
    destination: Path
    files: tuple[str, ...]


def render_to(design: StackDesign, target: Path) -> list[str]:
    """Render the template into an empty directory ``target``; return the relative file paths."""
    _renderer.copy(template_dir(), context(design), target)
    from mlopsctl.layout import record_base

    return record_base(  # keeps the base of the next `mlopsctl update`
        target,
        (str(p.relative_to(target)) for p in target.rglob("*") if p.is_file() or p.is_symlink()),
    )


# In-process rendering (mlopsctl._renderer) where the template allows it, copier's own run
# otherwise; tests/test_determinism.py checks that both give identical trees.


def render_tree(design: StackDesign, target: Path) -> list[str]:
    """Render into the new directory ``target``: in-process when the template allows it, else
    by copier."""
    tpl = _renderer.fast_template(template_dir())
    if tpl is not None:
        try:
            files = _renderer.render_fast(tpl, context(design), target)
        except _renderer.NeedsCopier:
            shutil.rmtree(target, ignore_errors=True)
        else:
            from mlopsctl.layout import record_base

            return record_base(target, files)  # as render_to does after copier
    return render_to(design, target)


# ---- Generation: rendered beside the destination, then written all or nothing ----------------


def _resolve_destination(destination: Path) -> Path:
    """Absolute, with symlinks in the parent resolved; the last component is left as given so
    that a destination which is itself a symlink is seen (and refused)."""
    path = destination.absolute()
    if path.name in {"", ".", ".."}:
        return path.resolve()
    return path.parent.resolve() / path.name


def generate(design: StackDesign, destination: Path, *, force: bool = False) -> GenerationResult:
    """Generate the repository at ``destination``, all or nothing.

    A missing destination receives the whole tree by one rename (missing parent directories
    included); an empty one receives its top-level entries. A non-empty destination is refused
    unless ``force``; with ``force`` generated files are swapped in one by one, the originals
    kept aside and put back if anything fails, and no other file is touched. Nothing is written
    outside the destination but a temporary directory beside it, removed before returning; a
    destination that is a symlink, or a generated path through a symlink, is refused. A Ctrl-C
    or SIGTERM during rendering leaves the destination as it was; one that arrives while the
    tree is being moved into place is acted on once the move is complete (``Interrupted``).
    Two runs into one destination take turns: the second sees what the first wrote.
    """
    destination = _resolve_destination(destination)
    _refuse_own_template(destination)
    with _write.turn(destination) as (anchor, waited):
        return _generate_locked(design, destination, anchor, force=force, waited=waited)


def _refuse_own_template(destination: Path) -> None:
    own = template_dir().resolve()
    target = destination.resolve()
    if target == own or own in target.parents or target in own.parents:
        raise DestinationError(
            f"{destination} holds mlopsctl's own template ({own}); generating there would "
            "overwrite mlopsctl itself",
            hint="choose a directory outside the mlopsctl installation",
        )


def check_destination(destination: Path, *, force: bool = False) -> None:
    """Raise the ``DestinationError`` that ``generate`` would raise before rendering anything
    (a symlink, not a directory, not empty without ``force``, mlopsctl's own template), so a
    caller can refuse a destination before asking for the answers."""
    destination = _resolve_destination(destination)
    _refuse_own_template(destination)
    _usable(destination, force=force, waited=False)


def _usable(destination: Path, *, force: bool, waited: bool) -> bool:
    """Whether ``destination`` already holds entries; ``DestinationError`` when it cannot take
    the repository."""
    if destination.is_symlink():
        raise DestinationError(
            f"{destination} is a symbolic link",
            hint=f"give the directory it points to ({destination.resolve()}) instead",
        )
    if destination.exists() and not destination.is_dir():
        raise DestinationError(f"{destination} exists and is not a directory")
    is_dir = destination.is_dir()
    existing = is_dir and any(destination.iterdir())
    if existing and not force:
        if waited:
            raise DestinationError(
                f"another mlopsctl run generated into {destination} while this one waited for "
                "it; this run wrote nothing",
                hint="use the repository it generated, or choose a new directory",
            )
        raise DestinationError(
            f"{destination} is not empty",
            hint="choose a new directory, or pass --force to write the generated files into it "
            "(other files are left alone; mlopsctl update is the way to regenerate a project)",
        )
    return existing


def _generate_locked(
    design: StackDesign, destination: Path, anchor: Path, *, force: bool, waited: bool
) -> GenerationResult:
    existing = _usable(destination, force=force, waited=waited)
    is_dir = destination.is_dir()
    progress = current()
    try:
        with _write.staging(anchor, progress) as tmp:
            stage = tmp / "out"
            files = render_tree(design, stage)
            what = f"the {len(files)} generated files are all in place in {destination}"
            if existing:
                with held(progress):
                    _write.swap(destination, {rel: stage / rel for rel in files}, work=tmp)
                    progress.commit(what)
            elif is_dir:
                _write.move_entries(stage, destination, progress, what)
            else:
                _write.move_in(stage, destination, anchor, tmp, progress, what)
    except OSError as exc:
        raise _write.os_error(exc, destination, "writing") from None
    finally:
        redeliver(progress)
    if progress.signals:
        raise Interrupted(
            f"interrupted while the repository was being moved into {destination}; "
            f"that step was completed, so {what}",
            hint="check the repository, or remove it and run the command again",
        )
    return GenerationResult(destination=destination, files=tuple(files))
