"""The version table (mlopsctl/data/versions.yaml) is the one source of every version in a
generated repository, and what it pins is current: rendered projects of every CI platform carry
no image, action or ``==`` pin that is not in it; images come from registries that publish them;
actions run on Node 24; the runtimes agree with the schemas checked and with the packages; and CI
never installs mlopsctl by name from a public index."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from mlopsctl.names import resource_names
from mlopsctl.render import versions
from tests.generated_cases import SCHEMAS, render_all

# YAML `image:` (GitLab's `image: name:` too), Dockerfile `FROM`, Jenkins `image '...'`, Python
# `..._IMAGE = "..."`, `docker create IMAGE` in a script.
IMAGE_REF = re.compile(
    r"""^[ \t]*(?:-[ \t]*)?image:[ \t]*["']?(?P<yaml>[^\s"'#]+)"""
    r"""|^[ \t]*image:[ \t]*\n[ \t]+name:[ \t]*["']?(?P<gitlab>[^\s"'#]+)"""
    r"""|^FROM\s+(?P<docker>\S+)"""
    r"""|\bimage\s+'(?P<jenkins>[^']+)'"""
    r"""|_IMAGE\s*=\s*"(?P<python>[^"]+)\""""
    r"""|\bdocker\s+(?:create|run|pull)\s+(?P<cli>[^\s"')]+)""",
    re.MULTILINE,
)
PYTHON_VERSION = re.compile(r"""^\s*python-version:\s*["']?(?P<version>[^\s"'#]+)""", re.MULTILINE)
RUNS_ON = re.compile(r"""^\s*runs-on:\s*["']?(?P<runner>[^\s"'#]+)""", re.MULTILINE)
USES = re.compile(r"""^\s*(?:-\s*)?uses:\s*["']?(?P<ref>[^\s"'#]+)""", re.MULTILINE)
PIN = re.compile(r"(?<![\w.-])(?P<name>[A-Za-z][A-Za-z0-9_.-]*)==(?P<version>[0-9][^\s\"'`;,)]*)")
# A pip install of mlopsctl by its name, which anyone could register on a public index (not a
# direct reference, `mlopsctl @ <url>`).
MLOPSCTL_BY_NAME = re.compile(
    r"pip\s+install\b[^\n]*(?<![\w/.-])mlopsctl(?:\[[^\]]*\])?(?:[=<>~!]=|\s(?!\s*@)|$)"
)


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Any, Path]]:
    return render_all(tmp_path_factory.mktemp("versions"))


def _text_files(root: Path) -> list[tuple[str, str]]:
    out = []
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if not path.is_file() or rel.startswith(".mlopsctl/"):
            continue
        try:
            out.append((rel, path.read_text(encoding="utf-8")))
        except UnicodeDecodeError:
            continue
    return out


def _table_pins() -> dict[str, set[str]]:
    table = versions()
    pins: dict[str, set[str]] = {}
    for group in ("packages", "spark_packages"):
        for name, version in table[group].items():
            pins.setdefault(name, set()).add(version)
    return pins


def test_the_rendered_projects_cover_every_ci_platform(
    rendered: dict[str, tuple[Any, Path]],
) -> None:
    roots = [root for _, root in rendered.values()]
    assert any((r / ".github" / "workflows" / "ci.yaml").is_file() for r in roots)
    assert any((r / ".gitlab-ci.yml").is_file() for r in roots)
    assert any((r / "Jenkinsfile").is_file() for r in roots)
    assert any((r / "requirements-spark.txt").is_file() for r in roots)


