"""Regenerate a project after its answers changed, without losing a user edit.

Three versions of every generated file take part:

- base: what mlopsctl generated last time. Generation stores a pristine copy of every generated
  artifact under ``.mlopsctl/base/`` (committed with the project, so it survives a fresh clone and
  an mlopsctl upgrade) and records each file's SHA-256 in ``.mlopsctl/state.json``.
- theirs: the new generation, rendered from the new answers into a temporary directory.
- ours: the files as the user has them.

Each file is merged with ``git merge-file``; renames between base and theirs are found with
``git diff --no-index -M``. Nothing is written until every file merged; the result is swapped in
with the originals kept aside and put back if anything fails, and a journal beside the project
lets the next run undo a swap that SIGKILL cut short. ``.mlopsctl/`` is read (and every path
proven to stay inside the project) by ``mlopsctl.layout``; git runs through ``mlopsctl._git``.
``docs/update.md`` explains why.
"""

from __future__ import annotations

import dataclasses
import difflib
import errno
import json
import os
import re
import shutil
import stat
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from mlopsctl import _modes, layout
from mlopsctl._git import run as git_run
from mlopsctl.errors import GenerationError, Interrupted, UsageError
from mlopsctl.interrupts import current, held, redeliver, scratch_dir, stale_scratch_dirs
from mlopsctl.layout import (
    ANSWERS_FILE,
    STATE_FILE,
    BaseSnapshotError,
    is_internal,
)

TMP_PREFIX = ".mlopsctl-update-"
JOURNAL = "journal.json"  # in the scratch directory beside the project, while files are swapped

__all__ = ["BaseSnapshotError", "UpdatePlan", "apply_update", "plan_update", "update"]

Action = Literal[
    "created",  # new file in the new generation
    "updated",  # the user had not edited it: replaced by the new generation
    "merged",  # user edits and generation changes merged cleanly
    "conflict",  # merged with conflict markers
    "removed",  # its component is off and the user had not edited it
    "kept-edited",  # its component is off but the user edited it: kept
    "kept-deleted",  # the user deleted it: stays deleted although the generation changed it
    "kept-binary",  # not text: could not merge; the user's version is kept (a conflict)
    "renamed",  # the generation moved it; the user's edits went along to the new path
]


class NotAGitRepository(UsageError):
    """``update`` needs git to keep its guarantees."""


class HalfWrittenUpdate(UsageError):
    """An earlier update was killed while it swapped files in; only a real run undoes it."""


class DirtyRepository(UsageError):
    """The project has uncommitted changes; update would mix its changes with them."""


# --------------------------------------------------------------------------------------------
# The plan
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DecisionChange:
    """One difference between the old and the new design."""

    section: str  # "rules", "tier", "stack", "thresholds", "sizing", "governance", "answers", ...
    key: str
    old: Any
    new: Any


@dataclass(frozen=True)
class FileChange:
    path: str
    action: Action
    before: bytes | None  # the user's file (None: absent)
    after: bytes | None  # what update leaves (None: absent)
    renamed_from: str | None = None
    conflicts: int = 0

    @property
    def changes_disk(self) -> bool:
        return self.before != self.after


@dataclass
class UpdatePlan:
    destination: Path
    decisions: list[DecisionChange]
    files: list[FileChange]
    versions: dict[str, tuple[str | None, str | None]]
    warnings: list[str] = field(default_factory=list)
    # internal writes (.mlopsctl/): path -> content; None deletes
    internal: dict[str, bytes | None] = field(default_factory=dict)
    # file modes of the new generation, for files that do not exist yet
    modes: dict[str, int] = field(default_factory=dict)

    @property
    def conflicts(self) -> list[FileChange]:
        return [f for f in self.files if f.action in {"conflict", "kept-binary"}]

    @property
    def changed(self) -> list[FileChange]:
        return [f for f in self.files if f.changes_disk]

    def file_diff(self) -> str:
        """A unified diff of every file update changes, ``.mlopsctl/`` left out."""
        out: list[str] = []
        for change in self.changed:
            out.extend(_unified(change))
        return "".join(out)


