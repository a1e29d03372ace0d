"""Writing a set of files into a directory all or nothing, the originals kept aside and put back.

Generation (``mlopsctl.render.generate``) renders into a staging directory beside the
destination (same file system, so renames are atomic) and moves the tree in by one rename
(``move_in``), moves the entries of an empty directory (``move_entries``) or swaps the generated
files into a non-empty one (``swap``); two runs into one destination take turns (``turn``).
``swap`` is the one writer of a set of files into an existing directory: generation's staged
files, update's merged files (with a journal beside the project, so that the next update undoes
a swap SIGKILL cut short: ``recover``) and the report ``assess --output`` writes.
"""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError

from mlopsctl import _modes, layout
from mlopsctl.errors import DestinationError, GenerationError, UsageError
from mlopsctl.interrupts import Progress, current, held, redeliver, scratch_dir, stale_scratch_dirs

TMP_PREFIX = ".mlopsctl-tmp-"  # generation's staging directory beside the destination


# ---- Generation ---------------------------------------------------------------------------------


@contextmanager
def staging(parent: Path, progress: Progress) -> Iterator[Path]:
    """A private directory beside the destination (same filesystem, so renames are atomic),
    removed whatever happens."""
    try:
        with held(progress):  # a signal cannot fall between creating it and arming its removal
            tmp = Path(tempfile.mkdtemp(prefix=TMP_PREFIX, dir=parent))
    except OSError as exc:
        raise os_error(exc, parent, "creating a working directory in") from None
    try:
        redeliver(progress)
        yield tmp
    finally:
        with held(progress):
            shutil.rmtree(tmp, ignore_errors=True)


def os_error(exc: OSError, path: Path, doing: str) -> GenerationError:
    reason = exc.strerror or str(exc)
    hint = "check the permissions of the destination and its parent directory"
    if exc.errno == errno.ENOSPC:
        hint = "free some disk space and run the command again"
    elif exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        hint = "choose a destination you can write to, or fix the permissions"
    return GenerationError(f"{doing} {path} failed: {reason}; nothing was changed", hint=hint)


def _anchor(destination: Path) -> Path:
    """The nearest existing ancestor: it holds the working directory, and missing parents are
    created inside it and moved into place together with the tree."""
    anchor = destination.parent
    while not anchor.exists():
        anchor = anchor.parent
    if not anchor.is_dir():
        raise DestinationError(f"{anchor} is not a directory")
    return anchor


