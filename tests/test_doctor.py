"""``mlopsctl doctor``: the optional tools and schemas, their versions, and what a missing one
turns off in ``validate``."""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mlopsctl import __version__
from mlopsctl.checks import catalog, validate
from mlopsctl.cli.app import app

FIXTURES = Path(__file__).parent / "fixtures" / "checks"
NAMES = [
    "promtool",
    "kfp",
    "git",
    "kubernetes-schemas",
    "ci-schemas",
    "kserve-schema",
    "kserve-runtime-schema",
    "grafana-schemas",
    "answers-schema",
]


def run(*args: str, path: str | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    if path is not None:
        env["PATH"] = path
    return subprocess.run(
        [sys.executable, "-m", "mlopsctl", "doctor", *args],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=120,
    )


def _version_of(program: str) -> str:
    exe = shutil.which(program)
    assert exe is not None, f"{program} is part of the test environment"
    out = subprocess.run([exe, "--version"], capture_output=True, text=True, check=True)
    return (out.stdout + out.stderr).split("version", 1)[1].split()[0]


def test_everything_present_with_versions_exit_0() -> None:
    proc = run("--format", "json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["schema_version"] == 1
    assert data["ok"] is True and data["missing"] == []
    tools = {t["name"]: t for t in data["tools"]}
    assert list(tools) == NAMES
    assert all(t["present"] for t in tools.values())
    assert tools["kfp"]["version"] == version("kfp")
    assert tools["promtool"]["version"] == _version_of("promtool")
    assert tools["git"]["version"] == _version_of("git")
    assert tools["kubernetes-schemas"]["version"].endswith(
        f"(kubernetes-validate {version('kubernetes-validate')})"
    )
    assert tools["ci-schemas"]["version"] == f"check-jsonschema {version('check-jsonschema')}"
    assert tools["kserve-schema"]["version"] == "tag v0.20.0"
    assert tools["kserve-runtime-schema"]["version"] == "tag v0.20.0"


def test_each_tool_names_the_checks_that_use_it() -> None:
    tools = {t["name"]: t for t in json.loads(run("-f", "json").stdout)["tools"]}
    assert tools["promtool"]["checks"] == ["MLV105"]
    assert tools["kfp"]["checks"] == ["MLV107"]
    assert tools["kubernetes-schemas"]["checks"] == ["MLV101"]
    assert tools["ci-schemas"]["checks"] == ["MLV106"]
    assert tools["kserve-schema"]["checks"] == ["MLV102"]
    assert tools["kserve-runtime-schema"]["checks"] == ["MLV109"]
    assert tools["grafana-schemas"]["checks"] == ["MLV104"]
    assert tools["answers-schema"]["checks"] == ["MLV108"]
    assert tools["git"]["commands"] == ["update"]
    ids = {c.id for c in catalog()}
    assert all(set(t["checks"]) <= ids for t in tools.values())


def test_text_lists_every_tool_and_its_version() -> None:
    proc = run()
    assert proc.returncode == 0
    lines = proc.stdout.splitlines()
    assert (
        lines[0] == f"mlopsctl {__version__}, Python {platform.python_version()} ({sys.executable})"
    )
    for name in NAMES:
        assert any(line.split()[:2] == ["ok", name] for line in lines), name
    assert "ok       kfp" in proc.stdout and version("kfp") in proc.stdout
    assert "all present" in proc.stdout


def test_missing_programs_say_what_they_turn_off_and_strict_exits_1(tmp_path: Path) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    proc = run(path=str(empty))
    assert proc.returncode == 0, proc.stderr  # doctor reports; it does not fail
    out = proc.stdout
    assert "missing  promtool" in out
    assert "without it (MLV105): PromQL expressions are not parsed" in out
    assert "install: apt-get install prometheus" in out
    assert "missing  git" in out and "without it (update): update cannot run" in out
    assert "2 missing: promtool, git" in out
    strict = run("--strict", "--format", "json", path=str(empty))
    assert strict.returncode == 1
    assert json.loads(strict.stdout)["missing"] == ["promtool", "git"]
    assert run("--strict").returncode == 0


def test_what_doctor_says_promtool_turns_off_is_what_validate_skips(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    proc = run("-f", "json", path=str(empty))
    promtool = next(t for t in json.loads(proc.stdout)["tools"] if t["name"] == "promtool")
    monkeypatch.setenv("PATH", str(empty))
    monkeypatch.setenv("MLOPSCTL_NO_CACHE", "1")
    report = validate(FIXTURES / "MLV105" / "pass", select=["MLV1"])
    assert sorted({n.check for n in report.notes if "promtool" in n.message}) == promtool["checks"]


def test_missing_schemas_are_named(monkeypatch: pytest.MonkeyPatch) -> None:
    from mlopsctl.checks import ci, kubernetes

    monkeypatch.setattr(kubernetes, "_kube_schema_dir", lambda: None)
    monkeypatch.setattr(ci, "_vendored", lambda name: None)
    result = CliRunner().invoke(app, ["doctor", "--strict"])
    assert result.exit_code == 1
    out = result.stdout
    assert "missing  kubernetes-schemas" in out
    assert "without it (MLV101): Kubernetes manifests are not checked" in out
    assert "install: pip install 'mlopsctl[validate]'" in out
    assert "missing  ci-schemas" in out and "(MLV106)" in out


def test_help_lists_doctor() -> None:
    result = CliRunner().invoke(app, ["--help"])
    assert "doctor" in result.stdout
