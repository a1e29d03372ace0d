"""Every Python package a generated repository pins exists on PyPI at that version for the Python
that installs it: the project image's, the Spark image's and the MLflow image's (each image's
Python is in versions.yaml under ``image_python``), and CI's (``python``, which also builds the
local virtualenv).

PyPI is asked through pip's own client (``pip index versions`` with the target Python and
platform, wheels only), with no local index, wheel folder or constraints from this machine's pip
configuration. An answer that a pin exists is kept in the tests' cache (MLOPSCTL_TEST_CACHE,
default ``~/.cache/mlopsctl-tests``, beside the generated project's virtualenv), which outlives the
fresh clone each CI run starts from, so a run repeats only the questions not answered before; a
fresh machine asks PyPI (CI may reach it)."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from mlopsctl.render import versions
from tests.generated_cases import render_all

# The newest glibc each target has: manylinux wheels up to it install there.
GLIBC_MINOR = {
    "ci": 39,  # ubuntu-24.04 runners (and the local virtualenv)
    "python": 41,  # python:3.11-slim-trixie: Debian 13
    "spark": 35,  # apache/spark 3.5 images: Ubuntu 22.04
    "mlflow": 41,  # ghcr.io/mlflow/mlflow: python:3.11-slim-trixie, Debian 13
}
# Projects that publish only a pure-Python source distribution: pip installs it on any platform.
SDIST_ONLY = frozenset({"pyspark"})
PIN = re.compile(r"^\s*(?P<name>[A-Za-z][A-Za-z0-9_.-]*)==(?P<version>\S+)\s*$")
INLINE_PIN = re.compile(r"(?<![\w.-])(?P<name>[A-Za-z][A-Za-z0-9_.-]*)==(?P<version>[0-9][^\s]*)")


def _requirements(path: Path) -> set[tuple[str, str]]:
    out = set()
    for line in path.read_text(encoding="utf-8").splitlines():
        m = PIN.match(line.split("#", 1)[0])
        if m:
            out.add((m["name"].lower(), m["version"]))
    return out


def _dockerfile_pins(root: Path, dockerfile: Path) -> tuple[str, set[tuple[str, str]]]:
    """The image a Dockerfile starts from and the pins its `pip install` lines install."""
    text = dockerfile.read_text(encoding="utf-8")
    (base,) = re.findall(r"^FROM\s+(\S+)", text, re.MULTILINE)
    pins: set[tuple[str, str]] = set()
    for line in re.findall(r"^RUN\s+.*\bpip install\b.*$", text, re.MULTILINE):
        pins |= {(m["name"].lower(), m["version"]) for m in INLINE_PIN.finditer(line)}
        for req in re.findall(r"-r\s+(\S+)", line):
            pins |= _requirements(root / req)
    return base, pins


def _targets(tmp: Path) -> dict[tuple[str, str], set[tuple[str, str]]]:
    """(target, its Python) -> the pins installed there, over every rendered project."""
    table = versions()
    image_key = {ref: key for key, ref in table["images"].items()}
    out: dict[tuple[str, str], set[tuple[str, str]]] = {}
    for _, root in render_all(tmp).values():
        ci = out.setdefault(("ci", table["python"]), set())
        for name in ("requirements.txt", "requirements-pipeline.txt"):
            if (root / name).is_file():
                ci |= _requirements(root / name)
        for dockerfile in sorted(root.glob("deploy/*/Dockerfile")):
            base, pins = _dockerfile_pins(root, dockerfile)
            key = image_key[base]  # every base image is in the table (tests/test_versions.py)
            if key == "mlflow":  # the MLflow image carries the mlflow package of its tag
                pins.add(("mlflow", table["packages"]["mlflow"]))
            out.setdefault((key, table["image_python"][key]), set()).update(pins)
    return out


def _pip_env() -> dict[str, str]:
    """pip as installed, asking the public index only: no configuration file, local index, wheel
    folder or constraints of this machine."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("PIP_") or k in {"PIP_CERT", "PIP_DEFAULT_TIMEOUT"}
    }
    env.update(PIP_CONFIG_FILE=os.devnull, PIP_DISABLE_PIP_VERSION_CHECK="1")
    return env