def _unified(change: FileChange) -> list[str]:
    old_name = "/dev/null" if change.before is None else f"a/{change.renamed_from or change.path}"
    new_name = f"b/{change.path}" if change.after is not None else "/dev/null"
    before = _text(change.before)
    after = _text(change.after)
    if before is None or after is None:
        return [f"Binary files {old_name} and {new_name} differ\n"]
    lines = list(
        difflib.unified_diff(
            before.splitlines(keepends=True),
            after.splitlines(keepends=True),
            fromfile=old_name,
            tofile=new_name,
        )
    )
    eol = "\n\\ No newline at end of file\n"
    return [line if line.endswith("\n") else line + eol for line in lines]


def _text(data: bytes | None) -> str | None:
    if data is None:
        return ""
    if b"\0" in data:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


# --------------------------------------------------------------------------------------------
# git
# --------------------------------------------------------------------------------------------


def _git(args: list[str], cwd: Path, *, check: bool = True, ok: tuple[int, ...] = (0,)) -> Any:
    return git_run(args, cwd, check=check, ok=ok)


def _require_clean_git(destination: Path, *, dry_run: bool) -> list[str]:
    """Refuse a directory outside git or with uncommitted changes; return warnings."""
    proc = _git(["rev-parse", "--show-toplevel"], destination, check=False)
    if proc.returncode != 0:
        reason = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        if reason and "not a git repository" not in reason[0]:
            raise NotAGitRepository(
                f"git cannot work in {destination}: {reason[0].removeprefix('fatal: ')}",
                hint="fix what git reports (for example mark the directory safe with "
                "git config --global --add safe.directory DIR), then run mlopsctl update again",
            )
        raise NotAGitRepository(
            f"{destination} is not inside a git repository; update only runs where git can "
            "show and undo what it changed",
            hint="commit the project first: git init && git add -A && git commit -m 'Generate "
            "project with mlopsctl', then run mlopsctl update again",
        )
    status = _git(
        [
            "status",
            "--porcelain=v1",
            "-z",
            "--untracked-files=all",
            "--ignore-submodules=all",
            "--",
            ".",
        ],
        destination,
    )
    entries = [e for e in status.stdout.decode("utf-8", "replace").split("\0") if e]
    if not entries:
        return []
    dirty = [e[3:] for e in entries if len(e) > 3 and e[2] == " "] or entries
    dirty.sort(key=lambda rel: (is_internal(rel), rel))  # the user's own files first
    shown = ", ".join(dirty[:5]) + (f" and {len(dirty) - 5} more" if len(dirty) > 5 else "")
    if dry_run:
        return [f"uncommitted changes ({shown}): a real update would refuse to run"]
    raise DirtyRepository(
        f"{destination} has uncommitted changes: {shown}; nothing was written",
        hint="commit them (git add -A && git commit) or stash them "
        "(git stash --include-untracked), then run mlopsctl update again",
    )


def merge_file(base: bytes, ours: bytes, theirs: bytes, path: str, work: Path) -> tuple[bytes, int]:
    """3-way merge one file with ``git merge-file``; returns (result, number of conflicts).

    Raises ``ValueError`` when git cannot merge the contents (binary data).
    """
    names = ("ours", "base", "theirs")
    for name, data in zip(names, (ours, base, theirs), strict=True):
        (work / name).write_bytes(data)
    proc = _git(
        [
            "merge-file",
            "-p",
            "-L",
            f"yours: {path}",
            "-L",
            "generated before",
            "-L",
            f"generated now: {path}",
            "--",
            *(str(work / n) for n in names),
        ],
        work,
        check=False,
    )
    if proc.returncode < 0 or proc.returncode >= 128:
        raise ValueError(proc.stderr.decode("utf-8", "replace").strip())
    return proc.stdout, proc.returncode


def _renames(
    removed: Mapping[str, bytes], added: Mapping[str, bytes], work: Path
) -> dict[str, str]:
    """Pairs (new path -> old path) that git's rename detection finds between two file sets."""
    if not removed or not added:
        return {}
    old_root, new_root = work / "a", work / "b"
    for root, files in ((old_root, removed), (new_root, added)):
        root.mkdir()
        for rel, data in files.items():
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_bytes(data)
    proc = _git(
        [
            "diff",
            "--no-index",
            "--no-ext-diff",
            "--no-textconv",
            "-M",
            "--name-status",
            "-z",
            "--",
            "a",
            "b",
        ],
        work,
        ok=(0, 1),
    )
    fields = proc.stdout.decode("utf-8", "surrogateescape").split("\0")
    pairs: dict[str, str] = {}
    i = 0
    while i < len(fields) and fields[i]:
        status = fields[i]
        if status.startswith(("R", "C")):
            old, new = fields[i + 1], fields[i + 2]
            if status.startswith("R"):
                pairs[new.removeprefix("b/")] = old.removeprefix("a/")
            i += 3
        else:
            i += 2
    return pairs


