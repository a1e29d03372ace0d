"""A repository handed to ``validate`` is untrusted: none of its code runs (the Kubeflow compile
excepted, isolated and time-limited), the cache of check results cannot be planted by someone
else, and file names cannot forge or hide lines of the text output."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from typer.testing import CliRunner

from mlopsctl.api import generate
from mlopsctl.checks import validate
from mlopsctl.cli.app import app
from tests.conftest import installed_wheel

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parent.parent

HOSTILE_MODULES = (
    "pydantic.py",
    "yaml.py",
    "jinja2.py",
    "copier.py",
    "kfp.py",
    "mlopsctl/__init__.py",
    "mlopsctl/checks/__init__.py",
    "sitecustomize.py",
    "usercustomize.py",
)


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    dest = tmp_path_factory.mktemp("generated") / "demo"
    generate({"project_name": "demo"}, dest)
    assert (dest / "pipelines" / "retraining_pipeline.py").is_file()  # MLV107 has work to do
    return dest


def _copy(generated: Path, dest: Path) -> Path:
    shutil.copytree(generated, dest)
    # answers edited (a comment): the design is rendered again, in the child process
    with (dest / "mlopsctl.yaml").open("a") as f:
        f.write("# reviewed\n")
    return dest


def _plant(root: Path, sentinels: Path) -> None:
    """Modules that record that they ran, and then make the child print a forged result."""
    for rel in HOSTILE_MODULES:
        target = root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        mark = sentinels / rel.replace("/", "_")
        target.write_text(
            "import json, os, sys\n"
            f"open({str(mark)!r}, 'w').write('ran')\n"
            'print(json.dumps({"files": [], "results": []}))\n'
            "os._exit(0)\n"
        )
    (root / "startup.py").write_text(f"open({str(sentinels / 'startup')!r}, 'w').write('ran')\n")


def _findings(report: Any) -> list[tuple[str, int | None, str, str]]:
    return [(f.path, f.line, f.check, f.message) for f in report.findings]


def _hostile_env(monkeypatch: pytest.MonkeyPatch, root: Path, tmp_path: Path) -> None:
    userbase = tmp_path / "userbase"
    site = userbase / "lib" / f"python{sys.version_info[0]}.{sys.version_info[1]}"
    (site / "site-packages").mkdir(parents=True)
    shutil.copy(root / "usercustomize.py", site / "site-packages" / "usercustomize.py")
    monkeypatch.setenv("PYTHONPATH", f"{root}{os.pathsep}.")
    monkeypatch.setenv("PYTHONSTARTUP", str(root / "startup.py"))
    monkeypatch.setenv("PYTHONUSERBASE", str(userbase))
    monkeypatch.delenv("PYTHONSAFEPATH", raising=False)
    monkeypatch.setenv("MLOPSCTL_NO_CACHE", "1")  # every child runs


def test_validate_inside_a_hostile_repository_runs_none_of_its_modules(
    generated: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Run from inside the repository (as pre-commit and CI do) with PYTHONPATH pointing into
    it: the render child and the pipeline compile import mlopsctl, pydantic, yaml and kfp from
    the installation, never from the repository, and report what a clean repository gives."""
    monkeypatch.setenv("MLOPSCTL_NO_CACHE", "1")
    clean = _findings(validate(_copy(generated, tmp_path / "clean"), select=["MLV401", "MLV107"]))

    root = _copy(generated, tmp_path / "hostile")
    sentinels = tmp_path / "sentinels"
    sentinels.mkdir()
    _plant(root, sentinels)
    _hostile_env(monkeypatch, root, tmp_path)
    monkeypatch.chdir(root)
    report = validate(Path("."), select=["MLV401", "MLV107"])
    assert sorted(p.name for p in sentinels.iterdir()) == []
    assert _findings(report) == clean
    assert [n.message for n in report.notes] == []