def _wheels_for(glibc_minor: int) -> list[str]:
    """pip's options for the CPython wheels that install on x86-64 Linux with that glibc."""
    cmd = ["--only-binary=:all:", "--implementation", "cp"]
    for minor in range(glibc_minor, 16, -1):
        cmd += ["--platform", f"manylinux_2_{minor}_x86_64"]
    return [*cmd, "--platform", "manylinux2014_x86_64", "--platform", "linux_x86_64"]


def _available(name: str, python: str, glibc_minor: int | None) -> set[str]:
    cmd = [sys.executable, "-m", "pip", "index", "versions", name, "--python-version", python]
    if glibc_minor is not None:
        cmd += _wheels_for(glibc_minor)
    run = subprocess.run(
        cmd, env=_pip_env(), capture_output=True, text=True, timeout=300, check=False
    )
    m = re.search(r"^Available versions:\s*(.*)$", run.stdout, re.MULTILINE)
    if m is None:
        if "No matching distribution" in run.stderr + run.stdout:
            return set()
        raise AssertionError(f"pip index versions {name} failed:\n{run.stdout}{run.stderr}")
    return {v.strip() for v in m[1].split(",")}


def _exists(name: str, version: str, python: str, target: str) -> bool:
    if version in _available(name, python, GLIBC_MINOR[target]):
        return True
    return name in SDIST_ONLY and version in _available(name, python, None)


class _Cache:
    """The answers "this pin exists for this Python and platform", one JSON file."""

    def __init__(self) -> None:
        directory = Path(
            os.environ.get("MLOPSCTL_TEST_CACHE") or Path.home() / ".cache" / "mlopsctl-tests"
        )
        self.path: Path | None = directory / "pypi-pins.json"
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError:
            self.path = None
        self.known: dict[str, bool] = {}
        if self.path is not None and self.path.is_file():
            try:
                self.known = json.loads(self.path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                self.known = {}

    @staticmethod
    def key(target: str, python: str, name: str, version: str) -> str:
        probe = json.dumps([GLIBC_MINOR[target], python, name, version, sorted(SDIST_ONLY)])
        return hashlib.sha256(probe.encode()).hexdigest()

    def save(self) -> None:
        if self.path is None:
            return
        tmp = self.path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(self.known, sort_keys=True), encoding="utf-8")
        tmp.replace(self.path)