# --------------------------------------------------------------------------------------------
# Planning
# --------------------------------------------------------------------------------------------


def _read_state(destination: Path) -> layout.State:
    state = layout.read_state(destination)
    if state is None:
        raise UsageError(
            f"{destination} has no {STATE_FILE}: it was not generated by mlopsctl",
            hint="generate a project with mlopsctl init, or run update in the project's directory",
        )
    if state.generated is None:
        raise BaseSnapshotError(
            "it does not record the generated files, so the base of the merge is unknown",
            file=STATE_FILE,
            key="generated",
            hint="this project was generated by an mlopsctl older than update support; "
            "regenerate it with mlopsctl init into a new directory and copy your edits over",
        )
    return state


def _read_tree(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, sub in value.items():
            out.update(_flatten(sub, f"{prefix}.{key}" if prefix else str(key)))
        return out
    return {prefix: value}


def decision_diff(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[DecisionChange]:
    """What changed between two design dumps (``.mlopsctl/design.json`` format)."""
    changes: list[DecisionChange] = []
    old_rules = set(old.get("fired_rules") or [])
    new_rules = set(new.get("fired_rules") or [])
    for rule in sorted(new_rules - old_rules):
        changes.append(DecisionChange("rules", rule, "not fired", "fires"))
    for rule in sorted(old_rules - new_rules):
        changes.append(DecisionChange("rules", rule, "fires", "not fired"))
    if old.get("tier") != new.get("tier"):
        changes.append(DecisionChange("tier", "tier", old.get("tier"), new.get("tier")))
    for section in ("stack", "thresholds", "sizing", "requirements"):
        before = _flatten(old.get(section) or {})
        after = _flatten(new.get(section) or {})
        for key in sorted(set(before) | set(after)):
            if before.get(key) != after.get(key):
                name = "answers" if section == "requirements" else section
                changes.append(DecisionChange(name, key, before.get(key), after.get(key)))
    for section in ("governance", "warnings"):
        before_set = set(old.get(section) or [])
        after_set = set(new.get(section) or [])
        for item in sorted(after_set - before_set):
            changes.append(DecisionChange(section, item, None, "added"))
        for item in sorted(before_set - after_set):
            changes.append(DecisionChange(section, item, "present", None))
    return changes


@contextmanager
def _workdir(near: Path | None = None) -> Iterator[Path]:
    """A temporary directory: beside ``near`` (same file system, for renames) or the system's."""
    parent = near.parent if near is not None and os.access(near.parent, os.W_OK) else None
    with scratch_dir(TMP_PREFIX, parent) as tmp:
        yield tmp


@contextmanager
def _planning_errors() -> Iterator[None]:
    """A file that cannot be read, or a working file that cannot be written, while the update is
    worked out: nothing has been written to the project yet."""
    try:
        yield
    except OSError as exc:
        where = f" ({exc.filename})" if exc.filename else ""
        hint = "check the permissions of the project's files and of the temporary directory"
        if exc.errno == errno.ENOSPC:
            hint = "free some disk space (the update is worked out in the temporary directory)"
        raise GenerationError(
            f"working out the update failed: {exc.strerror or exc}{where}; nothing was written",
            hint=f"{hint}, then run mlopsctl update again",
        ) from None


def _requirements(
    destination: Path, answers: Path | None, sets: list[str] | None, project_name: str | None
) -> tuple[Any, Any]:
    """(requirements from the project's mlopsctl.yaml alone, requirements with the overrides)."""
    from mlopsctl.api import _project_requirements

    answers_path = layout.resolve(destination, ANSWERS_FILE, source=ANSWERS_FILE, key="")
    if not answers_path.is_file():
        raise UsageError(
            f"{answers_path} is missing; it holds the project's answers",
            hint=f"restore it from git: git checkout -- {ANSWERS_FILE}",
        )
    return _project_requirements(answers_path, answers, sets, project_name)


def plan_update(
    destination: Path,
    *,
    answers: Path | None = None,
    sets: list[str] | None = None,
    strict: bool = False,
    dry_run: bool = False,
) -> UpdatePlan:
    """Work out everything update would do, without writing into ``destination``."""
    from mlopsctl import render
    from mlopsctl.api import assess
    from mlopsctl.design import StackDesign

    destination = destination.absolute()
    if not destination.is_dir():
        raise UsageError(f"{destination} is not a directory", hint="pass the project's directory")
    recovered = _recover(destination, dry_run=dry_run)
    state = _read_state(destination)
    warnings = [*recovered, *_require_clean_git(destination, dry_run=dry_run)]
    base = layout.read_base(destination, state)
    recorded_design = layout.read_design(destination)
    old_design = recorded_design.model_dump() if recorded_design is not None else {}
    old_name = recorded_design.project_name if recorded_design is not None else None
    file_req, new_req = _requirements(destination, answers, sets, old_name)
    design = assess(new_req, strict=strict, tier_floor=state.tier_floor)
    crlf = _converted_eol(destination)

    with _planning_errors(), _workdir() as work:
        theirs_root = work / "theirs"
        render.render_tree(design, theirs_root)
        theirs_all = _read_tree(theirs_root)
        modes = {
            p.relative_to(theirs_root).as_posix(): stat.S_IMODE(p.stat().st_mode)
            for p in theirs_root.rglob("*")
            if p.is_file()
        }
        new_state = json.loads(theirs_all[STATE_FILE])
        theirs = {p: d for p, d in theirs_all.items() if not is_internal(p) and p != ANSWERS_FILE}
        on_disk: dict[str, bytes] = {}
        for p in sorted(set(base) | set(theirs) | {ANSWERS_FILE}):
            data = layout.read_bytes(destination, p, source=p, key="")
            if data is not None:
                on_disk[p] = data
        # A checkout that converts line endings (core.autocrlf, eol attributes) is compared in
        # the form git commits; what update writes there gets the checkout's endings back.
        ours = {p: _lf(d) if p in crlf else d for p, d in on_disk.items() if p != ANSWERS_FILE}

        # Renames matter only where the user touched the old file: edited (the edits move along)
        # or deleted (the new path stays absent too).
        removed = {
            p: base[p] for p in base if p not in theirs and (p not in ours or ours[p] != base[p])
        }
        added = {p: theirs[p] for p in theirs if p not in base and p not in ours}
        (work / "renames").mkdir()
        renames = _renames(removed, added, work / "renames")

        files: list[FileChange] = []
        (work / "merge").mkdir()
        for rel in sorted(set(base) | set(theirs)):
            if rel in renames.values():
                continue  # handled under its new name
            old_rel = renames.get(rel)
            if old_rel is not None:
                files.extend(
                    _plan_rename(old_rel, rel, base[old_rel], ours.get(old_rel), theirs[rel], work)
                )
                continue
            change = _plan_file(rel, base.get(rel), ours.get(rel), theirs.get(rel), work / "merge")
            if change is not None:
                files.append(change)

        # The answers file: its base is the canonical rendering of the answers the user's file
        # holds, so the user's own wording survives and only the overridden answers change.
        # answers_yaml reads only the requirements of the design it is given.
        only_answers = StackDesign.model_construct(**{"requirements": file_req})
        answers_base = render.answers_yaml(only_answers)
        ours_answers = on_disk[ANSWERS_FILE]
        change = _plan_file(
            ANSWERS_FILE,
            answers_base.encode("utf-8"),
            _lf(ours_answers) if ANSWERS_FILE in crlf else ours_answers,
            theirs_all[ANSWERS_FILE],
            work / "merge",
        )
        if change is not None:
            files.append(change)
        files = _with_checkout_eol(files, on_disk, crlf)

        internal, kept = layout.internal_changes(
            destination, state, {p: d for p, d in theirs_all.items() if is_internal(p)}
        )
        for p in sorted(set(internal) & crlf):
            current = layout.read_bytes(destination, p, source=p, key="")
            if internal[p] is not None and current is not None and _lf(current) == internal[p]:
                del internal[p]  # the same file in the checkout's line endings
        warnings.extend(kept)

    versions = {
        key: (getattr(state, key), new_state.get(key))
        for key in ("mlopsctl_version", "template_version", "catalog_digest")
    }
    return UpdatePlan(
        destination=destination,
        decisions=decision_diff(old_design, design.json_dict()),
        files=sorted(files, key=lambda f: f.path),
        versions=versions,
        warnings=warnings,
        internal=internal,
        modes=modes,
    )


_LONE_LF = re.compile(rb"(?<!\r)\n")


def _lf(data: bytes) -> bytes:
    return data.replace(b"\r\n", b"\n")


def _crlf(data: bytes) -> bytes:
    return _LONE_LF.sub(b"\r\n", data)


def _converted_eol(destination: Path) -> set[str]:
    """Tracked files that git checked out with CRLF line endings it removes on commit."""
    proc = _git(["ls-files", "--eol", "-z", "--", "."], destination, check=False)
    out: set[str] = set()
    for entry in proc.stdout.decode("utf-8", "surrogateescape").split("\0"):
        meta, sep, path = entry.partition("\t")
        fields = meta.split()
        if sep and len(fields) >= 2 and fields[0] == "i/lf" and fields[1] in {"w/crlf", "w/mixed"}:
            out.add(path)
    return out


def _with_checkout_eol(
    files: list[FileChange], on_disk: Mapping[str, bytes], crlf: set[str]
) -> list[FileChange]:
    """The changes with the user's files as they are on disk and, where the checkout converts
    line endings, the result in the checkout's form; those that change nothing are dropped."""
    if not crlf:
        return files
    out: list[FileChange] = []
    for change in files:
        converted = change.path in crlf or (change.renamed_from or "") in crlf
        before = on_disk.get(change.path) if change.before is not None else None
        after = change.after
        if converted and after is not None and _text(after) is not None:
            after = _crlf(after)
        fixed = dataclasses.replace(change, before=before, after=after)
        if fixed.action in {"updated", "merged"} and fixed.before == fixed.after:
            continue
        out.append(fixed)
    return out


def _merge_change(
    rel: str, base: bytes, ours: bytes, theirs: bytes, work: Path, renamed_from: str | None = None
) -> FileChange:
    if ours in (base, theirs):
        action: Action = "updated"
        return FileChange(rel, action, ours, theirs, renamed_from)
    if theirs == base:
        return FileChange(rel, "merged", ours, ours, renamed_from)
    try:
        merged, conflicts = merge_file(base, ours, theirs, rel, work)
    except ValueError:
        return FileChange(rel, "kept-binary", ours, ours, renamed_from, conflicts=1)
    if conflicts:
        return FileChange(rel, "conflict", ours, merged, renamed_from, conflicts=conflicts)
    return FileChange(rel, "merged", ours, merged, renamed_from)


def _plan_file(
    rel: str, base: bytes | None, ours: bytes | None, theirs: bytes | None, work: Path
) -> FileChange | None:
    if theirs is None:
        assert base is not None
        if ours is None:
            return None  # gone already
        if ours == base:
            return FileChange(rel, "removed", ours, None)
        return FileChange(rel, "kept-edited", ours, ours)
    if base is None:
        if ours is None:
            return FileChange(rel, "created", None, theirs)
        # A file the user made where a new generated file goes: merge against an empty base.
        return _merge_change(rel, b"", ours, theirs, work)
    if ours is None:
        if theirs == base:
            return None
        return FileChange(rel, "kept-deleted", None, None)
    change = _merge_change(rel, base, ours, theirs, work)
    if change.before == change.after:
        return None if change.action in {"updated", "merged"} else change
    return change


def _plan_rename(
    old_rel: str, new_rel: str, base: bytes, ours: bytes | None, theirs: bytes, work: Path
) -> list[FileChange]:
    """The generation moved a file from ``old_rel`` to ``new_rel`` that the user edited or
    deleted: the edits move along, a deleted file stays deleted under its new name too."""
    if ours is None:
        return [FileChange(new_rel, "kept-deleted", None, None, renamed_from=old_rel)]
    (work / "merge").mkdir(exist_ok=True)
    moved = _merge_change(new_rel, base, ours, theirs, work / "merge", renamed_from=old_rel)
    created = FileChange(
        new_rel, moved.action, None, moved.after, renamed_from=old_rel, conflicts=moved.conflicts
    )
    return [created, FileChange(old_rel, "renamed", ours, None)]


# --------------------------------------------------------------------------------------------
# Applying
# --------------------------------------------------------------------------------------------


def apply_update(plan: UpdatePlan) -> None:
    """Write the plan into the project, all or nothing."""
    writes: dict[str, bytes | None] = {f.path: f.after for f in plan.changed}
    writes.update(plan.internal)
    if not writes:
        return
    progress = current()
    try:
        with held(progress):
            _swap(plan.destination, writes, plan.modes)
            changed, dest = len(plan.changed), plan.destination
            progress.commit(f"the update is in place: {changed} files changed in {dest}")
    except OSError as exc:
        raise GenerationError(
            f"writing the update into {plan.destination} failed: {exc.strerror or exc}; "
            "every file was put back as it was",
            hint="check free disk space and permissions, then run mlopsctl update again",
        ) from None
    finally:
        redeliver(progress)
    if progress.signals:
        raise Interrupted(
            f"interrupted while the update was being written; that step was completed, so "
            f"{progress.in_place}",
            hint="review with git diff, then commit",
        )


class _Journal(BaseModel):
    """What a swap in progress changes in the project: written before the first file is
    moved, so that the next run can undo a swap SIGKILL cut short (``_recover``)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    project: str
    writes: dict[str, tuple[bool, str | None]]  # path -> (had an original, digest of the new)
    dirs: list[str]  # directories the swap creates, parents first


def _set_mode(path: Path, mode: int) -> None:
    os.chmod(path, mode)


def _check_writable(destination: Path, rels: Iterator[str] | list[str]) -> None:
    """Every path the swap touches stays inside the project, through no symbolic link."""
    for rel in rels:
        layout.resolve(destination, rel, source="the update", key=layout.shown(rel))


def _missing_dirs(destination: Path, rels: list[str]) -> list[str]:
    missing: list[str] = []
    for rel in rels:
        for parent in reversed(Path(rel).parents):
            if parent != Path() and not (destination / parent).exists():
                name = parent.as_posix()
                if name not in missing:
                    missing.append(name)
    return missing


def _write_journal(path: Path, journal: _Journal) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        os.write(fd, journal.model_dump_json().encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)


def _swap(destination: Path, writes: Mapping[str, bytes | None], modes: Mapping[str, int]) -> None:
    _check_writable(destination, sorted(writes))
    with _workdir(destination) as tmp:
        stage, backup = tmp / "new", tmp / "old"
        for rel, data in writes.items():
            if data is not None:
                (stage / rel).parent.mkdir(parents=True, exist_ok=True)
                (stage / rel).write_bytes(data)
        order = sorted(writes)
        journal = _Journal(
            project=str(destination),
            writes={
                rel: (
                    (destination / rel).is_file(),
                    None if writes[rel] is None else layout.digest(writes[rel] or b""),
                )
                for rel in order
            },
            dirs=_missing_dirs(destination, [r for r in order if writes[r] is not None]),
        )
        _write_journal(tmp / JOURNAL, journal)
        done: list[tuple[str, bool]] = []  # (path, had an original)
        created_dirs: list[Path] = []
        try:
            for rel in order:
                data = writes[rel]
                # again right before the write: a link made since the plan is never followed
                target = layout.resolve(destination, rel, source="the update", key=rel)
                had = target.is_file()
                done.append((rel, had))
                if had:
                    (backup / rel).parent.mkdir(parents=True, exist_ok=True)
                    mode = _modes.mode_like(target.lstat().st_mode)
                    os.replace(target, backup / rel)
                else:
                    mode = _modes.mode_like(modes.get(rel, _modes.REGULAR))
                if data is None:
                    continue
                parents = target.relative_to(destination).parents
                missing = [p for p in parents if not (destination / p).exists()]
                for p in reversed(missing):
                    (destination / p).mkdir()
                    created_dirs.append(destination / p)
                _set_mode(stage / rel, mode)
                os.replace(stage / rel, target)
            os.replace(tmp / JOURNAL, tmp / "complete")  # nothing left to undo
        except BaseException:
            for rel, had in reversed(done):
                target, saved = destination / rel, backup / rel
                if had and not (saved.exists() or saved.is_symlink()):
                    continue  # the original was never moved
                if writes[rel] is not None:
                    target.unlink(missing_ok=True)
                if had:
                    os.replace(saved, target)
            for d in reversed(created_dirs):
                shutil.rmtree(d, ignore_errors=True)
            raise
    for rel, data in writes.items():
        if data is None:
            _prune_empty_dirs(destination, (destination / rel).parent)


def _recover(destination: Path, *, dry_run: bool) -> list[str]:
    """Scratch directories an earlier update left when it was killed (SIGKILL, a power cut
    of the process): one whose journal says it was swapping files into ``destination`` is
    undone (the project is as it was before that update), the others are removed. A dry run
    only reports. Directories of a command still running are locked and left alone."""
    warnings: list[str] = []
    parents = {destination.parent, Path(tempfile.gettempdir())}
    for parent in sorted(parents):
        with stale_scratch_dirs(TMP_PREFIX, parent) as stale:
            for scratch in stale:
                journal = _read_journal(scratch / JOURNAL)
                if journal is not None and Path(journal.project) != destination:
                    continue  # another project's: its own next update undoes it
                if dry_run and journal is not None:
                    raise HalfWrittenUpdate(
                        f"an earlier update of {destination} was killed while it wrote its "
                        f"files ({scratch} holds what it replaced); a dry run cannot plan on a "
                        "half-written project; nothing was written",
                        hint="run mlopsctl update without --dry-run: it undoes that update first",
                    )
                if dry_run:
                    continue  # a real update removes it
                if journal is not None:
                    _undo(destination, scratch, journal)
                    warnings.append(
                        "an earlier update of this project was killed while it wrote its files; "
                        "what it had written was undone before this update"
                    )
                shutil.rmtree(scratch, ignore_errors=True)
    return warnings


def _read_journal(path: Path) -> _Journal | None:
    try:
        if not path.is_file() or path.is_symlink() or path.stat().st_size > layout.MAX_JSON_BYTES:
            return None
        return _Journal.model_validate_json(path.read_bytes())
    except (OSError, ValidationError):
        return None


def _undo(destination: Path, scratch: Path, journal: _Journal) -> None:
    """Put back what the journal's swap replaced and remove what it created. A file changed
    since (neither the original nor what that update wrote) stops the undo before it begins:
    it is someone's later work, and the originals stay in ``scratch`` for a person to decide."""
    backup = scratch / "old"
    source = str(scratch / JOURNAL)
    steps: list[tuple[Path, Path | None]] = []  # (target, original to put back or None: remove)
    for rel, (had, new_digest) in sorted(journal.writes.items(), reverse=True):
        target = layout.resolve(destination, rel, source=source, key=rel)
        saved = backup / rel
        moved = saved.is_file() and not saved.is_symlink()
        current = target.read_bytes() if target.is_file() else None
        written = current is not None and layout.digest(current) == new_digest
        if moved and (current is None or written):
            steps.append((target, saved))  # the original back, over the new file if it came
        elif not moved and not had and written:
            steps.append((target, None))  # created by that update and untouched since
        elif moved:
            raise HalfWrittenUpdate(
                f"an earlier update of {destination} was killed while it wrote its files, and "
                f"{rel} has changed since; nothing was written",
                hint=f"the files it replaced are in {backup}: restore what you need (or run "
                f"git checkout -- . && git clean -fd), remove {scratch}, then run mlopsctl "
                "update again",
            )
    for path, original in steps:
        if original is not None:
            os.replace(original, path)
        else:
            path.unlink()
    for name in reversed(journal.dirs):
        layout.resolve(destination, name + "/x", source=source, key=name)
        with suppress(OSError):  # not empty or gone: not the update's alone
            (destination / name).rmdir()


def _prune_empty_dirs(root: Path, start: Path) -> None:
    d = start
    while d != root and root in d.parents:
        try:
            d.rmdir()
        except OSError:
            return
        d = d.parent


def update(
    destination: Path,
    *,
    answers: Path | None = None,
    sets: list[str] | None = None,
    strict: bool = False,
    dry_run: bool = False,
) -> UpdatePlan:
    """Plan the update and, unless ``dry_run``, apply it. Conflicts are in ``plan.conflicts``."""
    plan = plan_update(destination, answers=answers, sets=sets, strict=strict, dry_run=dry_run)
    if not dry_run:
        apply_update(plan)
    return plan
