"""What ``mlopsctl init`` shows and reports: the confirmation at a terminal (pexpect), the next
steps, ``--dry-run`` and ``--format json``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pexpect
import pytest
from typer.testing import CliRunner

from mlopsctl.cli.app import app
from mlopsctl.cli.init import makefile_targets
from tests.terminal import Terminal

TIMEOUT = 60


def invoke(*args: str, cwd: Path | None = None) -> tuple[int, str, str]:
    if cwd is not None:
        old = Path.cwd()
        os.chdir(cwd)
    try:
        result = CliRunner().invoke(app, list(args))
    finally:
        if cwd is not None:
            os.chdir(old)
    return result.exit_code, result.stdout, result.stderr


def spawn(*args: str, cwd: Path) -> pexpect.spawn:
    return Terminal(
        sys.executable,
        ["-m", "mlopsctl", *args],
        cwd=str(cwd),
        encoding="utf-8",
        timeout=TIMEOUT,
        dimensions=(50, 200),
        env={"TERM": "dumb", "NO_COLOR": "1", "COLUMNS": "200", "PATH": "/usr/bin:/bin"},
    )


def ended(child: pexpect.spawn) -> tuple[int | None, str]:
    child.expect(pexpect.EOF)
    rest = child.before or ""
    child.close()
    return child.exitstatus, rest


# ---- at a terminal: summary and confirmation ----


def test_defaults_at_a_terminal_show_the_summary_and_ask(tmp_path: Path) -> None:
    child = spawn("init", "demo", "--defaults", cwd=tmp_path)
    child.expect_exact("Summary for demo")
    child.expect_exact("Stack")
    child.expect_exact("Generate the repository in demo?")
    assert not (tmp_path / "demo").exists()
    child.sendline("y")
    child.expect_exact("generated")
    code, _ = ended(child)
    assert code == 0
    assert (tmp_path / "demo" / "mlopsctl.yaml").is_file()


def test_no_at_the_confirmation_writes_nothing(tmp_path: Path) -> None:
    child = spawn("init", "demo", "--defaults", cwd=tmp_path)
    child.expect_exact("Generate the repository in demo?")
    child.sendline("n")
    child.expect_exact("cancelled: nothing was written")
    code, _ = ended(child)
    assert code == 0
    assert list(tmp_path.iterdir()) == []


def test_yes_skips_the_confirmation(tmp_path: Path) -> None:
    child = spawn("init", "demo", "--defaults", "--yes", cwd=tmp_path)
    child.expect_exact("generated")
    code, out = ended(child)
    assert code == 0
    assert "Generate the repository" not in (child.before or "") + out
    assert (tmp_path / "demo" / "mlopsctl.yaml").is_file()


@pytest.mark.parametrize("key", ["ctrl-c", "ctrl-d"])
def test_interrupt_at_the_confirmation_is_exit_130_and_writes_nothing(
    tmp_path: Path, key: str
) -> None:
    child = spawn("init", "demo", "--defaults", cwd=tmp_path)
    child.expect_exact("Generate the repository in demo?")
    if key == "ctrl-c":
        child.sendintr()
    else:
        child.sendeof()
    child.expect_exact("interrupted: nothing was written")
    code, rest = ended(child)
    assert code == 130
    assert "Aborted" not in rest
    assert list(tmp_path.iterdir()) == []


# ---- after init: what was decided, and the next commands ----


def test_next_steps_name_this_project(tmp_path: Path) -> None:
    code, out, _ = invoke("init", "demo", "--defaults", cwd=tmp_path)
    assert code == 0, out
    lines = [line.strip() for line in out.splitlines()]
    assert "Decided: tier T2 (design); tracking mlflow, serving kserve" in out
    assert "monitoring prometheus" in out and "orchestration " in out
    steps = lines[lines.index("Next:") + 1 :]
    assert steps[0] == "cd demo"
    assert steps[1] == 'git init && git add -A && git commit -m "Generate project with mlopsctl"'
    assert steps[2].startswith("make install train")
    assert steps[3].startswith("make test validate")
    # every make target named is one the generated Makefile documents
    targets = makefile_targets(tmp_path / "demo" / "Makefile")
    named = {w for s in steps if s.startswith("make ") for w in s.split("#")[0].split()[1:]}
    named |= {w.rstrip(",") for s in steps if s.startswith("also:") for w in s.split()[2::2]}
    assert named <= set(targets), named - set(targets)
    assert {"install", "train", "test", "validate"} <= named


def test_next_steps_run_as_printed(tmp_path: Path) -> None:
    """The git line works as printed, and leaves a project update accepts."""
    code, out, _ = invoke("init", "demo", "--defaults", cwd=tmp_path)
    assert code == 0
    git_line = next(s.strip() for s in out.splitlines() if s.strip().startswith("git init"))
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "T",
        "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "T",
        "GIT_COMMITTER_EMAIL": "t@example.com",
    }
    subprocess.run(git_line, shell=True, cwd=tmp_path / "demo", check=True, env=env,
                   capture_output=True)  # fmt: skip
    code, out, err = invoke("update", str(tmp_path / "demo"))
    assert code == 0, err
    assert "already up to date" in out


def test_next_steps_in_the_current_directory_inside_a_repository(tmp_path: Path) -> None:
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    project = tmp_path / "demo"
    project.mkdir()
    code, out, _ = invoke("init", ".", "--defaults", cwd=project)
    assert code == 0, out
    steps = [line.strip() for line in out.splitlines()]
    steps = steps[steps.index("Next:") + 1 :]
    assert not any(s.startswith("cd ") for s in steps)
    assert steps[0] == 'git add . && git commit -m "Generate project with mlopsctl"'


def test_next_steps_quote_a_directory_with_a_space(tmp_path: Path) -> None:
    code, out, _ = invoke("init", "my demo", "--defaults", "--set", "project_name=demo",
                          cwd=tmp_path)  # fmt: skip
    assert code == 0, out
    assert "cd 'my demo'" in out


# ---- --dry-run ----


def test_dry_run_lists_decisions_and_files_and_writes_nothing(tmp_path: Path) -> None:
    code, out, _ = invoke("init", str(tmp_path / "new" / "demo"), "--defaults", "--dry-run")
    assert code == 0, out
    assert "Summary for demo" in out and "Stack" in out
    assert "  mlopsctl.yaml" in out and "  Makefile" in out and "  k8s/inferenceservice.yaml" in out
    assert "nothing was written" in out
    assert list(tmp_path.iterdir()) == []  # not even the destination or its parent
    # the list is what the real run writes
    listed = {line.strip() for line in out.splitlines() if line.startswith("  ")}
    code, _, _ = invoke("init", str(tmp_path / "demo"), "--defaults", "--yes")
    written = {
        p.relative_to(tmp_path / "demo").as_posix()
        for p in (tmp_path / "demo").rglob("*")
        if p.is_file()
    }
    assert written <= listed


def test_dry_run_refuses_what_the_real_run_refuses(tmp_path: Path) -> None:
    dest = tmp_path / "x"
    dest.mkdir()
    (dest / "notes.txt").write_text("mine")
    code, _, err = invoke("init", str(dest), "--defaults", "--dry-run")
    assert code == 2
    assert "not empty" in err
    (tmp_path / "file").write_text("x")
    code, _, err = invoke("init", str(tmp_path / "file"), "--defaults", "--dry-run")
    assert code == 2 and "not a directory" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file", "x"]


def test_dry_run_with_force_names_the_files_it_would_write_over(tmp_path: Path) -> None:
    dest = tmp_path / "x"
    dest.mkdir()
    (dest / "README.md").write_text("mine")
    code, out, _ = invoke("init", str(dest), "--defaults", "--dry-run", "--force")
    assert code == 0
    assert "README.md (exists: --force writes over it)" in out
    assert (dest / "README.md").read_text() == "mine"
    assert [p.name for p in dest.iterdir()] == ["README.md"]


def test_dry_run_json(tmp_path: Path) -> None:
    code, out, err = invoke(
        "init", str(tmp_path / "demo"), "--defaults", "--dry-run", "--format", "json"
    )
    assert code == 0, err
    doc = json.loads(out)
    assert doc["schema_version"] == 1 and doc["command"] == "init"
    assert doc["dry_run"] is True and doc["written"] is False
    assert {"path": "mlopsctl.yaml", "action": "created"} in doc["files"]
    assert "nothing was written" in err
    assert not (tmp_path / "demo").exists()


# ---- --format json ----


def test_json_report_is_all_of_stdout(tmp_path: Path) -> None:
    dest = tmp_path / "demo"
    code, out, err = invoke("init", str(dest), "--defaults", "-f", "json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["schema_version"] == 1 and doc["written"] is True
    assert doc["destination"] == str(dest)
    assert doc["tier"] == "T2" and doc["stack"]["serving"] == "kserve"
    assert doc["decided"]["monitoring"] == "prometheus"
    paths = {f["path"] for f in doc["files"]}
    on_disk = {p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file()}
    assert paths == on_disk
    assert "generated" in err and "Next:" in err  # the text went to stderr


def test_json_report_with_force_marks_overwritten_files(tmp_path: Path) -> None:
    dest = tmp_path / "x"
    dest.mkdir()
    (dest / "README.md").write_text("mine")
    (dest / "notes.txt").write_text("mine")
    code, out, _ = invoke("init", str(dest), "--defaults", "--force", "-f", "json")
    assert code == 0
    actions = {f["path"]: f["action"] for f in json.loads(out)["files"]}
    assert actions["README.md"] == "overwritten"
    assert actions["Makefile"] == "created"
    assert "notes.txt" not in actions


def test_json_at_a_terminal_asks_on_stderr_and_prints_only_json(tmp_path: Path) -> None:
    out_file = tmp_path / "report.json"
    dest = tmp_path / "demo"
    child = pexpect.spawn(
        "/bin/sh",
        ["-c", f'"{sys.executable}" -m mlopsctl init demo --defaults -f json > "{out_file}"'],
        cwd=str(tmp_path),
        encoding="utf-8",
        timeout=TIMEOUT,
        dimensions=(50, 200),
        env={"TERM": "dumb", "NO_COLOR": "1", "COLUMNS": "200", "PATH": "/usr/bin:/bin"},
    )
    child.expect_exact("Generate the repository in demo?")
    child.sendline("y")
    code, _ = ended(child)
    assert code == 0
    doc = json.loads(out_file.read_text())
    assert doc["written"] is True
    assert (dest / "mlopsctl.yaml").is_file()
