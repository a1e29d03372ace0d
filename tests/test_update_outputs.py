"""``mlopsctl update`` started from an edited, uncommitted ``mlopsctl.yaml``; every conflicted
or interrupted update names the files it left with conflict markers; ``--format json``."""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import mlopsctl.update as update_module
from mlopsctl.api import generate
from mlopsctl.cli.app import app
from mlopsctl.errors import Interrupted
from tests.test_update import (
    PROJECT,
    append,
    commit,
    conflicted_files,
    copy_repo,
    edit,
    first_changed_line,
    fresh,
    git,
    make_project,
    requirements,
    tree,
)

ANSWERS = "mlopsctl.yaml"


def run(*args: str) -> Any:
    return CliRunner().invoke(app, list(args), catch_exceptions=False)


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_project(tmp_path_factory.mktemp("pristine") / PROJECT)


@pytest.fixture
def project(pristine: Path, tmp_path: Path) -> Path:
    return copy_repo(pristine, tmp_path / PROJECT)


def conflicting_edit(project: Path, tmp_path: Path) -> str:
    """Edit, and commit, a line of the file that governance_level=production changes; return
    the file."""
    rel = "k8s/inferenceservice.yaml"
    new = fresh(tmp_path / "prod", ["governance_level=production"])
    old_line, _ = first_changed_line((project / rel).read_bytes(), new[rel])
    edit(project / rel, old_line, old_line + "  # pinned by ops")
    commit(project, "Pin")
    return rel


# ---- the edited, uncommitted mlopsctl.yaml is the input ----


def test_uncommitted_edit_of_the_answers_is_the_input(project: Path, tmp_path: Path) -> None:
    edit(project / ANSWERS, "governance_level: staging", "governance_level: production")
    edited = (project / ANSWERS).read_bytes()
    result = run("update", str(project))
    assert result.exit_code == 0, result.output
    assert "uncommitted edit" in result.stdout
    assert "governance_level: staging -> production" in result.stdout
    # the user's file is kept byte for byte, the rest is the fresh generation
    assert (project / ANSWERS).read_bytes() == edited
    assert tree(project) == fresh(tmp_path / "fresh", ["governance_level=production"])


def test_uncommitted_edit_with_own_wording_and_a_set_on_top(project: Path) -> None:
    """Theirs is the answers the edited file holds with --set over them; the base is the same
    answers without --set: only the --set answer changes in the user's file."""
    edit(project / ANSWERS, "  latency_ms: 200.0", "  latency_ms: 30   # agreed with product")
    result = run("update", str(project), "--set", "governance_level=production")
    assert result.exit_code == 0, result.output
    text = (project / ANSWERS).read_text()
    assert "  latency_ms: 30   # agreed with product" in text
    assert "governance_level: production" in text
    assert "latency_ms: 200.0 -> 30.0" in result.stdout


def test_uncommitted_edit_plus_another_dirty_file_is_refused(project: Path) -> None:
    edit(project / ANSWERS, "governance_level: staging", "governance_level: production")
    append(project / "README.md", "work in progress")
    (project / "notes.txt").write_text("scratch\n", encoding="utf-8")
    before = tree(project)
    status = git(project, "status", "--porcelain")
    result = run("update", str(project))
    assert result.exit_code == 2
    err = " ".join(result.stderr.split())
    assert "uncommitted changes: README.md, notes.txt;" in err  # the others, named
    assert "mlopsctl.yaml," not in err
    # the hint sets the others aside without the answers: never a plain git stash
    assert "git stash push --include-untracked -- . ':(exclude)mlopsctl.yaml'" in err
    assert "(git stash --include-untracked)" not in err
    assert tree(project) == before
    assert git(project, "status", "--porcelain") == status


