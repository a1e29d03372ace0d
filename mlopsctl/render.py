"""Design -> template data -> copier -> files, written atomically.

The template ships inside the package (``templates/`` in the source tree, ``mlopsctl/templates``
in the wheel). Copier renders into a temporary directory beside the destination; the result is
moved into place only when every file rendered, so a failure or Ctrl-C leaves the destination as
it was.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from mlopsctl import __version__
from mlopsctl.design import TIER_COMMAND, StackDesign
from mlopsctl.errors import DestinationError, GenerationError
from mlopsctl.escaping import json_value, yaml_value

TEMPLATE_VERSION = "1"
STATE_DIR = ".mlopsctl"
ANSWERS_FILE = "mlopsctl.yaml"
TMP_PREFIX = ".mlopsctl-tmp-"


def template_dir() -> Path:
    """The copier template: packaged inside the wheel, or at the top of a source checkout."""
    here = Path(__file__).resolve().parent
    packaged = here / "templates"
    if (packaged / "copier.yml").is_file():
        return packaged
    source = here.parent / "templates"
    if (source / "copier.yml").is_file():
        return source
    raise GenerationError("the project template is missing from this installation",
                          hint="reinstall mlopsctl")


@lru_cache(maxsize=1)
def versions() -> dict[str, Any]:
    import yaml

    data: dict[str, Any] = yaml.safe_load(
        (Path(__file__).parent / "data" / "versions.yaml").read_text(encoding="utf-8")
    )
    return data


def answers_yaml(design: StackDesign) -> str:
    """The human-editable ``mlopsctl.yaml``: every answer with its help text as a comment."""
    import io

    from ruamel.yaml import YAML
    from ruamel.yaml.comments import CommentedMap

    from mlopsctl.requirements import Requirements, ScaleRequirements

    data = design.requirements.model_dump(mode="json")
    root = CommentedMap()
    for name, info in Requirements.model_fields.items():
        value = data[name]
        if name == "scale_requirements":
            sub = CommentedMap()
            for sub_name, sub_info in ScaleRequirements.model_fields.items():
                if value.get(sub_name) is not None:
                    sub[sub_name] = value[sub_name]
                    sub.yaml_add_eol_comment(sub_info.description or "", sub_name)
            value = sub
        root[name] = value
        root.yaml_set_comment_before_after_key(name, before=info.description, indent=0)
    yaml = YAML()
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
    """Component switches the templates branch on; all derived from the engine's choices."""
    s = design.stack
    online = s.deployment_pattern in {"online", "hybrid"}
    k8s = design.requirements.kubernetes
    return {
        "kubernetes": k8s,
        "kserve": s.serving == "kserve",
        "k8s_deployment": k8s and online,
        "batch_job": k8s and s.batch_engine in {"cronjob", "spark"},
        "spark": s.batch_engine == "spark",
        "canary": s.rollout in {"canary", "progressive"},
        "progressive": s.rollout == "progressive",
        "shadow": s.rollout == "shadow" or "shadow-deployment" in design.governance,
        "kubeflow": s.orchestration == "kubeflow",
        "prometheus": s.monitoring == "prometheus",
        "evidently": s.drift_detection == "evidently",
        "github_actions": design.requirements.ci_platform == "github-actions",
        "gitlab_ci": design.requirements.ci_platform == "gitlab-ci",
        "jenkins": design.requirements.ci_platform == "jenkins",
        "production": design.requirements.governance_level == "production",
        "tier3": design.tier == "T3",
        "tier2": design.tier in {"T2", "T3"},
    }