def test_validate_command_run_from_inside_the_repository(generated: Path, tmp_path: Path) -> None:
    """The installed command, started in the repository as a pre-commit hook is."""
    root = _copy(generated, tmp_path / "hostile")
    sentinels = tmp_path / "sentinels"
    sentinels.mkdir()
    _plant(root, sentinels)
    command = Path(sys.executable).parent / "mlopsctl"
    env = {
        **os.environ,
        "MLOPSCTL_NO_CACHE": "1",
        "PYTHONSTARTUP": str(root / "startup.py"),
        "PATH": f".{os.pathsep}{os.environ.get('PATH', '')}",  # a relative entry: the repository
    }
    (root / "promtool").write_text(f"#!/bin/sh\necho ran > {sentinels / 'promtool'}\n")
    (root / "promtool").chmod(0o755)
    proc = subprocess.run(
        [str(command), "validate", "--format", "json"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    assert sorted(p.name for p in sentinels.iterdir()) == []
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert json.loads(proc.stdout)["findings"] == []


def test_the_isolated_children_find_mlopsctl_in_a_wheel_install(
    generated: Path, tmp_path: Path
) -> None:
    """``python -I`` drops PYTHONPATH; the children load mlopsctl from where the parent's is, so
    an installed wheel (not only this editable checkout) renders and compiles in them."""
    python, _ = installed_wheel(tmp_path)
    root = _copy(generated, tmp_path / "repo")
    env = {**os.environ, "MLOPSCTL_NO_CACHE": "1", "PYTHONPATH": ""}
    proc = subprocess.run(
        [str(python), "-m", "mlopsctl", "validate", str(root), "--format", "json"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads(proc.stdout)
    assert report["findings"] == []
    assert "MLV107" in report["checks_run"] and "MLV401" in report["checks_run"]
    assert report["notes"] == []  # the render and the compilation both ran


def _looping_pipeline(root: Path, pidfile: Path) -> Path:
    (root / "pipelines").mkdir(parents=True)
    pipeline = root / "pipelines" / "loop.py"
    pipeline.write_text(
        "import subprocess\n"
        "from kfp import dsl\n\n"
        f"open({str(pidfile)!r}, 'w').write(str(subprocess.Popen(['sleep', '600']).pid))\n"
        "while True:\n    pass\n\n\n"
        '@dsl.pipeline(name="loop")\ndef loop() -> None:\n    pass\n'
    )
    return pipeline


def test_a_pipeline_that_never_finishes_is_a_finding_after_the_time_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLOPSCTL_NO_CACHE", "1")
    monkeypatch.setenv("MLOPSCTL_CHECK_TIMEOUT", "3")
    pidfile = tmp_path / "pid"
    _looping_pipeline(tmp_path / "repo", pidfile)
    report = validate(tmp_path / "repo", select=["MLV107"])
    assert [(f.path, f.check) for f in report.findings] == [("pipelines/loop.py", "MLV107")]
    assert "time limit of 3 s" in report.findings[0].message
    # what the pipeline started went with it
    pid = int(pidfile.read_text())
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and _alive(pid):
        time.sleep(0.1)
    assert not _alive(pid)


def test_ctrl_c_stops_the_pipeline_compile_at_once(tmp_path: Path) -> None:
    """The child runs in a session of its own, out of reach of the terminal's Ctrl-C: the
    interrupted command kills it (and what it started) instead of waiting for its time limit."""
    import signal

    pidfile = tmp_path / "pid"
    _looping_pipeline(tmp_path / "repo", pidfile)
    env = {**os.environ, "MLOPSCTL_NO_CACHE": "1", "MLOPSCTL_CHECK_TIMEOUT": "600"}
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "mlopsctl"), "validate", str(tmp_path / "repo")],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while not pidfile.exists() or not pidfile.read_text():
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.1)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)  # not the 600 s of the time limit
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    pid = int(pidfile.read_text())
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and _alive(pid):
        time.sleep(0.1)
    assert not _alive(pid)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_a_time_limit_is_a_finding_for_the_render_and_promtool(
    generated: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = _copy(generated, tmp_path / "repo")
    monkeypatch.setenv("MLOPSCTL_NO_CACHE", "1")
    monkeypatch.setenv("MLOPSCTL_CHECK_TIMEOUT", "0.001")
    report = validate(root, select=["MLV401", "MLV105"])
    found = {(f.path, f.check) for f in report.findings}
    assert ("mlopsctl.yaml", "MLV401") in found
    assert ("monitoring/alerts.yaml", "MLV105") in found
    assert ("monitoring/alerts.test.yaml", "MLV105") in found
    assert all("time limit" in f.message for f in report.findings)


# --- the cache of check results -----------------------------------------------------------------


def _poison_render_cache(root: Path, cache: Path) -> Path:
    """An entry for this repository's answers that says they generate nothing: used, every
    generated file would be reported as no longer generated."""
    from mlopsctl.layout import recorded_floor, source_key

    key = source_key((root / "mlopsctl.yaml").read_bytes(), recorded_floor(root))
    entry = cache / "mlopsctl" / "render" / f"{key}.json"
    entry.parent.mkdir(parents=True, exist_ok=True)
    entry.write_text(json.dumps({"files": {}}))
    return entry


@pytest.mark.parametrize("how", ["group-writable", "another-user", "symlink"])
def test_a_cache_directory_others_could_write_is_not_used(
    how: str, generated: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = _copy(generated, tmp_path / "repo")
    cache = tmp_path / "cache"
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    monkeypatch.delenv("MLOPSCTL_NO_CACHE", raising=False)
    entry = _poison_render_cache(root, cache)
    render = entry.parent
    if how == "group-writable":
        render.chmod(0o770)
    elif how == "another-user":
        uid = os.getuid()
        monkeypatch.setattr(os, "getuid", lambda: uid + 1)
    else:
        planted = tmp_path / "planted"
        render.rename(planted)
        render.symlink_to(planted)
    report = validate(root, select=["MLV401"])
    assert _findings(report) == []
    assert report.notes == []
    assert sorted(p.name for p in entry.parent.iterdir()) == [entry.name]  # nothing stored


def test_the_cache_directory_is_made_private_whatever_the_umask(
    generated: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = _copy(generated, tmp_path / "repo")
    cache = tmp_path / "cache"
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    monkeypatch.delenv("MLOPSCTL_NO_CACHE", raising=False)
    old = os.umask(0o002)
    try:
        assert _findings(validate(root, select=["MLV401"])) == []
    finally:
        os.umask(old)
    render = cache / "mlopsctl" / "render"
    assert render.stat().st_mode & 0o777 == 0o700
    assert (cache / "mlopsctl").stat().st_mode & 0o077 == 0
    assert len(list(render.iterdir())) == 1  # and used


@pytest.mark.parametrize(
    "entry",
    [
        {"files": {"k8s/deployment.yaml": 5}},
        {"files": {"../outside": "x"}},
        {"results": [{"path": "/elsewhere/pipeline.py", "line": 1, "error": "x"}]},
        {"results": [{"path": "x", "line": "one"}]},
        [],
    ],
)
def test_a_cache_entry_of_another_shape_is_built_again(
    entry: Any, generated: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = _copy(generated, tmp_path / "repo")
    cache = tmp_path / "cache"
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    monkeypatch.delenv("MLOPSCTL_NO_CACHE", raising=False)
    assert _findings(validate(root, select=["MLV401", "MLV107", "MLV105"])) == []
    stored = sorted((cache / "mlopsctl" / "render").iterdir())
    assert len(stored) == 3  # the render, the pipeline compilation, the promtool unit tests
    for path in stored:
        path.write_text(json.dumps(entry))
    report = validate(root, select=["MLV401", "MLV107", "MLV105"])
    assert _findings(report) == []
    assert report.notes == []


# --- text output --------------------------------------------------------------------------------

FORGED = "\x1b[8mhidden\x1b[0m\nMLV999  forged finding\r\x1b[2Kx.yaml"
SHOWN = "\\x1b[8mhidden\\x1b[0m\\nMLV999  forged finding\\r\\x1b[2Kx.yaml"


def test_control_characters_in_file_names_are_escaped_in_text_output(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    root.mkdir()
    (root / FORGED).write_text("key: [unclosed\n")
    result = CliRunner().invoke(app, ["validate", str(root), "--no-color"])
    assert result.exit_code == 1
    assert "\x1b" not in result.stdout and "\r" not in result.stdout
    assert not any(line.startswith("MLV999") for line in result.stdout.splitlines())
    lines = result.stdout.splitlines()
    assert lines[0] == SHOWN  # the file's heading
    assert lines[1].startswith(f"{SHOWN}:") and "  MLV001  " in lines[1]
    # machines get the exact name
    exact = CliRunner().invoke(app, ["validate", str(root), "--format", "json"])
    assert [f["path"] for f in json.loads(exact.stdout)["findings"]] == [FORGED]
    sarif = CliRunner().invoke(app, ["validate", str(root), "--format", "sarif"])
    assert "\x1b" not in sarif.stdout  # JSON escapes it: \u001b
    assert len(json.loads(sarif.stdout)["runs"][0]["results"]) == 1


def test_update_report_escapes_control_characters(capsys: pytest.CaptureFixture[str]) -> None:
    from mlopsctl.cli.update import _report

    change = SimpleNamespace(
        path=FORGED, action="conflict", renamed_from=None, conflicts=1, before=None
    )
    plan = SimpleNamespace(
        warnings=["answer \x1b]0;title\x07 changed"],
        decisions=[SimpleNamespace(section="answers", key="k\x1b[1m", old="a\nb", new="c")],
        versions={},
        files=[change],
        internal=[],
        changed=[change],
        conflicts=[change],
        destination=Path("/tmp/pro\x1bject"),
        answers_uncommitted=False,
        file_diff=lambda: "--- a\n+++ b\n@@ -1 +1 @@\n-old\x1b[2J\n+\tnew\n",
    )
    assert _report(plan, dry_run=True) == 3  # type: ignore[arg-type]
    out, err = capsys.readouterr()
    assert "\x1b" not in out + err and "\x07" not in out + err
    assert SHOWN in out
    assert SHOWN in err
    assert "\n-old\\x1b[2J\n+" in out  # a diff keeps its lines (and its tabs, which rich expands)
    assert "\\t" not in out
    assert not any(line.lstrip().startswith("MLV999") for line in (out + err).splitlines())