def test_the_stash_the_hint_gives_keeps_the_edit_and_update_then_runs(
    project: Path, tmp_path: Path
) -> None:
    edit(project / ANSWERS, "governance_level: staging", "governance_level: production")
    append(project / "README.md", "work in progress")
    git(project, "stash", "push", "--include-untracked", "-q", "--", ".", ":(exclude)mlopsctl.yaml")
    assert "governance_level: production" in (project / ANSWERS).read_text()
    result = run("update", str(project))
    assert result.exit_code == 0, result.output
    assert tree(project) == fresh(tmp_path / "fresh", ["governance_level=production"])


def test_staged_edit_of_the_answers_is_the_input(project: Path) -> None:
    edit(project / ANSWERS, "governance_level: staging", "governance_level: production")
    git(project, "add", ANSWERS)
    result = run("update", str(project))
    assert result.exit_code == 0, result.output
    assert (project / "docs/model-card.md").is_file()  # a production-only file


def test_uncommitted_answers_in_a_project_inside_a_larger_repository(tmp_path: Path) -> None:
    outer = tmp_path / "mono"
    inner = outer / "services" / PROJECT
    generate(requirements(), inner)
    git(outer, "init", "-q", "-b", "main")
    git(outer, "config", "user.name", "Test User")
    git(outer, "config", "user.email", "test@example.com")
    commit(outer, "Monorepo")
    edit(inner / ANSWERS, "governance_level: staging", "governance_level: production")
    (outer / "elsewhere.txt").write_text("outside the project\n")
    result = run("update", str(inner))
    assert result.exit_code == 0, result.output
    assert (inner / "docs/model-card.md").is_file()


def test_deleted_answers_file_is_not_taken_for_an_edit(project: Path) -> None:
    (project / ANSWERS).unlink()
    result = run("update", str(project))
    assert result.exit_code == 2
    assert "uncommitted changes: mlopsctl.yaml" in result.stderr


def test_conflict_hint_keeps_the_uncommitted_edit_out_of_the_undo(
    project: Path, tmp_path: Path
) -> None:
    rel = conflicting_edit(project, tmp_path)
    edit(project / ANSWERS, "governance_level: staging", "governance_level: production")
    result = run("update", str(project))
    assert result.exit_code == 3, result.output
    err = " ".join(result.stderr.split())
    assert f"{rel}: 1 conflict" in err
    assert "git checkout -- . ':(exclude)mlopsctl.yaml' && git clean -fd" in err
    # the undo the hint gives drops the update and keeps the edit
    git(project, "checkout", "--", ".", ":(exclude)mlopsctl.yaml")
    git(project, "clean", "-q", "-fd")
    assert "governance_level: production" in (project / ANSWERS).read_text()
    assert conflicted_files(project) == set()


# ---- conflicts named whenever the update ends early ----


def test_a_signal_at_every_write_of_a_conflicted_update_names_the_conflicted_files(
    project: Path, tmp_path: Path
) -> None:
    from tests.test_faults import Injector, injected, signalling

    rel = conflicting_edit(project, tmp_path)
    plan = update_module.plan_update(project, sets=["governance_level=production"])
    assert [f.path for f in plan.conflicts] == [rel]
    n = 0
    while True:
        n += 1
        with injected(Injector(n, signalling(signal.SIGINT))) as inj:
            try:
                update_module.apply_update(plan)
            except Interrupted as exc:
                assert "the update is in place" in exc.message
                assert f"conflict markers left in {rel}" in exc.message, n
                assert exc.hint is not None and "markers" in exc.hint
                assert conflicted_files(project) == {rel}
        if not inj.fired:
            break
        git(project, "reset", "-q", "--hard")
        git(project, "clean", "-q", "-fd")
    assert n > 20  # the signal reached every write of the update


@pytest.mark.slow
def test_signals_at_random_moments_of_a_conflicted_update(project: Path, tmp_path: Path) -> None:
    """A real process: whenever an interrupt finds the update in place, it names the file."""
    import subprocess
    import sys
    import time

    rel = conflicting_edit(project, tmp_path)
    cmd = [sys.executable, "-m", "mlopsctl", "update", str(project)]
    cmd += ["--set", "governance_level=production"]
    seen = set()
    for delay in (0.3, 0.6, 0.9, 1.2, 1.5, 2.0):
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(delay)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
        if "the update is in place" in err:
            assert proc.returncode == 130
            assert f"conflict markers left in {rel}" in " ".join(err.split()), err
            seen.add("in place")
        elif proc.returncode == 3:
            assert f"{rel}: 1 conflict" in err
            seen.add("finished")
        else:
            assert proc.returncode == 130, err
            assert conflicted_files(project) == set()
            seen.add("nothing")
        git(project, "reset", "-q", "--hard")
        git(project, "clean", "-q", "-fd")
    assert seen