@contextmanager
def turn(destination: Path) -> Iterator[tuple[Path, bool]]:
    """An exclusive lock on the destination's anchor (``flock`` on the directory itself, so
    nothing is left behind), held while the destination is checked and filled; yields the anchor
    and whether another run held it first. Where the file system cannot lock, runs unlocked."""
    waited = False
    for _ in range(8):  # another run may create the missing parents while this one waits
        anchor = _anchor(destination)
        try:
            fd = os.open(anchor, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        except OSError:
            yield anchor, waited
            return
        try:
            if not _lock(fd, blocking=False):
                waited = True
                _lock(fd, blocking=True)
            if _anchor(destination) == anchor:
                yield anchor, waited
                return
        finally:
            os.close(fd)  # closing releases the lock
    yield _anchor(destination), waited


def _lock(fd: int, *, blocking: bool) -> bool:
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not a POSIX system
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
    except BlockingIOError:
        return False
    except OSError:  # a file system without locks: unlocked, as before
        return True
    return True


def move_in(
    stage: Path, destination: Path, anchor: Path, tmp: Path, progress: Progress, what: str
) -> None:
    """One rename puts the tree (and any missing parents) in place."""
    missing = destination.relative_to(anchor).parts
    with held(progress):
        if len(missing) == 1:
            os.rename(stage, destination)
        else:
            holder = tmp / "parents"
            nested = holder.joinpath(*missing)
            nested.parent.mkdir(parents=True)
            os.rename(stage, nested)
            os.rename(holder / missing[0], anchor / missing[0])
        progress.commit(what)


def move_entries(stage: Path, destination: Path, progress: Progress, what: str) -> None:
    """Fill an empty existing directory (often the working directory, which must stay the same
    directory) by moving each top-level entry; on failure the moved ones go back."""
    moved: list[str] = []
    with held(progress):
        try:
            for name in sorted(os.listdir(stage)):
                os.rename(stage / name, destination / name)
                moved.append(name)
        except BaseException:
            for name in reversed(moved):
                os.rename(destination / name, stage / name)
            raise
        progress.commit(what)


def check_targets(destination: Path, files: list[str]) -> None:
    """Before anything is written: no generated path may go through a symlink or replace a
    directory, so that every write stays inside ``destination``."""
    for rel in files:
        node = destination
        parts = Path(rel).parts
        for i, part in enumerate(parts):
            node = node / part
            last = i == len(parts) - 1
            if node.is_symlink() and not last:
                raise DestinationError(
                    f"{node} is a symbolic link; a generated file would be written through it",
                    hint="remove the link or generate into a new directory",
                )
            if not node.exists() and not node.is_symlink():
                break
            if not last and not node.is_dir():
                raise DestinationError(f"{node} is a file; generated files go below it")
            if last and node.is_dir() and not node.is_symlink():
                raise DestinationError(f"{node} is a directory; a generated file goes there")


def write_file(path: Path, data: bytes) -> None:
    """One file written whole or not at all (``swap`` in its own directory), its mode by the
    rule: that of the file it replaces, regular for a new one."""
    parent = path.absolute().parent
    if not parent.is_dir():
        raise UsageError(f"cannot write {path}: directory {parent} does not exist")
    try:
        with staging(parent, current()) as tmp:
            swap(parent, {path.name: data}, work=tmp, modes={})
    except OSError as exc:
        raise os_error(exc, path, "writing") from None


# ---- The one swap (generation --force, update, assess --output) and update's journal ----------

UPDATE_TMP_PREFIX = ".mlopsctl-update-"


JOURNAL = "journal.json"  # in the scratch directory beside the project, while files are swapped


class HalfWrittenUpdate(UsageError):
    """An earlier update was killed while it swapped files in; only a real run undoes it."""


@contextmanager
def workdir(near: Path | None = None) -> Iterator[Path]:
    """A temporary directory: beside ``near`` (same file system, for renames) or the system's."""
    parent = near.parent if near is not None and os.access(near.parent, os.W_OK) else None
    with scratch_dir(UPDATE_TMP_PREFIX, parent) as tmp:
        yield tmp


class _Journal(BaseModel):
    """What a swap in progress changes in the project: written before the first file is
    moved, so that the next run can undo a swap SIGKILL cut short (``recover``)."""

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


def swap(
    destination: Path,
    writes: Mapping[str, bytes | Path | None],
    *,
    work: Path | None = None,
    modes: Mapping[str, int] | None = None,
    journal: bool = False,
    recheck: bool = False,
) -> None:
    """Write ``writes`` into ``destination`` all or nothing: each path gets the bytes given, the
    staged file at the path given (moved, so on the same file system) or, for ``None``, is
    deleted. Originals are kept aside in ``work`` (a scratch directory beside the destination;
    one is made when not given) and put back if anything fails.

    ``modes``: files get the mode rule (``mlopsctl._modes``), that of the original they replace
    or the one given here (regular by default); without it staged files keep theirs.
    ``journal``: a journal is written before the first file moves, so that the next update
    undoes a swap SIGKILL cut short (``recover``). ``recheck``: each path is proven inside the
    project (``layout.resolve``) before anything is written and again right before its own
    write; otherwise ``check_targets`` once."""
    if work is None:
        with workdir(destination) as tmp:
            _swap(destination, writes, tmp, modes, journal=journal, recheck=recheck)
    else:
        _swap(destination, writes, work, modes, journal=journal, recheck=recheck)
    for rel, data in writes.items():
        if data is None:
            prune_empty_dirs(destination, (destination / rel).parent)


def _swap(
    destination: Path,
    writes: Mapping[str, bytes | Path | None],
    tmp: Path,
    modes: Mapping[str, int] | None,
    *,
    journal: bool,
    recheck: bool,
) -> None:
    order = sorted(writes)
    if recheck:
        _check_writable(destination, order)
    else:
        check_targets(destination, order)
    stage, backup = tmp / "new", tmp / "old"
    sources: dict[str, Path | None] = {}
    for rel in order:
        data = writes[rel]
        if isinstance(data, bytes):
            (stage / rel).parent.mkdir(parents=True, exist_ok=True)
            (stage / rel).write_bytes(data)
            sources[rel] = stage / rel
        else:
            sources[rel] = data
    if journal:
        _write_journal(
            tmp / JOURNAL,
            _Journal(
                project=str(destination),
                writes={
                    rel: ((destination / rel).is_file(), _digest(writes[rel])) for rel in order
                },
                dirs=_missing_dirs(destination, [r for r in order if writes[r] is not None]),
            ),
        )
    done: list[tuple[str, bool]] = []  # (path, had an original)
    created_dirs: list[Path] = []
    try:
        for rel in order:
            source = sources[rel]
            if recheck:  # again right before the write: a link made since is never followed
                target = layout.resolve(destination, rel, source="the update", key=rel)
            else:
                target = destination / rel
            had = os.path.lexists(target)
            done.append((rel, had))
            mode = None
            if modes is not None:  # like the file replaced; a link's own mode says nothing
                st_mode = modes.get(rel, _modes.REGULAR)
                if had and not target.is_symlink():
                    st_mode = target.lstat().st_mode
                mode = _modes.mode_like(st_mode)
            if had:
                (backup / rel).parent.mkdir(parents=True, exist_ok=True)
                os.replace(target, backup / rel)
            if source is None:
                continue
            for parent in reversed(Path(rel).parents):
                if parent != Path() and not (destination / parent).exists():
                    (destination / parent).mkdir()
                    created_dirs.append(destination / parent)
            if mode is not None:
                _set_mode(source, mode)
            os.replace(source, target)
        if journal:
            os.replace(tmp / JOURNAL, tmp / "complete")  # nothing left to undo
    except BaseException:
        _roll_back(destination, writes, backup, done, created_dirs)
        raise


def _digest(data: bytes | Path | None) -> str | None:
    if data is None:
        return None
    return layout.digest(data if isinstance(data, bytes) else data.read_bytes())


def _roll_back(
    destination: Path,
    writes: Mapping[str, bytes | Path | None],
    backup: Path,
    done: list[tuple[str, bool]],
    created_dirs: list[Path],
) -> None:
    failed: list[str] = []
    for rel, had in reversed(done):
        target, saved = destination / rel, backup / rel
        if had and not (saved.exists() or saved.is_symlink()):
            continue  # the original was never moved
        try:
            if writes[rel] is not None:
                target.unlink(missing_ok=True)
            if had:
                os.replace(saved, target)
        except OSError:
            failed.append(str(target))
    for d in reversed(created_dirs):
        try:
            d.rmdir()
        except OSError:
            failed.append(str(d))
    if failed:
        # Keep the originals: move them next to the destination, never delete them.
        keep = Path(tempfile.mkdtemp(prefix=".mlopsctl-backup-", dir=destination.parent))
        os.replace(backup, keep / "backup")
        raise GenerationError(
            "could not restore " + ", ".join(failed[:5]),
            hint=f"the original files are kept in {keep / 'backup'}",
        )


def recover(destination: Path, *, dry_run: bool) -> list[str]:
    """Scratch directories an earlier update left when it was killed (SIGKILL, a power cut
    of the process): one whose journal says it was swapping files into ``destination`` is
    undone (the project is as it was before that update), the others are removed. A dry run
    only reports. Directories of a command still running are locked and left alone."""
    warnings: list[str] = []
    parents = {destination.parent, Path(tempfile.gettempdir())}
    for parent in sorted(parents):
        with stale_scratch_dirs(UPDATE_TMP_PREFIX, parent) as stale:
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


def prune_empty_dirs(root: Path, start: Path) -> None:
    d = start
    while d != root and root in d.parents:
        try:
            d.rmdir()
        except OSError:
            return
        d = d.parent
