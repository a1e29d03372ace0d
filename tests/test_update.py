"""``mlopsctl update`` through the CLI, on real git repositories in temporary directories.

Expected trees are fresh generations with the new answers, never outputs of update itself.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from mlopsctl.api import generate, load_requirements
from mlopsctl.cli.app import app

PROJECT = "demo"
CONFLICT_START = "<<<<<<< "


def git(cwd: Path, *args: str) -> str:
    proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True)
    return proc.stdout


def requirements(sets: list[str] | None = None) -> Any:
    """Every default answer, then ``--set`` style overrides (nested keys keep their siblings)."""
    from mlopsctl.requirements import Requirements

    answers = Requirements().model_dump(mode="json", exclude_none=True)
    answers["project_name"] = PROJECT
    return load_requirements(answers, sets=sets or [])


def make_project(dest: Path, sets: list[str] | None = None) -> Path:
    """Generate with the given answers, then ``git init`` and commit, as a user would."""
    generate(requirements(sets), dest)
    git(dest, "init", "-q", "-b", "main")
    git(dest, "config", "user.name", "Test User")
    git(dest, "config", "user.email", "test@example.com")
    git(dest, "config", "commit.gpgsign", "false")
    commit(dest, "Generate project with mlopsctl")
    return dest


def commit(dest: Path, message: str) -> None:
    git(dest, "add", "-A")
    git(dest, "commit", "-q", "--allow-empty", "-m", message)


def fresh(dest: Path, sets: list[str] | None = None) -> dict[str, bytes]:
    """The tree a fresh generation with these answers produces."""
    generate(requirements(sets), dest)
    return tree(dest)


def tree(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` but the git directory."""
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and ".git" not in p.relative_to(root).parts[:1]
    }


def run_update(dest: Path, *args: str) -> Any:
    return CliRunner().invoke(app, ["update", str(dest), *args], catch_exceptions=False)


def clone(src: Path, dest: Path) -> Path:
    """A fresh, shallow clone (as CI checks out), with its own identity configured."""
    subprocess.run(
        ["git", "clone", "-q", "--depth", "1", src.as_uri(), str(dest)],
        check=True,
        capture_output=True,
    )
    git(dest, "config", "user.name", "Test User")
    git(dest, "config", "user.email", "test@example.com")
    return dest


def copy_repo(src: Path, dest: Path) -> Path:
    shutil.copytree(src, dest, symlinks=True)
    return dest


def conflicted_files(root: Path) -> set[str]:
    return {
        rel
        for rel, data in tree(root).items()
        if any(line.startswith(CONFLICT_START.encode()) for line in data.splitlines())
    }


# ----------------------------------------------------------------------------------------------
# Fixtures and small helpers
# ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One committed project with the defaults; tests work on copies of it."""
    return make_project(tmp_path_factory.mktemp("pristine") / PROJECT)


@pytest.fixture
def project(pristine: Path, tmp_path: Path) -> Path:
    return copy_repo(pristine, tmp_path / PROJECT)


def empty_dirs(root: Path) -> set[str]:
    return {
        p.relative_to(root).as_posix()
        for p in root.rglob("*")
        if p.is_dir() and p.relative_to(root).parts[0] != ".git" and not any(p.iterdir())
    }


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def append(path: Path, line: str) -> None:
    with path.open("a", encoding="utf-8") as fh:
        fh.write(line + "\n")


def first_changed_line(before: bytes, after: bytes) -> tuple[str, str]:
    """The first line that ``after`` replaces in ``before`` (both as text)."""
    import difflib

    a = before.decode().splitlines()
    b = after.decode().splitlines()
    for tag, i1, _i2, j1, _j2 in difflib.SequenceMatcher(a=a, b=b).get_opcodes():
        if tag == "replace":
            return a[i1], b[j1]
    raise AssertionError("no replaced line")


def is_clean(root: Path) -> bool:
    return git(root, "status", "--porcelain", "--untracked-files=all") == ""


# ----------------------------------------------------------------------------------------------
# No user edits: update equals a fresh generation, byte for byte
# ----------------------------------------------------------------------------------------------

CHANGES = [
    ["governance_level=production"],
    ["scale_requirements.latency_ms=30", "scale_requirements.rps=5000"],
    ["kubernetes=false"],
    ["ci_platform=gitlab-ci"],
    ["deployment_target=batch", "framework=xgboost"],
]


@pytest.mark.parametrize("sets", CHANGES, ids=lambda s: ",".join(s))
def test_answer_change_without_edits_equals_fresh_generation(
    project: Path, tmp_path: Path, sets: list[str]
) -> None:
    result = run_update(project, *[a for s in sets for a in ("--set", s)])
    assert result.exit_code == 0, result.output
    expected = fresh(tmp_path / "fresh", sets)
    assert tree(project) == expected
    # Components that went away leave no empty directories behind either.
    assert empty_dirs(project) == set()