def test_late_interrupt_after_a_conflicted_update_names_the_conflicted_files(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Ctrl-C while the report is printed, after the update is in place."""
    import mlopsctl.cli.update as cli_update

    rel = conflicting_edit(project, tmp_path)

    def interrupted_report(plan: Any, *, dry_run: bool) -> int:
        raise KeyboardInterrupt

    monkeypatch.setattr(cli_update, "_report", interrupted_report)
    result = run("update", str(project), "--set", "governance_level=production")
    assert result.exit_code == 130
    err = " ".join(result.stderr.split())
    assert "interrupted: the update is in place" in err
    assert f"conflict markers left in {rel}" in err
    assert conflicted_files(project) == {rel}


def test_output_failure_after_a_conflicted_update_names_the_conflicted_files(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mlopsctl.cli.update as cli_update
    from mlopsctl.errors import OutputError

    rel = conflicting_edit(project, tmp_path)

    def closed(plan: Any, *, dry_run: bool) -> int:
        raise OutputError("cannot write to standard output: it is closed")

    monkeypatch.setattr(cli_update, "_report", closed)
    result = run("update", str(project), "--set", "governance_level=production")
    assert result.exit_code == 74
    assert f"conflict markers left in {rel}" in " ".join(result.stderr.split())


# ---- --format json ----


def test_update_json_report(project: Path) -> None:
    append(project / "README.md", "Our own note.")
    commit(project, "Note")
    result = run("update", str(project), "--format", "json", "--set", "governance_level=production")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)  # stdout is the JSON document alone
    assert doc["schema_version"] == 1 and doc["command"] == "update"
    assert doc["written"] is True and doc["dry_run"] is False and doc["exit_code"] == 0
    actions = {f["path"]: f["action"] for f in doc["files"]}
    assert actions["README.md"] == "merged"
    assert actions["docs/model-card.md"] == "created"
    assert "updated" in actions.values()
    assert {"section": "answers", "key": "governance_level", "old": "staging",
            "new": "production"} in doc["decisions"]  # fmt: skip
    assert doc["conflicts"] == []
    assert set(doc["versions"]) == {"mlopsctl_version", "template_version", "catalog_digest"}


def test_update_json_report_of_conflicts_exits_3(project: Path, tmp_path: Path) -> None:
    rel = conflicting_edit(project, tmp_path)
    for dry in (True, False):
        args = ["--dry-run"] if dry else []
        result = run(
            "update", str(project), "-f", "json", *args, "--set", "governance_level=production"
        )
        assert result.exit_code == 3, result.output
        doc = json.loads(result.stdout)
        assert doc["dry_run"] is dry and doc["written"] is (not dry)
        assert doc["exit_code"] == 3 and doc["conflicts"] == [rel]
        entry = next(f for f in doc["files"] if f["path"] == rel)
        assert entry["action"] == "conflict" and entry["conflicts"] == 1
    assert conflicted_files(project) == {rel}


def test_update_json_warnings_go_to_stderr(project: Path) -> None:
    append(project / "README.md", "work in progress")
    result = run("update", str(project), "-f", "json", "--dry-run")
    assert result.exit_code == 0
    assert json.loads(result.stdout)["warnings"]
    assert "a real update would refuse to run" in result.stderr


def test_update_json_up_to_date(project: Path) -> None:
    result = run("update", str(project), "--format", "json")
    assert result.exit_code == 0
    doc = json.loads(result.stdout)
    assert doc["files"] == [] and doc["written"] is False
