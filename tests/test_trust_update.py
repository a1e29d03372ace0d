"""A repository handed to ``update`` (and the parts of ``validate`` that read ``.mlopsctl/``) is
untrusted input: a corpus of hostile repositories, each with its expected exit code, and a
sentinel directory beside the project whose content must never change; git configuration
that would run programs; line-ending conversion; a killed update; file modes; secret scanners.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from mlopsctl import layout
from mlopsctl.cli.app import app
from tests.test_hostile import snapshot
from tests.test_update import PROJECT, commit, fresh, git, make_project, tree

CHANGE = ["--set", "governance_level=production", "--set", "kubernetes=false"]
DIGEST = "sha256:" + "0" * 64


def run(*args: str) -> Any:
    return CliRunner().invoke(app, list(args), catch_exceptions=False)


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_project(tmp_path_factory.mktemp("pristine") / PROJECT)


@pytest.fixture
def world(pristine: Path, tmp_path: Path) -> tuple[Path, Path]:
    """(project, sentinel): a copy of the project and, beside it, a directory it must not touch
    (holding a copy of the project's files, so that a path climbing out finds something)."""
    project = Path(shutil.copytree(pristine, tmp_path / "work" / PROJECT, symlinks=True))
    sentinel = tmp_path / "work" / "sentinel"
    shutil.copytree(pristine, sentinel, ignore=shutil.ignore_patterns(".git"))
    (sentinel / "victim.txt").write_text("must survive\n", encoding="utf-8")
    return project, sentinel


def state_of(project: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((project / layout.STATE_FILE).read_text(encoding="utf-8"))
    return data


def write_state(project: Path, state: Any) -> None:
    (project / layout.STATE_FILE).write_text(json.dumps(state, indent=2), encoding="utf-8")


def outside(root: Path) -> dict[str, Any]:
    """Everything in the project's parent but the project itself."""
    return {k: v for k, v in snapshot(root).items() if not k.startswith(PROJECT)}


# ---- The corpus ------------------------------------------------------------------------------


def _files_key(rel: str) -> Callable[[Path, Path], None]:
    def mutate(project: Path, sentinel: Path) -> None:
        state = state_of(project)
        state["generated"]["files"][rel.format(sentinel=sentinel)] = DIGEST
        write_state(project, state)

    return mutate


def _internal_entry(rel: str) -> Callable[[Path, Path], None]:
    def mutate(project: Path, sentinel: Path) -> None:
        state = state_of(project)
        state["generated"]["internal"][rel.format(sentinel=sentinel)] = layout.digest(
            b"must survive\n"
        )
        write_state(project, state)

    return mutate


def _set(path: tuple[str, ...], value: Any) -> Callable[[Path, Path], None]:
    def mutate(project: Path, sentinel: Path) -> None:
        state = state_of(project)
        node = state
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value.format(sentinel=sentinel) if isinstance(value, str) else value
        write_state(project, state)

    return mutate


def _raw(rel: str, text: str) -> Callable[[Path, Path], None]:
    def mutate(project: Path, sentinel: Path) -> None:
        (project / rel).write_text(text, encoding="utf-8")

    return mutate


def _link_dir(rel: str) -> Callable[[Path, Path], None]:
    """Replace a directory of the project by a link to its copy in the sentinel."""

    def mutate(project: Path, sentinel: Path) -> None:
        shutil.rmtree(project / rel)
        (project / rel).symlink_to(sentinel / rel, target_is_directory=True)

    return mutate


def _link_file(rel: str, target: str) -> Callable[[Path, Path], None]:
    def mutate(project: Path, sentinel: Path) -> None:
        (project / rel).unlink()
        (project / rel).symlink_to(target)

    return mutate


def _link_mlopsctl(project: Path, sentinel: Path) -> None:
    shutil.copytree(project / ".mlopsctl", sentinel / ".mlopsctl-copy")
    shutil.rmtree(project / ".mlopsctl")
    (project / ".mlopsctl").symlink_to(sentinel / ".mlopsctl-copy", target_is_directory=True)


HOSTILE: dict[str, tuple[Callable[[Path, Path], None], str]] = {
    # name: (mutation, what the error names)
    "files-dotdot": (_files_key("../sentinel/victim.txt"), "generated.files"),
    "files-absolute": (_files_key("{sentinel}/victim.txt"), "generated.files"),
    "files-backslash": (_files_key("..\\sentinel\\victim.txt"), "backslash"),
    "files-nul": (_files_key("README.md\u0000x"), "control character"),
    "files-dot-component": (_files_key("./README.md"), "normal form"),
    "files-internal": (_files_key(".mlopsctl/state.json"), "not a generated artifact"),
    "internal-dotdot": (_internal_entry(".mlopsctl/../../sentinel/victim.txt"), "internal"),
    "internal-absolute": (_internal_entry("{sentinel}/victim.txt"), "internal"),
    "internal-user-file": (_internal_entry("README.md"), "internal"),
    "base-dir-elsewhere": (_set(("generated", "base_dir"), "../sentinel"), "base_dir"),
    "base-dir-absolute": (_set(("generated", "base_dir"), "{sentinel}"), "base_dir"),
    "files-wrong-type": (_set(("generated", "files"), ["README.md"]), "generated.files"),
    "digest-wrong-type": (_set(("generated", "files", "README.md"), 5), "generated.files"),
    "floor-wrong-type": (_set(("tier_floor",), ["T3"]), "tier_floor"),
    "unknown-key": (_set(("run_this",), "rm -rf /"), "run_this"),
    "state-not-object": (_raw(layout.STATE_FILE, "[1, 2]"), "state.json"),
    "state-nested": (_raw(layout.STATE_FILE, "[" * 50_000 + "]" * 50_000), "state.json"),
    "state-not-json": (_raw(layout.STATE_FILE, "{"), "state.json"),
    "design-wrong-type": (_raw(layout.DESIGN_FILE, '{"fired_rules": 5}'), "fired_rules"),
    "design-not-object": (_raw(layout.DESIGN_FILE, '"design"'), "design.json"),
    "mlopsctl-symlink": (_link_mlopsctl, "symbolic link"),
    "base-symlink": (_link_dir(".mlopsctl/base"), "symbolic link"),
    "project-dir-symlink": (_link_dir("config"), "symbolic link"),
    "generated-file-to-dev-zero": (_link_file("README.md", "/dev/zero"), "symbolic link"),
    "answers-to-dev-zero": (_link_file("mlopsctl.yaml", "/dev/zero"), "symbolic link"),
}


@pytest.mark.parametrize("dry_run", [False, True], ids=["update", "dry-run"])
@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_repository_is_refused_before_anything_is_written(
    case: str, dry_run: bool, world: tuple[Path, Path]
) -> None:
    project, sentinel = world
    mutate, named = HOSTILE[case]
    mutate(project, sentinel)
    commit(project, "Hostile")
    before, around = snapshot(project), outside(project.parent)
    result = run("update", str(project), *CHANGE, *(["--dry-run"] if dry_run else []))
    assert result.exit_code == 2, result.output
    assert "internal error" not in result.output
    assert named in result.stderr
    assert snapshot(project) == before
    assert outside(project.parent) == around


def test_a_symlinked_directory_created_after_planning_is_never_written_through(
    world: tuple[Path, Path],
) -> None:
    """The swap checks every path again right before it writes."""
    from mlopsctl import update as update_module

    project, sentinel = world
    around = snapshot(sentinel)
    plan = update_module.plan_update(project, sets=CHANGE[1::2])
    target = next(c.path for c in plan.changed if "/" in c.path and c.after is not None)
    directory = project / target.split("/")[0]
    shutil.rmtree(directory)
    directory.symlink_to(sentinel / target.split("/")[0], target_is_directory=True)
    with pytest.raises(layout.UnsafePathError):
        update_module.apply_update(plan)
    assert snapshot(sentinel) == around


# ---- What update deletes ---------------------------------------------------------------------


def test_an_internal_file_is_deleted_only_when_its_digest_matches(
    world: tuple[Path, Path],
) -> None:
    project, _ = world
    state = state_of(project)
    notes = {
        ".mlopsctl/matching.txt": (b"as recorded\n", layout.digest(b"as recorded\n")),
        ".mlopsctl/edited.txt": (b"edited by hand\n", layout.digest(b"as recorded\n")),
    }
    for rel, (data, recorded) in notes.items():
        (project / rel).write_bytes(data)
        state["generated"]["internal"][rel] = recorded
    write_state(project, state)
    commit(project, "Two internal files")
    result = run("update", str(project), *CHANGE)
    assert result.exit_code == 0, result.output
    assert not (project / ".mlopsctl/matching.txt").exists()
    assert (project / ".mlopsctl/edited.txt").read_bytes() == b"edited by hand\n"
    assert "kept .mlopsctl/edited.txt" in result.stderr and "does not match" in result.stderr


def test_internal_files_of_an_older_project_without_digests_are_kept(
    world: tuple[Path, Path],
) -> None:
    project, _ = world
    state = state_of(project)
    (project / ".mlopsctl/legacy.txt").write_text("from an older mlopsctl\n", encoding="utf-8")
    state["generated"]["internal"] = [*state["generated"]["internal"], ".mlopsctl/legacy.txt"]
    write_state(project, state)
    commit(project, "An older project's list")
    result = run("update", str(project), *CHANGE)
    assert result.exit_code == 0, result.output
    assert (project / ".mlopsctl/legacy.txt").is_file()
    assert "kept .mlopsctl/legacy.txt" in result.stderr and "no digest" in result.stderr
    # the pristine copies of the removed component went: their digests are the artifacts'
    assert not any(p.startswith(".mlopsctl/base/k8s/") for p in tree(project))


def test_a_project_in_the_older_state_format_updates(world: tuple[Path, Path]) -> None:
    """Bare hexadecimal digests and an internal list without digests, as older mlopsctl wrote."""
    project, _ = world
    state = state_of(project)
    generated = state["generated"]
    generated["files"] = {k: layout.hex_digest(v) for k, v in generated["files"].items()}
    generated["own_files"] = {k: layout.hex_digest(v) for k, v in generated["own_files"].items()}
    generated["source"] = layout.hex_digest(generated["source"])
    generated["internal"] = sorted([*generated["internal"], layout.STATE_FILE])
    write_state(project, state)
    commit(project, "Older format")
    result = run("update", str(project), *CHANGE)
    assert result.exit_code == 0, result.output
    assert "kept" not in result.stderr
    assert isinstance(state_of(project)["generated"]["internal"], dict)


def test_state_records_a_digest_for_every_internal_file(pristine: Path) -> None:
    internal = state_of(pristine)["generated"]["internal"]
    assert isinstance(internal, dict)
    on_disk = {p for p in tree(pristine) if p.startswith(".mlopsctl/")} - {layout.STATE_FILE}
    assert set(internal) == on_disk
    for rel, recorded in internal.items():
        assert recorded == layout.digest((pristine / rel).read_bytes())


# ---- The one path function -------------------------------------------------------------------


@pytest.mark.parametrize(
    "rel",
    [
        "",
        "/etc/passwd",
        "../x",
        "a/../../x",
        "a//b",
        "./a",
        "a/.",
        "a\\b",
        "a\x00b",
        "a\nb",
        "x" * 2000,
        "a/" + "y" * 300,
    ],
)
def test_resolve_refuses_what_is_not_a_plain_relative_path(rel: str, tmp_path: Path) -> None:
    with pytest.raises(layout.UnsafePathError) as info:
        layout.resolve(tmp_path, rel, source="state.json", key="k")
    assert info.value.exit_code == 2
    assert info.value.file == "state.json" and info.value.key == "k"


# ---- validate reads .mlopsctl/ through the same reader ---------------------------------------


@pytest.mark.parametrize(
    ("rel", "text"),
    [
        (layout.STATE_FILE, "[1, 2]"),
        (layout.STATE_FILE, '{"tier_floor": {"T3": 1}}'),
        (layout.STATE_FILE, '{"generated": {"files": {"../x": "' + DIGEST + '"}}}'),
        (layout.DESIGN_FILE, '{"fired_rules": 5}'),
    ],
    ids=["state-list", "floor-mapping", "state-dotdot", "design-wrong-type"],
)
def test_validate_reports_a_malformed_state_as_a_finding(
    rel: str, text: str, world: tuple[Path, Path]
) -> None:
    project, _ = world
    (project / rel).write_text(text, encoding="utf-8")
    result = run("validate", str(project), "--select", "MLV401", "--format", "json")
    assert result.exit_code == 1, result.output
    findings = json.loads(result.stdout)["findings"]
    assert any(f["path"] == rel for f in findings), findings


def test_every_check_reads_a_malformed_design_as_absent_never_exit_70(
    world: tuple[Path, Path],
) -> None:
    project, _ = world
    (project / layout.DESIGN_FILE).write_text(
        '{"thresholds": [1], "requirements": [2]}', encoding="utf-8"
    )
    result = run("validate", str(project), "--format", "json")
    assert result.exit_code == 1, result.output
    findings = json.loads(result.stdout)["findings"]
    assert [f["check"] for f in findings if f["path"] == layout.DESIGN_FILE] == ["MLV401"]


# ---- git runs none of the repository's programs ----------------------------------------------


def _booby_trap(project: Path, sentinel: Path) -> Path:
    """A .git/config and .gitattributes that name programs; each would touch a mark file."""
    marks = sentinel / "marks"
    marks.mkdir()
    trap = f"touch {marks}/$0-ran; cat"

    def cmd(name: str) -> str:
        return f"sh -c '{trap}' {name}"

    (project / ".gitattributes").write_text(
        "* filter=evil diff=evil merge=evil\n", encoding="utf-8"
    )
    commit(project, "Attributes")
    for key, value in {
        "core.fsmonitor": cmd("fsmonitor"),
        "filter.evil.clean": cmd("clean"),
        "filter.evil.smudge": cmd("smudge"),
        "filter.evil.process": cmd("process"),
        "filter.evil.required": "true",
        "diff.evil.textconv": cmd("textconv"),
        "diff.evil.command": cmd("diffcommand"),
        "diff.external": cmd("external"),
        "merge.evil.driver": cmd("merge"),
        "core.pager": cmd("pager"),
    }.items():
        git(project, "config", key, value)
    hooks = project / ".git/hooks"
    for hook in ("post-index-change", "post-checkout", "pre-commit", "reference-transaction"):
        (hooks / hook).write_text(f"#!/bin/sh\ntouch {marks}/hook-{hook}\n", encoding="utf-8")
        (hooks / hook).chmod(0o755)
    # stat data changes, so git status would run the clean filter on every file
    for path in project.rglob("*"):
        if path.is_file() and ".git" not in path.parts:
            os.utime(path, (1, 1))
    return marks


def test_validate_and_update_run_no_program_the_repository_configures(
    world: tuple[Path, Path],
) -> None:
    project, sentinel = world
    marks = _booby_trap(project, sentinel)
    result = run("validate", str(project))
    assert result.exit_code in (0, 1), result.output
    result = run("update", str(project), *CHANGE, "--dry-run")
    assert result.exit_code == 0, result.output
    result = run("update", str(project), *CHANGE)
    assert result.exit_code == 0, result.output
    assert sorted(os.listdir(marks)) == []


def test_the_booby_trap_works_with_plain_git(world: tuple[Path, Path]) -> None:
    """The same configuration does run programs under a plain ``git status``."""
    project, sentinel = world
    marks = _booby_trap(project, sentinel)
    subprocess.run(["git", "status"], cwd=project, capture_output=True, check=False)
    assert os.listdir(marks)


# ---- Line endings ----------------------------------------------------------------------------


def test_update_on_an_autocrlf_checkout_changes_only_what_the_answers_change(
    pristine: Path, tmp_path: Path
) -> None:
    checkout = tmp_path / "crlf"
    subprocess.run(
        ["git", "-c", "core.autocrlf=true", "clone", "-q", str(pristine), str(checkout)],
        check=True,
        capture_output=True,
    )
    git(checkout, "config", "core.autocrlf", "true")
    assert b"\r\n" in (checkout / "README.md").read_bytes()
    result = run("update", str(checkout), *CHANGE)
    assert result.exit_code == 0, result.output
    assert "CONFLICT" not in result.output
    before = fresh(tmp_path / "old")
    after = fresh(tmp_path / "new", CHANGE[1::2])
    expected = {p for p in set(before) | set(after) if before.get(p) != after.get(p)}
    status = git(checkout, "status", "--porcelain", "-z", "--untracked-files=all")
    changed = {e[3:] for e in status.split("\0") if e}
    assert changed == expected


# ---- A killed update -------------------------------------------------------------------------

_KILLER = textwrap.dedent(
    """
    import os, signal, sys
    import mlopsctl._write as write
    at = int(sys.argv[1])
    real_swap, real_replace = write.swap, os.replace
    calls = [0]

    def replace(*args, **kwargs):
        calls[0] += 1
        if calls[0] == at:
            os.kill(os.getpid(), signal.SIGKILL)
        return real_replace(*args, **kwargs)

    def swap(*args, **kwargs):
        os.replace = replace
        return real_swap(*args, **kwargs)

    write.swap = swap
    from mlopsctl.cli import main
    sys.argv = ["mlopsctl", "update", *sys.argv[2:]]
    main()
    """
)


def _leftovers(*dirs: Path) -> list[str]:
    return sorted(
        p.name for d in dirs for p in d.iterdir() if p.name.startswith(".mlopsctl-update-")
    )


@pytest.fixture(scope="module")
def after_update(pristine: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    project = Path(shutil.copytree(pristine, tmp_path_factory.mktemp("ref") / PROJECT))
    assert run("update", str(project), *CHANGE).exit_code == 0
    return {k: v for k, v in snapshot(project).items() if k.split("/")[0] != ".git"}


@pytest.mark.parametrize("at", [1, 2, 7, 30, 60])
def test_an_update_killed_while_swapping_is_undone_by_the_next_run(
    at: int, world: tuple[Path, Path], after_update: dict[str, Any], tmp_path: Path
) -> None:
    project, _ = world
    before = {k: v for k, v in snapshot(project).items() if k.split("/")[0] != ".git"}
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = {**os.environ, "TMPDIR": str(tmp)}
    proc = subprocess.run(
        [sys.executable, "-c", _KILLER, str(at), str(project), *CHANGE],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert _leftovers(project.parent)  # the journal is there
    # a dry run says so and changes nothing
    killed = snapshot(project)
    result = run("update", str(project), "--dry-run", *CHANGE)
    assert result.exit_code == 2, result.output
    assert "was killed" in result.stderr and "without --dry-run" in result.stderr
    assert snapshot(project) == killed
    # the next real run undoes it, then updates
    result = run("update", str(project), *CHANGE)
    assert result.exit_code == 0, result.output
    assert "was undone" in result.stderr
    assert {k: v for k, v in snapshot(project).items() if k.split("/")[0] != ".git"} == (
        after_update
    )
    assert _leftovers(project.parent, tmp) == []
    assert before != after_update


def test_a_killed_update_is_not_undone_over_later_work(world: tuple[Path, Path]) -> None:
    project, _ = world
    proc = subprocess.run(
        [sys.executable, "-c", _KILLER, "30", str(project), *CHANGE],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    (scratch,) = [project.parent / n for n in _leftovers(project.parent)]
    replaced = sorted(p for p in (scratch / "old").rglob("*") if p.is_file())
    later = project / replaced[0].relative_to(scratch / "old")
    later.write_text("work done after the kill\n", encoding="utf-8")
    touched = snapshot(project)
    result = run("update", str(project), *CHANGE)
    assert result.exit_code == 2, result.output
    assert "has changed since" in result.stderr and str(scratch / "old") in result.stderr
    assert snapshot(project) == touched
    assert scratch.is_dir()


def test_stale_scratch_directories_are_removed_and_live_ones_left(
    world: tuple[Path, Path],
) -> None:
    project, _ = world
    stale = Path(tempfile.mkdtemp(prefix=".mlopsctl-update-", dir=project.parent))
    (stale / "theirs").mkdir()
    live = Path(tempfile.mkdtemp(prefix=".mlopsctl-update-", dir=project.parent))
    fd = os.open(live, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        result = run("update", str(project), *CHANGE)
        assert result.exit_code == 0, result.output
        assert not stale.exists()
        assert live.is_dir()
    finally:
        os.close(fd)
        shutil.rmtree(live)


# ---- Signals ---------------------------------------------------------------------------------


@pytest.mark.parametrize("sig", ["SIGHUP", "SIGQUIT"])
def test_sighup_and_sigquit_are_held_and_end_a_command_as_sigterm_does(sig: str) -> None:
    script = textwrap.dedent(
        f"""
        import os, signal, time
        import typer
        from mlopsctl.interrupts import Progress, held
        progress = Progress()
        with held(progress):
            os.kill(os.getpid(), signal.{sig})
        print("held", progress.signals == [signal.{sig}])
        from mlopsctl.cli._common import errors_to_exit_codes
        try:
            with errors_to_exit_codes():
                os.kill(os.getpid(), signal.{sig})
                time.sleep(30)
        except typer.Exit as exc:
            print("exit", exc.exit_code)
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False, timeout=60
    )
    assert proc.returncode == 0, (proc.returncode, proc.stderr)
    assert proc.stdout.split() == ["held", "True", "exit", "130"]


# ---- File modes ------------------------------------------------------------------------------


@pytest.mark.parametrize("umask", [0o000, 0o077])
def test_every_written_file_follows_the_mode_rule_whatever_the_umask(
    umask: int, pristine: Path, tmp_path: Path
) -> None:
    old = os.umask(umask)
    try:
        generated = tmp_path / "gen"
        fresh(generated)
        project = Path(shutil.copytree(pristine, tmp_path / PROJECT, symlinks=True))
        result = run("update", str(project), *CHANGE)
        assert result.exit_code == 0, result.output
    finally:
        os.umask(old)
    for root in (generated, project):
        for path in root.rglob("*"):
            if path.is_file() and ".git" not in path.relative_to(root).parts:
                mode = path.stat().st_mode & 0o777
                assert mode in (0o644, 0o755), (path, oct(mode))


def test_the_mode_rule_keeps_only_the_executable_bit() -> None:
    from mlopsctl import _modes

    assert _modes.mode_like(0o100700) == 0o755
    assert _modes.mode_like(0o100666) == 0o644
    assert _modes.mode_like(0o100600) == 0o644


# ---- Secret scanners -------------------------------------------------------------------------


def _detect_secrets(root: Path) -> dict[str, Any]:
    exe = Path(sys.executable).parent / "detect-secrets"
    proc = subprocess.run(
        [str(exe), "scan", "--all-files", "."], cwd=root, capture_output=True, text=True, check=True
    )
    results: dict[str, Any] = json.loads(proc.stdout)["results"]
    return results


@pytest.mark.parametrize("sets", [[], CHANGE[1::2]], ids=["defaults", "production"])
def test_detect_secrets_passes_on_a_generated_repository(sets: list[str], tmp_path: Path) -> None:
    project = tmp_path / "gen"
    fresh(project, sets)
    assert _detect_secrets(project) == {}
    # ... and still sees a real secret there
    (project / "settings.py").write_text(
        'aws_secret_access_key = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"\n', encoding="utf-8"
    )
    assert "settings.py" in _detect_secrets(project)


# ---- Random damage ---------------------------------------------------------------------------

_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.sampled_from(
        ["../sentinel/victim.txt", "/etc/passwd", "README.md", ".mlopsctl/base", "..", DIGEST]
    ),
    st.text(max_size=20),
    st.lists(st.text(max_size=10), max_size=3),
    st.dictionaries(st.sampled_from(["../x", "README.md", "a"]), st.just(DIGEST), max_size=3),
)


def _paths(doc: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield prefix
    if isinstance(doc, dict):
        for key, value in doc.items():
            yield from _paths(value, (*prefix, key))


@st.composite
def damage(draw: st.DrawFn) -> list[tuple[str, Any, Any]]:
    moves = []
    for _ in range(draw(st.integers(1, 3))):
        target = draw(st.sampled_from(["state", "design", "base", "base-link", "raw"]))
        moves.append((target, draw(st.integers(0, 10**6)), draw(_VALUES)))
    return moves


def _apply(project: Path, sentinel: Path, moves: list[tuple[str, Any, Any]]) -> None:
    for target, pick, value in moves:
        if target in {"state", "design"}:
            rel = layout.STATE_FILE if target == "state" else layout.DESIGN_FILE
            try:
                doc = json.loads((project / rel).read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            paths = list(_paths(doc))
            path = paths[pick % len(paths)]
            if not path:
                doc = value
            else:
                node = doc
                for key in path[:-1]:
                    node = node[key]
                node[path[-1]] = value
            (project / rel).write_text(json.dumps(doc), encoding="utf-8")
        else:
            copies = sorted(p for p in (project / layout.BASE_DIR).rglob("*") if p.is_file())
            if not copies:
                continue
            copy = copies[pick % len(copies)]
            if target == "base":
                copy.write_bytes(json.dumps(value).encode())
            elif target == "base-link":
                copy.unlink()
                copy.symlink_to(sentinel / "victim.txt")
            else:
                (project / layout.STATE_FILE).write_bytes(json.dumps(value).encode()[:50])


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(moves=damage(), dry_run=st.booleans())
def test_random_damage_never_writes_outside_and_never_exits_70(
    moves: list[tuple[str, Any, Any]], dry_run: bool, pristine: Path, tmp_path: Path
) -> None:
    work = Path(tempfile.mkdtemp(dir=tmp_path))
    project = Path(shutil.copytree(pristine, work / PROJECT, symlinks=True))
    sentinel = work / "sentinel"
    sentinel.mkdir()
    (sentinel / "victim.txt").write_text("must survive\n", encoding="utf-8")
    _apply(project, sentinel, moves)
    commit(project, "Damage")
    around = outside(work)
    result = run("update", str(project), *CHANGE, *(["--dry-run"] if dry_run else []))
    assert result.exit_code in (0, 2, 3), result.output
    assert "internal error" not in result.output
    assert outside(work) == around
    shutil.rmtree(work)