def context(design: StackDesign) -> dict[str, Any]:
    """Everything the template sees. ``yv``/``jv`` are the only ways values reach YAML/JSON."""
    from mlopsctl.requirements import answers_json_schema
    from mlopsctl.rules.model import catalog_digest

    design_dict = design.json_dict()
    state = {
        "mlopsctl_version": __version__,
        "template_version": TEMPLATE_VERSION,
        "catalog_digest": catalog_digest(),
        "design_schema_version": design.schema_version,
        "tier": design.tier,
        "command": TIER_COMMAND[design.tier],
    }
    return {
        "req": design_dict["requirements"],
        "design": design_dict,
        "flags": flags(design),
        "versions": versions(),
        "state": state,
        "yv": yaml_value,
        "jv": json_value,
        "answers_yaml": answers_yaml(design),
        "design_json": json.dumps(design_dict, indent=2, sort_keys=True, ensure_ascii=False)
        + "\n",
        "state_json": json.dumps(state, indent=2, sort_keys=True) + "\n",
        "answers_schema_json": json.dumps(answers_json_schema(), indent=2, sort_keys=True) + "\n",
    }


@dataclass(frozen=True)
class GenerationResult:
    destination: Path
    files: tuple[str, ...]


def render_to(design: StackDesign, target: Path) -> list[str]:
    """Render the template into an empty directory ``target``; return the relative file paths."""
    from copier import run_copy

    run_copy(
        str(template_dir()),
        str(target),
        data=context(design),
        defaults=True,
        quiet=True,
        overwrite=True,
        unsafe=False,
        skip_tasks=True,
    )
    from mlopsctl.update import record_base

    return record_base(  # keeps the base of the next `mlopsctl update`
        target,
        (str(p.relative_to(target)) for p in target.rglob("*") if p.is_file() or p.is_symlink()),
    )


@contextmanager
def _staging(parent: Path) -> Iterator[Path]:
    tmp = Path(tempfile.mkdtemp(prefix=TMP_PREFIX, dir=parent))
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def generate(design: StackDesign, destination: Path, *, force: bool = False) -> GenerationResult:
    """Generate the repository at ``destination``, all or nothing.

    A missing or empty destination receives the whole tree by one rename. A non-empty destination
    is refused unless ``force``; with ``force`` generated files are swapped in one by one, the
    originals kept aside and put back if anything fails, and no other file is touched.
    """
    destination = destination.absolute()
    if destination.exists() and not destination.is_dir():
        raise DestinationError(f"{destination} exists and is not a directory")
    existing = destination.is_dir() and any(destination.iterdir())
    if existing and not force:
        raise DestinationError(
            f"{destination} is not empty",
            hint="choose a new directory, or pass --force to write the generated files into it "
            "(other files are left alone; mlopsctl update is the way to regenerate a project)",
        )
    parent = destination.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise GenerationError(f"cannot create {parent}: {exc.strerror}") from None
    try:
        with _staging(parent) as tmp:
            stage = tmp / "out"
            files = render_to(design, stage)
            if not existing:
                if destination.is_dir():
                    destination.rmdir()
                os.rename(stage, destination)
            else:
                _swap_in(stage, destination, files)
    except OSError as exc:
        raise GenerationError(
            f"writing {destination} failed: {exc.strerror or exc}; nothing was changed",
            hint="check free disk space and permissions of the destination's parent",
        ) from None
    return GenerationResult(destination=destination, files=tuple(files))


def _swap_in(stage: Path, destination: Path, files: list[str]) -> None:
    backup = Path(tempfile.mkdtemp(prefix=TMP_PREFIX, dir=destination.parent))
    replaced: list[str] = []
    created: list[Path] = []
    created_dirs: list[Path] = []
    try:
        for rel in files:
            target = destination / rel
            for parent in reversed(target.relative_to(destination).parents):
                d = destination / parent
                if not d.exists():
                    d.mkdir()
                    created_dirs.append(d)
            if target.exists() or target.is_symlink():
                if target.is_dir() and not target.is_symlink():
                    raise DestinationError(f"{target} is a directory; a generated file goes there")
                (backup / rel).parent.mkdir(parents=True, exist_ok=True)
                os.replace(target, backup / rel)
                replaced.append(rel)
            else:
                created.append(target)
            os.replace(stage / rel, target)
    except BaseException:
        for path in created:
            path.unlink(missing_ok=True)
        for rel in replaced:
            os.replace(backup / rel, destination / rel)
        for d in reversed(created_dirs):
            shutil.rmtree(d, ignore_errors=True)
        raise
    finally:
        shutil.rmtree(backup, ignore_errors=True)
