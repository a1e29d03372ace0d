"""What ``mlopsctl doctor`` inspects: the optional tools and schemas mlopsctl uses, whether each is
present and at which version, and what is lost without it.

Each tool is found the way the code that uses it finds it (``promtool`` on the absolute entries of
``PATH`` as ``validate`` runs it, ``kfp`` importable by this interpreter, the schemas of the
installed ``kubernetes-validate`` and ``check-jsonschema`` packages, the schemas shipped in
``mlopsctl/schemas/validate``, ``git`` on ``PATH``), and the checks it serves are named by the
predicates that use it, so their ids come from the check catalog. Nothing here prints.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import asdict, dataclass, field
from importlib.util import find_spec
from typing import Any, Literal

DOCTOR_SCHEMA_VERSION = 1
VERSION_TIMEOUT = 10.0  # seconds for ``TOOL --version``

Kind = Literal["program", "python package", "schemas"]


@dataclass(frozen=True)
class Tool:
    """One optional tool: where it is, its version, and what needs it."""

    name: str
    kind: Kind
    present: bool
    version: str | None
    location: str | None
    checks: tuple[str, ...]  # ids of the validate checks that use it
    commands: tuple[str, ...]  # commands that use it otherwise
    without: str  # what is lost when it is missing
    install: str
    detail: str | None = None  # why it counts as missing, when it does

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["checks"] = list(self.checks)
        data["commands"] = list(self.commands)
        return data


@dataclass(frozen=True)
class Diagnosis:
    tools: tuple[Tool, ...] = field(default_factory=tuple)

    @property
    def missing(self) -> tuple[Tool, ...]:
        return tuple(t for t in self.tools if not t.present)

    def as_dict(self) -> dict[str, Any]:
        import platform
        import sys

        from mlopsctl import __version__

        return {
            "schema_version": DOCTOR_SCHEMA_VERSION,
            "mlopsctl": __version__,
            "python": platform.python_version(),
            "executable": sys.executable,
            "ok": not self.missing,
            "tools": [t.as_dict() for t in self.tools],
            "missing": [t.name for t in self.missing],
        }


def _check_ids(*predicates: str) -> tuple[str, ...]:
    from mlopsctl.checks import catalog

    return tuple(s.id for s in catalog() if s.predicate in predicates)


def _program_version(path: str) -> str | None:
    """The first version number ``PROGRAM --version`` prints, or None."""
    try:
        proc = subprocess.run(
            [path, "--version"],
            capture_output=True,
            text=True,
            timeout=VERSION_TIMEOUT,
            stdin=subprocess.DEVNULL,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    found = re.search(r"version\s+v?(\d+(?:\.\d+)+\S*)", proc.stdout + proc.stderr)
    return found.group(1) if found else None


def _package_version(name: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return None


def _package_location(module: str) -> str | None:
    spec = find_spec(module)
    if spec is None:
        return None
    if spec.submodule_search_locations:
        return str(next(iter(spec.submodule_search_locations)))
    return spec.origin


def _promtool() -> Tool:
    from mlopsctl.checks._isolated import program

    path = program("promtool")
    return Tool(
        name="promtool",
        kind="program",
        present=path is not None,
        version=_program_version(path) if path else None,
        location=path,
        checks=_check_ids("prometheus_rules"),
        commands=(),
        without="PromQL expressions are not parsed and Prometheus rule unit tests are not run "
        "(the rule files' structure is still checked)",
        install="apt-get install prometheus, or promtool from a Prometheus release, on PATH",
        detail=None if path else "not found on the absolute entries of PATH",
    )


def _kfp() -> Tool:
    location = _package_location("kfp")
    return Tool(
        name="kfp",
        kind="python package",
        present=location is not None,
        version=_package_version("kfp") if location else None,
        location=location,
        checks=_check_ids("kfp_pipeline_compiles"),
        commands=(),
        without="Kubeflow pipelines are not compiled",
        install="pip install 'kfp>=2.9,<3' into the environment mlopsctl runs in",
        detail=None if location else "not importable by this Python",
    )


def _git() -> Tool:
    import shutil

    path = shutil.which("git")
    return Tool(
        name="git",
        kind="program",
        present=path is not None,
        version=_program_version(path) if path else None,
        location=path,
        checks=(),
        commands=("update",),
        without="update cannot run (it merges with git), and validate reads every file of a "
        "repository, those git ignores (a local .env) included",
        install="install git (apt-get install git)",
        detail=None if path else "not found on PATH",
    )


def _kubernetes_schemas() -> Tool:
    from mlopsctl.checks.kubernetes import _kube_schema_dir

    schema_dir = _kube_schema_dir()
    package = _package_version("kubernetes-validate")
    version = None
    if schema_dir is not None:
        version = f"Kubernetes {schema_dir.name.split('-')[0]}"
        version += f" (kubernetes-validate {package})" if package else ""
    return Tool(
        name="kubernetes-schemas",
        kind="schemas",
        present=schema_dir is not None,
        version=version,
        location=str(schema_dir) if schema_dir else None,
        checks=_check_ids("kubernetes_schema"),
        commands=(),
        without="Kubernetes manifests are not checked against the Kubernetes schemas",
        install="pip install 'mlopsctl[validate]' (the kubernetes-validate package)",
        detail=None if schema_dir else "the kubernetes-validate package is not installed",
    )


def _ci_schemas() -> Tool:
    from mlopsctl.checks.ci import _vendored

    names = ("github-workflows", "gitlab-ci")
    found = [n for n in names if _vendored(n) is not None]
    package = _package_version("check-jsonschema")
    lacking = [n for n in names if n not in found]
    return Tool(
        name="ci-schemas",
        kind="schemas",
        present=not lacking,
        version=f"check-jsonschema {package}" if found and package else None,
        location=_package_location("check_jsonschema") if found else None,
        checks=_check_ids("ci_workflow_schema"),
        commands=(),
        without="GitHub Actions and GitLab CI files are not checked against their schemas",
        install="pip install 'mlopsctl[validate]' (the check-jsonschema package)",
        detail=f"no {' or '.join(lacking)} schema in check-jsonschema" if lacking else None,
    )


def _shipped_versions() -> dict[str, str]:
    """The version column of ``mlopsctl/schemas/validate/README.md``, by schema directory."""
    from mlopsctl.checks._validation import SHIPPED

    out: dict[str, str] = {}
    try:
        text = (SHIPPED / "README.md").read_text(encoding="utf-8")
    except OSError:
        return out
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 3 and cells[0].startswith("`"):
            out[cells[0].strip("`").split("/")[0]] = cells[2]
    return out


def _shipped() -> list[Tool]:
    from mlopsctl.checks._validation import SHIPPED

    versions = _shipped_versions()
    answers = SHIPPED.parent / "answers.schema.json"
    schemas = [
        (
            "kserve-schema",
            SHIPPED / "kserve" / "inferenceservice-v1beta1.json",
            versions.get("kserve"),
            "inferenceservice_schema",
            "KServe InferenceServices are not checked against their schema",
        ),
        (
            "kserve-runtime-schema",
            SHIPPED / "kserve" / "servingruntime-v1alpha1.json",
            versions.get("kserve"),
            "servingruntime_schema",
            "KServe ServingRuntimes are not checked against their schema",
        ),
        (
            "grafana-schemas",
            SHIPPED / "grafana" / "dashboard.jsonschema.json",
            versions.get("grafana"),
            "grafana_dashboard_schema",
            "Grafana dashboards are not checked against their schema",
        ),
        (
            "answers-schema",
            answers,
            None,
            "answers_schema",
            "mlopsctl.yaml is not checked against the answers schema",
        ),
    ]
    return [
        Tool(
            name=name,
            kind="schemas",
            present=path.is_file(),
            version=version if path.is_file() else None,
            location=str(path) if path.is_file() else None,
            checks=_check_ids(predicate),
            commands=(),
            without=without,
            install="reinstall mlopsctl: the schema ships inside its package",
            detail=None if path.is_file() else f"{path} is missing from the installation",
        )
        for name, path, version, predicate, without in schemas
    ]


def diagnose() -> Diagnosis:
    """Every optional tool and schema, in the order ``doctor`` lists them."""
    return Diagnosis(
        (_promtool(), _kfp(), _git(), _kubernetes_schemas(), _ci_schemas(), *_shipped())
    )