def test_every_version_in_a_generated_file_comes_from_the_table(
    rendered: dict[str, tuple[Any, Path]],
) -> None:
    table = versions()
    images = set(table["images"].values())
    actions = set(table["actions"].values())
    pins = _table_pins()
    stray: list[str] = []
    seen = {"image": 0, "uses": 0, "pin": 0, "python": 0, "runner": 0}
    for name, (design, root) in rendered.items():
        names = resource_names(design.requirements.project_name)
        # The project's own images are tagged with the MLflow version they carry.
        own = {
            f"{names[key]}:{table['packages']['mlflow']}"
            for key in ("model_image", "mlflow_server_image", "serving_image")
        }
        for rel, text in _text_files(root):
            for m in IMAGE_REF.finditer(text):
                ref = next(v for v in m.groupdict().values() if v)
                seen["image"] += 1
                if ref not in images | own:
                    stray.append(f"{name}/{rel}: image {ref}")
            for m in USES.finditer(text):
                seen["uses"] += 1
                if m["ref"] not in actions:
                    stray.append(f"{name}/{rel}: uses {m['ref']}")
            for m in RUNS_ON.finditer(text):
                seen["runner"] += 1
                if m["runner"] != table["github_runner"]:
                    stray.append(f"{name}/{rel}: runs-on {m['runner']}")
            for m in PYTHON_VERSION.finditer(text):
                seen["python"] += 1
                if m["version"] != table["python"]:
                    stray.append(f"{name}/{rel}: python-version {m['version']}")
            for m in PIN.finditer(text):
                seen["pin"] += 1
                if m["version"] not in pins.get(m["name"].lower(), set()):
                    stray.append(f"{name}/{rel}: {m[0]}")
    assert all(seen.values()), seen  # the patterns found what they look for
    assert not stray, "\n".join(stray)


def test_no_generated_file_installs_mlopsctl_by_name(
    rendered: dict[str, tuple[Any, Path]],
) -> None:
    assert "mlopsctl" not in versions()["packages"]  # no pin of a name nobody serves
    hits = [
        f"{name}/{rel}: {m[0]}"
        for name, (_, root) in rendered.items()
        for rel, text in _text_files(root)
        for m in MLOPSCTL_BY_NAME.finditer(text)
    ]
    assert not hits, "\n".join(hits)
    for name, (_, root) in rendered.items():
        ci = [
            root / p
            for p in (".github/workflows/ci.yaml", ".gitlab-ci.yml", "Jenkinsfile")
            if (root / p).is_file()
        ]
        assert ci, name
        for path in ci:
            text = path.read_text(encoding="utf-8")
            assert "sh ci/install-mlopsctl.sh" in text, path
            assert text.index("sh ci/install-mlopsctl.sh") < text.index("make validate"), path
        assert (root / "ci" / "install-mlopsctl.sh").is_file()


# ---- ci/install-mlopsctl.sh ------------------------------------------------------------------