def test_answer_changed_in_mlopsctl_yaml_equals_fresh_generation(
    project: Path, tmp_path: Path
) -> None:
    edit(project / "mlopsctl.yaml", "governance_level: staging", "governance_level: production")
    commit(project, "Go to production")
    result = run_update(project)
    assert result.exit_code == 0, result.output
    assert tree(project) == fresh(tmp_path / "fresh", ["governance_level=production"])


def test_own_wording_in_mlopsctl_yaml_is_kept(project: Path, tmp_path: Path) -> None:
    answers = project / "mlopsctl.yaml"
    edit(answers, "  latency_ms: 200.0", "  latency_ms: 30   # agreed with the product team")
    commit(project, "Tighter latency")
    before = answers.read_bytes()
    result = run_update(project)
    assert result.exit_code == 0, result.output
    assert answers.read_bytes() == before
    expected = fresh(tmp_path / "fresh", ["scale_requirements.latency_ms=30"])
    got = tree(project)
    assert {k for k in got if got[k] != expected.get(k)} == {"mlopsctl.yaml"}
    assert set(got) == set(expected)


def test_update_twice_is_a_no_op(project: Path) -> None:
    assert run_update(project, "--set", "governance_level=production").exit_code == 0
    commit(project, "Update")
    before = tree(project)
    result = run_update(project)
    assert result.exit_code == 0, result.output
    assert "already up to date" in result.stdout
    assert tree(project) == before
    assert is_clean(project)


# ----------------------------------------------------------------------------------------------
# User edits
# ----------------------------------------------------------------------------------------------


def test_edits_survive_and_generation_changes_apply(project: Path, tmp_path: Path) -> None:
    sets = ["scale_requirements.rps=5000"]
    expected = fresh(tmp_path / "fresh", sets)
    isvc = project / "k8s/inferenceservice.yaml"
    note = "# Reviewed by the platform team."
    isvc.write_text(note + "\n" + isvc.read_text(encoding="utf-8"), encoding="utf-8")
    append(project / "README.md", "Team notes: the on-call rota lives in the wiki.")
    commit(project, "Our edits")
    assert isvc.read_bytes() != expected["k8s/inferenceservice.yaml"]

    result = run_update(project, "--set", sets[0])
    assert result.exit_code == 0, result.output
    # The merged file is the new generation with the user's line in it, nothing else.
    merged = isvc.read_text(encoding="utf-8")
    assert merged.startswith(note + "\n")
    assert merged.removeprefix(note + "\n").encode() == expected["k8s/inferenceservice.yaml"]
    readme = (project / "README.md").read_text(encoding="utf-8")
    assert readme.endswith("Team notes: the on-call rota lives in the wiki.\n")
    assert (
        readme.removesuffix("Team notes: the on-call rota lives in the wiki.\n").encode()
        == (expected["README.md"])
    )
    assert "merged" in result.stdout and "k8s/inferenceservice.yaml" in result.stdout


def test_conflict_is_marked_listed_and_exits_3(project: Path, tmp_path: Path) -> None:
    sets = ["governance_level=production"]
    expected = fresh(tmp_path / "fresh", sets)
    rel = "k8s/inferenceservice.yaml"
    old_line, new_line = first_changed_line((project / rel).read_bytes(), expected[rel])
    mine = old_line + "  # pinned by ops"
    edit(project / rel, old_line, mine)
    append(project / rel, "# keep this note at the end")
    commit(project, "Pin replicas")

    result = run_update(project, "--set", sets[0])
    assert result.exit_code == 3, result.output
    text = (project / rel).read_text(encoding="utf-8")
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("<<<<<<< "))
    middle = lines.index("=======", start)
    end = next(i for i, line in enumerate(lines) if line.startswith(">>>>>>> "))
    assert start < middle < end
    assert mine in lines[start:middle]
    assert new_line in lines[middle:end]
    assert lines[-1] == "# keep this note at the end"  # outside the conflict, kept
    assert f"{rel}: 1 conflict" in result.stderr
    assert conflicted_files(project) == {rel}
    # Everything else was updated, and the base moved on to the new generation.
    got = tree(project)
    assert {k for k in expected if got.get(k) != expected[k]} == {rel}


