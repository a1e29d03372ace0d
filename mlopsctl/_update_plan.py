"""Update planning: everything ``mlopsctl update`` would write, worked out without writing.

The base (``.mlopsctl/base/``), the new generation (rendered into a temporary directory) and the
user's files are merged file by file with ``git merge-file``; renames between base and the new
generation are found with ``git diff --no-index -M``. ``mlopsctl._update_apply`` writes the
resulting plan.
"""

from __future__ import annotations

import dataclasses
import difflib
import errno
import json
import re
import stat
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from mlopsctl import _write, layout
from mlopsctl._git import run as git_run
from mlopsctl.errors import GenerationError, UsageError
from mlopsctl.layout import (
    ANSWERS_FILE,
    STATE_FILE,
    BaseSnapshotError,
    is_internal,
)

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
    # mlopsctl.yaml had uncommitted changes (the edited answers the update started from)
    answers_uncommitted: bool = False

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


def _require_clean_git(destination: Path, *, dry_run: bool) -> tuple[list[str], bool]:
    """Refuse a directory outside git or with uncommitted changes other than to
    ``mlopsctl.yaml`` (the answers: editing them is how an update starts); return the warnings
    and whether ``mlopsctl.yaml`` has uncommitted changes."""
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
        return [], False
    prefix = _git(["rev-parse", "--show-prefix"], destination).stdout.decode("utf-8", "replace")
    answers = prefix.strip("\n") + ANSWERS_FILE  # porcelain paths start at the top level
    # "XY path": X the index, Y the work tree; a rename adds its old path as an entry of its own
    dirty = [e[3:] for e in entries if len(e) > 3 and e[2] == " "] or entries
    answers_edited = answers in dirty and not any(
        e[3:] == answers and "D" in e[:2] for e in entries
    )
    others = [rel for rel in dirty if not (answers_edited and rel == answers)]
    if not others:
        return [], answers_edited
    others.sort(key=lambda rel: (is_internal(rel), rel))  # the user's own files first
    shown = ", ".join(others[:5]) + (f" and {len(others) - 5} more" if len(others) > 5 else "")
    if dry_run:
        return [f"uncommitted changes ({shown}): a real update would refuse to run"], answers_edited
    if answers_edited:
        hint = (
            f"your edit of {ANSWERS_FILE} is the update's input and may stay uncommitted; "
            "commit the other changes (git add FILE... && git commit), or set them aside "
            f"without it (git stash push --include-untracked -- . ':(exclude){ANSWERS_FILE}'), "
            "then run mlopsctl update again"
        )
    else:
        hint = (
            "commit them (git add -A && git commit) or stash them "
            "(git stash --include-untracked), then run mlopsctl update again"
        )
    raise DirtyRepository(
        f"{destination} has uncommitted changes: {shown}; nothing was written", hint=hint
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
    from mlopsctl._assess import project_requirements

    answers_path = layout.resolve(destination, ANSWERS_FILE, source=ANSWERS_FILE, key="")
    if not answers_path.is_file():
        raise UsageError(
            f"{answers_path} is missing; it holds the project's answers",
            hint=f"restore it from git: git checkout -- {ANSWERS_FILE}",
        )

    return project_requirements(answers_path, answers, sets, project_name)


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
    from mlopsctl._assess import assess
    from mlopsctl.design import StackDesign

    destination = destination.absolute()
    if not destination.is_dir():
        raise UsageError(f"{destination} is not a directory", hint="pass the project's directory")
    recovered = _write.recover(destination, dry_run=dry_run)
    state = _read_state(destination)
    dirty, answers_uncommitted = _require_clean_git(destination, dry_run=dry_run)
    warnings = [*recovered, *dirty]
    base = layout.read_base(destination, state)
    recorded_design = layout.read_design(destination)
    old_design = recorded_design.model_dump() if recorded_design is not None else {}
    old_name = recorded_design.project_name if recorded_design is not None else None
    file_req, new_req = _requirements(destination, answers, sets, old_name)
    design = assess(new_req, strict=strict, tier_floor=state.tier_floor)
    crlf = _converted_eol(destination)

    with _planning_errors(), _write.workdir() as work:
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
        # answers_yaml reads only the requirements of the design it is given. Ours is the file
        # on disk, committed or not (an uncommitted edit is the input): base and theirs differ
        # only by --set and --answers, so without them the user's file is kept byte for byte.
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
        answers_uncommitted=answers_uncommitted,
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