@pytest.fixture(scope="module")
def targets(
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[tuple[str, str], set[tuple[str, str]]]:
    return _targets(tmp_path_factory.mktemp("pins"))


@pytest.mark.slow
def test_every_pin_exists_on_pypi_for_the_python_that_installs_it(
    targets: dict[tuple[str, str], set[tuple[str, str]]],
) -> None:
    # The Spark image (Python 3.10) and CI (3.11) are among them, with the Spark pins.
    assert ("spark", "3.10") in targets and ("ci", versions()["python"]) in targets
    assert ("pyspark", versions()["packages"]["pyspark"]) in targets[("spark", "3.10")]
    cache = _Cache()
    questions = sorted(
        {
            (target, python, name, version)
            for (target, python), pins in targets.items()
            for name, version in pins
        }
    )
    todo = [q for q in questions if not cache.known.get(_Cache.key(*q))]

    def ask(q: tuple[str, str, str, str]) -> tuple[tuple[str, str, str, str], bool]:
        target, python, name, version = q
        return q, _exists(name, version, python, target)

    missing: list[str] = []
    with ThreadPoolExecutor(max_workers=4) as pool:
        for (target, python, name, version), ok in pool.map(ask, todo):
            if ok:
                cache.known[_Cache.key(target, python, name, version)] = True
            else:
                missing.append(f"{name}=={version} for Python {python} ({target})")
    cache.save()
    assert not missing, "not on PyPI:\n" + "\n".join(missing)


def test_the_pins_of_each_image_are_read_from_its_dockerfile(tmp_path: Path) -> None:
    """What the existence check reads: inline pins and -r files of `RUN pip install` lines."""
    (tmp_path / "req.txt").write_text("numpy==2.2.6  # comment\n# x==1\nscipy==1.15.3\n")
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text(
        "FROM apache/spark:3.5.8-python3\nRUN pip install --no-cache-dir -r req.txt boto3==1.2\n"
    )
    base, pins = _dockerfile_pins(tmp_path, dockerfile)
    assert base == "apache/spark:3.5.8-python3"
    assert pins == {("numpy", "2.2.6"), ("scipy", "1.15.3"), ("boto3", "1.2")}


# A pinned project -> the pure-Python dependency of it that PyPI serves as source only (kfp's API
# client): pip builds that into a py3-none-any wheel wherever it installs it.
SOURCE_ONLY_DEPENDENCIES = {"kfp": "kfp-server-api"}


def _source_only_wheels(pins: set[tuple[str, str]], tmp: Path) -> list[str]:
    """``--find-links`` to the wheels of the SOURCE_ONLY_DEPENDENCIES of ``pins``, built here
    from their source at the version pip picks for the pin (resolved for this interpreter)."""
    wheels = tmp / "source-only-wheels"
    for name, version in sorted(pins):
        dependency = SOURCE_ONLY_DEPENDENCIES.get(name)
        if dependency is None:
            continue
        report = tmp / f"{name}-report.json"
        pip = [sys.executable, "-m", "pip"]
        subprocess.run(
            [
                *pip,
                "install",
                "--dry-run",
                "--ignore-installed",
                "--quiet",
                "--report",
                str(report),
                f"{name}=={version}",
            ],
            env=_pip_env(),
            capture_output=True,
            timeout=900,
            check=True,
        )
        picked = [
            item["metadata"]["version"]
            for item in json.loads(report.read_text())["install"]
            if item["metadata"]["name"].lower() == dependency
        ]
        picked_pins = [f"{dependency}=={v}" for v in picked]
        subprocess.run(
            [*pip, "wheel", "--no-deps", "--quiet", "-w", str(wheels), *picked_pins],
            env=_pip_env(),
            capture_output=True,
            timeout=900,
            check=True,
        )
    return ["--find-links", str(wheels)] if wheels.is_dir() else []


def _resolves(pins: set[tuple[str, str]], python: str, target: str, tmp: Path) -> str:
    """Why pip finds no set of distributions holding all of ``pins`` with their dependencies for
    that Python, or "" when it does (``--dry-run``: metadata only, nothing installed). For this
    interpreter's own Python pip resolves as it would install here, pure-Python source-only
    dependencies included (kfp-server-api); for another Python, wheels for the target platform,
    with those dependencies built into wheels here as pip in the image would."""
    tmp.mkdir(parents=True, exist_ok=True)
    reqs = tmp / "requirements.txt"
    reqs.write_text("".join(f"{n}=={v}\n" for n, v in sorted(pins)), encoding="utf-8")
    cmd = [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet"]
    if python != f"{sys.version_info.major}.{sys.version_info.minor}":
        cmd += ["--python-version", python, *_wheels_for(GLIBC_MINOR[target])]
        cmd += _source_only_wheels(pins, tmp)
    cmd += ["--target", str(tmp / "target"), "-r", str(reqs)]
    run = subprocess.run(
        cmd, env=_pip_env(), capture_output=True, text=True, timeout=900, check=False
    )
    return "" if run.returncode == 0 else (run.stdout + run.stderr)[-3000:]


@pytest.mark.slow
def test_each_pin_set_installs_together_for_the_python_that_installs_it(
    targets: dict[tuple[str, str], set[tuple[str, str]]],
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """The pins of each image (and of CI), with every dependency they pull in, resolve to wheels
    for its Python: the union over every rendered project, which holds each project's own set.
    Source-only projects (SDIST_ONLY) are left out: the test above finds them."""
    cache = _Cache()
    todo = []
    for (target, python), pins in sorted(targets.items()):
        wheels = {(n, v) for n, v in pins if n not in SDIST_ONLY}
        key = _Cache.key(target, python, "resolves", json.dumps(sorted(wheels)))
        if not cache.known.get(key):
            todo.append((key, target, python, wheels))
    work = tmp_path_factory.mktemp("resolve")

    def ask(item: tuple[str, str, str, set[tuple[str, str]]]) -> tuple[str, str, str]:
        key, target, python, wheels = item
        return key, f"{target} (Python {python})", _resolves(wheels, python, target, work / key)

    failures = []
    with ThreadPoolExecutor(max_workers=2) as pool:
        for key, where, why in pool.map(ask, todo):
            if why:
                failures.append(f"{where}:\n{why}")
            else:
                cache.known[key] = True
    cache.save()
    assert not failures, "\n\n".join(failures)