def test_dry_run_predicts_conflicts_with_exit_3(project: Path, tmp_path: Path) -> None:
    expected = fresh(tmp_path / "fresh", ["governance_level=production"])
    rel = "k8s/inferenceservice.yaml"
    old_line, _ = first_changed_line((project / rel).read_bytes(), expected[rel])
    edit(project / rel, old_line, old_line + "  # pinned")
    commit(project, "Pin")
    before = tree(project)
    result = run_update(project, "--dry-run", "--set", "governance_level=production")
    assert result.exit_code == 3
    assert "would leave conflicts" in result.stderr
    assert tree(project) == before


# ----------------------------------------------------------------------------------------------
# copier's known update hazards
# ----------------------------------------------------------------------------------------------


def test_file_guarded_by_one_answer_untouched_when_another_changes(project: Path) -> None:
    ci = project / ".github/workflows/ci.yaml"
    append(ci, "# extra job comes here")
    commit(project, "CI note")
    before = tree(project)
    result = run_update(project, "--set", "scale_requirements.rps=5000")
    assert result.exit_code == 0, result.output
    after = tree(project)
    assert after[".github/workflows/ci.yaml"] == before[".github/workflows/ci.yaml"]
    # Every file guarded by a component switch that did not change is still there.
    for rel in ("k8s/inferenceservice.yaml", "k8s/tracking-server.yaml", "monitoring/alerts.yaml"):
        assert rel in after


def test_component_off_removes_only_unedited_files(project: Path) -> None:
    tracking = project / "k8s/tracking-server.yaml"
    append(tracking, "# our ingress annotations follow")
    commit(project, "Tracking server note")
    mine = tracking.read_bytes()

    result = run_update(project, "--set", "kubernetes=false")
    assert result.exit_code == 0, result.output
    assert not (project / "k8s/inferenceservice.yaml").exists()
    assert tracking.read_bytes() == mine
    assert "kept" in result.stdout and "k8s/tracking-server.yaml" in result.stdout
    base = project / ".mlopsctl/base"
    assert not (base / "k8s").exists()
    commit(project, "Kubernetes off")

    # The kept file is the user's now. Turning Kubernetes back on generates it again over the
    # user's file with no common base: git merges the identical parts and marks the rest.
    result = run_update(project, "--set", "kubernetes=true")
    assert result.exit_code == 3, result.output
    assert (project / "k8s/inferenceservice.yaml").is_file()
    lines = tracking.read_text(encoding="utf-8").splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("<<<<<<< "))
    assert "# our ingress annotations follow" in lines[start:]
    generated = (project / ".mlopsctl/base/k8s/tracking-server.yaml").read_text(encoding="utf-8")
    assert lines[:start] == generated.splitlines()


def test_user_deleted_file_stays_deleted(project: Path) -> None:
    git(project, "rm", "-q", "docs/decisions.md", "src/train.py")
    commit(project, "We keep decisions elsewhere")
    result = run_update(project, "--set", "governance_level=production")
    assert result.exit_code == 0, result.output
    assert not (project / "docs/decisions.md").exists()
    assert not (project / "src/train.py").exists()
    assert "docs/decisions.md (deleted by you" in result.stdout
    assert "src/train.py" not in result.stdout  # unchanged by the generation: nothing to say


def test_nested_answer_change_keeps_the_other_nested_answers(project: Path) -> None:
    import yaml

    result = run_update(project, "--set", "scale_requirements.rps=5000")
    assert result.exit_code == 0, result.output
    answers = yaml.safe_load((project / "mlopsctl.yaml").read_text(encoding="utf-8"))
    assert answers["scale_requirements"] == {"rps": 5000.0, "latency_ms": 200.0}
    design = json.loads((project / ".mlopsctl/design.json").read_text(encoding="utf-8"))
    assert design["requirements"]["scale_requirements"]["latency_ms"] == 200.0
    assert design["requirements"]["scale_requirements"]["rps"] == 5000.0


def test_answers_file_option_is_applied_and_recorded(project: Path, tmp_path: Path) -> None:
    import yaml

    other = tmp_path / "prod.yaml"
    other.write_text("governance_level: production\n", encoding="utf-8")
    result = run_update(project, "--answers", str(other))
    assert result.exit_code == 0, result.output
    answers = yaml.safe_load((project / "mlopsctl.yaml").read_text(encoding="utf-8"))
    assert answers["governance_level"] == "production"
    assert tree(project) == fresh(tmp_path / "fresh", ["governance_level=production"])