def _install(root: Path, tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    base = {"PATH": os.environ["PATH"], "HOME": str(tmp_path)}
    return subprocess.run(
        ["sh", "ci/install-mlopsctl.sh"],
        cwd=root,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(
    ("env", "says"),
    [
        ({}, "MLOPSCTL_SPEC is not set"),
        ({"MLOPSCTL_SPEC": "git+https://git.example.com/p/mlopsctl@main"}, "full commit id"),
        ({"MLOPSCTL_SPEC": "git+https://git.example.com/p/mlopsctl"}, "full commit id"),
        ({"MLOPSCTL_SPEC": "ci/mlopsctl-0.1.0-py3-none-any.whl"}, "MLOPSCTL_SHA256"),
        (
            {"MLOPSCTL_SPEC": "ci/missing.whl", "MLOPSCTL_SHA256": "a" * 64},
            "not a file in this repository",
        ),
        (
            {"MLOPSCTL_SPEC": "http://artifacts.example.com/m.whl", "MLOPSCTL_SHA256": "a" * 64},
            "only https://",
        ),
        (
            {"MLOPSCTL_SPEC": "ci/install-mlopsctl.sh", "MLOPSCTL_SHA256": "0" * 64},
            "not MLOPSCTL_SHA256",
        ),
    ],
)
def test_the_install_script_fails_clearly_without_a_pinned_source(
    rendered: dict[str, tuple[Any, Path]], tmp_path: Path, env: dict[str, str], says: str
) -> None:
    _, root = rendered["defaults"]
    run = _install(root, tmp_path, **env)
    assert run.returncode == 2, run.stderr
    assert says in run.stderr
    assert "README.md" in run.stderr  # where to read how to set it up
    assert not (root / ".venv" / "mlopsctl").exists()  # nothing installed


# ---- currency --------------------------------------------------------------------------------

# The first major of each action that runs on Node 24 (GitHub runners dropped Node 20).
NODE24_MAJOR = {"actions/checkout": 5, "actions/setup-python": 6, "actions/upload-artifact": 6}
# Repositories that no longer publish images (minio/minio left Docker Hub).
UNPUBLISHED = ("minio/minio:", "docker.io/minio/minio:")


def test_actions_run_on_node_24() -> None:
    for ref in versions()["actions"].values():
        action, _, major = ref.partition("@v")
        assert action in NODE24_MAJOR, ref
        assert int(major) >= NODE24_MAJOR[action], ref


def test_no_image_from_a_repository_that_stopped_publishing() -> None:
    for ref in versions()["images"].values():
        assert not ref.startswith(UNPUBLISHED), ref


def test_kubectl_is_a_supported_minor() -> None:
    # 1.34 reached end of life on 2026-10-27 (kubernetes.io/releases).
    tag = versions()["images"]["kubectl"].rpartition(":v")[2]
    major, minor, _ = (int(p) for p in tag.split("."))
    assert (major, minor) >= (1, 35), tag


def test_kserve_runtimes_are_the_release_whose_crd_is_checked() -> None:
    readme = (SCHEMAS / "README.md").read_text(encoding="utf-8")
    m = re.search(r"`kserve/serving\.kserve\.io_inferenceservices\.yaml`.*?tag (v[0-9.]+)", readme)
    assert m, "the vendored CRD's release is recorded in tests/fixtures/upstream/README.md"
    kserve = {k: v for k, v in versions()["images"].items() if k.startswith("kserve_")}
    assert kserve
    for key, ref in kserve.items():
        assert ref.rpartition(":")[2] == m[1], f"{key}: {ref} but the CRD checked is {m[1]}"


def test_the_mlflow_image_and_the_mlflow_package_are_one_version() -> None:
    table = versions()
    assert table["images"]["mlflow"].rpartition(":v")[2] == table["packages"]["mlflow"]


def test_pyspark_is_the_spark_version_of_the_spark_image() -> None:
    table = versions()
    tag = table["images"]["spark"].rpartition(":")[2]
    assert tag.split("-")[0] == table["packages"]["pyspark"]


def test_the_spark_pins_override_only_pinned_packages() -> None:
    table = versions()
    assert set(table["spark_packages"]) <= set(table["packages"])
    assert set(table["image_python"]) <= set(table["images"])


@pytest.mark.slow
def test_the_install_script_installs_a_committed_wheel_that_make_validate_runs(
    tmp_path: Path,
) -> None:
    """The documented set-up, end to end: a wheel of mlopsctl committed to the repository and its
    digest in MLOPSCTL_SHA256; the script installs it into .venv/mlopsctl and `make validate`
    runs that mlopsctl with none on PATH."""
    import hashlib
    import sys

    from mlopsctl.render import generate
    from tests.conftest import REPO
    from tests.generated_cases import CASES

    root = tmp_path / "p"
    generate(CASES["production-lightgbm-gitlab"].design(), root)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(root / "ci"), REPO],
        check=True,
        timeout=600,
    )
    (wheel,) = (root / "ci").glob("mlopsctl-*.whl")
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    python_dir = str(Path(sys.executable).parent)  # a python3 to build the virtualenv with
    path = f"{python_dir}:/usr/bin:/bin"
    run = _install(
        root,
        tmp_path,
        PATH=path,
        MLOPSCTL_SPEC=f"ci/{wheel.name}",
        MLOPSCTL_SHA256=digest,
    )
    assert run.returncode == 0, run.stderr
    assert "mlopsctl " in run.stdout  # the installed one says its version
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}  # no mlopsctl on PATH
    validate = subprocess.run(
        ["make", "--no-print-directory", "validate"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert validate.returncode == 0, validate.stdout + validate.stderr
    assert ".venv/mlopsctl/bin/mlopsctl validate ." in validate.stdout