# ----------------------------------------------------------------------------------------------
# Refusals: exit 2, nothing written
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["modified", "staged", "untracked"])
def test_dirty_repository_is_refused(project: Path, kind: str) -> None:
    if kind == "untracked":
        (project / "notes.txt").write_text("scratch\n", encoding="utf-8")
    else:
        append(project / "README.md", "work in progress")
        if kind == "staged":
            git(project, "add", "README.md")
    before = tree(project)
    status = git(project, "status", "--porcelain")
    result = run_update(project, "--set", "governance_level=production")
    assert result.exit_code == 2
    assert "uncommitted changes" in result.stderr
    assert "commit" in result.stderr and "stash" in result.stderr
    assert tree(project) == before
    assert git(project, "status", "--porcelain") == status


def test_directory_outside_git_is_refused(tmp_path: Path) -> None:
    dest = tmp_path / PROJECT
    generate(requirements(), dest)
    before = tree(dest)
    result = run_update(dest, "--set", "governance_level=production")
    assert result.exit_code == 2
    assert "not inside a git repository" in result.stderr
    assert "git init" in result.stderr
    assert tree(dest) == before


def test_directory_not_generated_by_mlopsctl_is_refused(tmp_path: Path) -> None:
    git(tmp_path, "init", "-q")
    result = run_update(tmp_path)
    assert result.exit_code == 2
    assert "not generated by mlopsctl" in result.stderr


def test_damaged_base_is_refused(project: Path) -> None:
    append(project / ".mlopsctl/base/README.md", "tampered")
    commit(project, "Oops")
    before = tree(project)
    result = run_update(project, "--set", "governance_level=production")
    assert result.exit_code == 2
    assert ".mlopsctl/base/README.md" in result.stderr
    assert tree(project) == before


def test_invalid_answer_names_the_field_and_writes_nothing(project: Path) -> None:
    before = tree(project)
    result = run_update(project, "--set", "scale_requirements.latency_ms=-3")
    assert result.exit_code == 2
    assert "scale_requirements.latency_ms" in result.stderr
    assert tree(project) == before


# ----------------------------------------------------------------------------------------------
# Dry run and atomicity
# ----------------------------------------------------------------------------------------------


def test_dry_run_shows_decision_and_file_diff_and_writes_nothing(project: Path) -> None:
    from mlopsctl.api import assess

    sets = ["scale_requirements.latency_ms=30"]
    old, new = assess(requirements()), assess(requirements(sets))
    newly_fired = set(new.fired_rules) - set(old.fired_rules)
    assert newly_fired  # a tight latency SLA fires serving rules

    before = tree(project)
    result = run_update(project, "--dry-run", "--set", sets[0])
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "answers.scale_requirements.latency_ms: 200.0 -> 30.0" in out
    for rule in newly_fired:
        assert f"rule {rule} now fires" in out
    assert "--- a/mlopsctl.yaml" in out and "+++ b/mlopsctl.yaml" in out
    assert "+  latency_ms: 30.0" in out
    assert "nothing was written" in out
    assert tree(project) == before
    assert is_clean(project)


def test_dry_run_on_a_dirty_repository_warns_and_writes_nothing(project: Path) -> None:
    append(project / "README.md", "draft")
    before = tree(project)
    result = run_update(project, "-n", "--set", "governance_level=production")
    assert result.exit_code == 0
    assert "a real update would refuse" in result.stderr
    assert tree(project) == before


def test_failure_while_writing_leaves_the_project_as_it_was(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mlopsctl._write as write_module

    append(project / "README.md", "our note")
    commit(project, "Note")
    before = tree(project)
    real = write_module._set_mode
    calls = {"n": 0}

    def failing_set_mode(path: Any, mode: int) -> None:
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError(28, "No space left on device")
        real(path, mode)

    monkeypatch.setattr(write_module, "_set_mode", failing_set_mode)
    result = run_update(project, "--set", "kubernetes=false")
    assert calls["n"] == 3
    assert result.exit_code == 2
    assert "No space left on device" in result.stderr and "put back" in result.stderr
    assert tree(project) == before
    assert is_clean(project)


def test_project_inside_a_larger_repository(tmp_path: Path) -> None:
    """Only the project directory must be clean; other work in the repository is left alone."""
    repo = tmp_path / "mono"
    project = repo / "services" / PROJECT
    generate(requirements(), project)
    git(repo, "init", "-q")
    git(repo, "config", "user.name", "Test User")
    git(repo, "config", "user.email", "test@example.com")
    (repo / "other.txt").write_text("committed\n", encoding="utf-8")
    commit(repo, "Monorepo")
    (repo / "other.txt").write_text("work in progress elsewhere\n", encoding="utf-8")
    result = run_update(project, "--set", "governance_level=production")
    assert result.exit_code == 0, result.output
    assert tree(project) == fresh(tmp_path / "fresh", ["governance_level=production"])
    assert (repo / "other.txt").read_text(encoding="utf-8") == "work in progress elsewhere\n"
