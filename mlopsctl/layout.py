"""The ``.mlopsctl/`` directory of a generated project: its one reader and writer.

Generation records here what ``update`` and ``validate`` need to know about it:

- ``state.json``: versions, the tier floor, and under ``generated`` the SHA-256 of every
  generated artifact (``files``), of every file mlopsctl keeps in ``.mlopsctl/`` (``internal``)
  and of the ones the in-sync check compares (``own_files``), and the generation's source key;
- ``design.json``: the design the files were generated from;
- ``base/``: a pristine copy of every artifact, the base of ``update``'s 3-way merge;
- ``.gitattributes``: keeps that copy byte-exact and out of diffs.

A repository is untrusted input, so is everything read here. Both JSON files are read with a
cap on their size and validated against a schema (types, shapes, number of entries, path
length); every path they name goes through ``resolve``, which proves it stays inside the
project: relative, POSIX, no ``..``, no symbolic link anywhere on the way (``.mlopsctl`` itself
included), a regular file. Anything else is refused with a ``LayoutError`` (exit 2) that names
the file and the key, before anything is written or deleted.

Digests are written as ``sha256:<hex>`` (the form OCI and Subresource Integrity use): secret
scanners read the algorithm prefix as what it is, where 64 bare hexadecimal digits look like a
key. Digests of older projects, bare hexadecimal, are still read.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
from collections.abc import Iterable, Mapping
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from mlopsctl import _modes
from mlopsctl.errors import UsageError

STATE_DIR = ".mlopsctl"
STATE_FILE = f"{STATE_DIR}/state.json"
DESIGN_FILE = f"{STATE_DIR}/design.json"
BASE_DIR = f"{STATE_DIR}/base"
ATTRIBUTES_FILE = f"{STATE_DIR}/.gitattributes"
ANSWERS_FILE = "mlopsctl.yaml"

# Limits on what is read from a repository (docs/update.md lists them).
MAX_JSON_BYTES = 8 * 1024 * 1024  # state.json, design.json
MAX_FILE_BYTES = 64 * 1024 * 1024  # one generated file or its pristine copy
MAX_ENTRIES = 20_000  # files recorded in one list of state.json
MAX_PATH = 1024  # characters in one recorded path
MAX_PART = 255  # characters in one component of it

_ATTRIBUTES = (
    "# The pristine copy of the last generation: the base of `mlopsctl update`'s 3-way merge.\n"
    "# Keep it byte-exact and out of diffs; never edit it by hand.\n"
    "base/** -text -diff linguist-generated=true\n"
)


class LayoutError(UsageError):
    """``.mlopsctl/`` holds something mlopsctl did not write, or a path that leaves the
    project; ``file`` is the file at fault and ``key`` the key in it (or None)."""

    def __init__(
        self, message: str, *, file: str, key: str | None = None, hint: str | None = None
    ) -> None:
        self.file = file
        self.key = key
        where = f"{file}: {key}: " if key else f"{file}: "
        super().__init__(
            where + message,
            hint=hint
            or f"restore it from git (git checkout -- {file}), or regenerate the "
            "project with mlopsctl init into a new directory",
        )


class UnsafePathError(LayoutError):
    """A recorded path that is not a plain relative path inside the project, or that goes
    through a symbolic link or to something other than a regular file."""


class StateFormatError(LayoutError):
    """``state.json`` or ``design.json`` is not what mlopsctl writes (JSON, types, sizes)."""


class BaseSnapshotError(LayoutError):
    """The pristine copy of the last generation is missing or was modified."""


# --------------------------------------------------------------------------------------------
# Paths
# --------------------------------------------------------------------------------------------

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def shown(rel: str) -> str:
    """A recorded path as messages show it: quoted, control characters escaped."""
    return json.dumps(rel, ensure_ascii=False)


def path_problem(rel: object) -> str | None:
    """Why ``rel`` is not a plain relative POSIX path, or None."""
    if not isinstance(rel, str):
        return f"a path must be a string, not {type(rel).__name__}"
    if not rel:
        return "the path is empty"
    if len(rel) > MAX_PATH:
        return f"the path is longer than {MAX_PATH} characters"
    if "\\" in rel:
        return "the path holds a backslash"
    if _CONTROL.search(rel):
        return "the path holds a control character"
    if rel.startswith("/"):
        return "the path is absolute"
    parts = rel.split("/")
    if ".." in parts:
        return "the path climbs out with '..'"
    if any(p in {"", "."} for p in parts):
        return "the path is not in normal form (empty or '.' component)"
    if any(len(p) > MAX_PART for p in parts):
        return f"a component of the path is longer than {MAX_PART} characters"
    return None


def resolve(project: Path, rel: object, *, source: str, key: str) -> Path:
    """``project / rel``, proven to stay inside ``project``: a plain relative path, nothing on
    the way a symbolic link or anything but a directory, and the file itself (when it exists) a
    regular file. ``source`` and ``key`` say where the path came from for the error."""
    problem = path_problem(rel)
    if problem is not None:
        raise UnsafePathError(f"{problem}: {shown(str(rel))}", file=source, key=key)
    assert isinstance(rel, str)
    parts = rel.split("/")
    node = project
    for i, part in enumerate(parts):
        node = node / part
        try:
            st = node.lstat()
        except FileNotFoundError:
            return project / rel  # absent from here on: nothing to follow
        except OSError as exc:
            raise UnsafePathError(
                f"cannot look at {shown('/'.join(parts[: i + 1]))}: {exc.strerror or exc}",
                file=source,
                key=key,
            ) from None
        here = shown("/".join(parts[: i + 1]))
        if stat.S_ISLNK(st.st_mode):
            raise UnsafePathError(
                f"{here} is a symbolic link; mlopsctl never reads or writes through one",
                file=source,
                key=key,
                hint="replace the link by the directory or file itself (or remove it), commit, "
                "and run the command again",
            )
        last = i == len(parts) - 1
        if not last and not stat.S_ISDIR(st.st_mode):
            raise UnsafePathError(f"{here} is not a directory", file=source, key=key)
        if last and not stat.S_ISREG(st.st_mode):
            raise UnsafePathError(f"{here} is not a regular file", file=source, key=key)
    return node


def read_bytes(
    project: Path, rel: str, *, source: str, key: str, limit: int = MAX_FILE_BYTES
) -> bytes | None:
    """The content of ``project / rel`` (resolved as ``resolve`` does), None when absent; never
    more than ``limit`` bytes and never through a link (``O_NOFOLLOW`` closes the gap between
    the check and the read)."""
    path = resolve(project, rel, source=source, key=key)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise UnsafePathError(
            f"cannot read {shown(rel)}: {exc.strerror or exc}", file=source, key=key
        ) from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise UnsafePathError(f"{shown(rel)} is not a regular file", file=source, key=key)
        chunks: list[bytes] = []
        size = 0
        while chunk := os.read(fd, min(1 << 20, limit + 1 - size)):
            chunks.append(chunk)
            size += len(chunk)
            if size > limit:
                raise StateFormatError(
                    f"{shown(rel)} is larger than {limit} bytes", file=source, key=key
                )
        return b"".join(chunks)
    finally:
        os.close(fd)


def is_internal(rel: str) -> bool:
    return rel == STATE_DIR or rel.startswith(STATE_DIR + "/")


# --------------------------------------------------------------------------------------------
# Digests
# --------------------------------------------------------------------------------------------

_DIGEST_PATTERN = r"^(sha256:)?[0-9a-f]{64}$"


def digest(data: bytes) -> str:
    """The digest of ``data`` as ``state.json`` records it."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def hex_digest(recorded: str) -> str:
    """A recorded digest (either form) as bare hexadecimal."""
    return recorded.removeprefix("sha256:")


# --------------------------------------------------------------------------------------------
# Schemas
# --------------------------------------------------------------------------------------------

Digest = Annotated[str, StringConstraints(pattern=_DIGEST_PATTERN)]
RecordedPath = Annotated[str, StringConstraints(min_length=1, max_length=MAX_PATH)]
ShortText = Annotated[str, StringConstraints(max_length=200)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class Generated(_Strict):
    """``state.json`` ``generated``: what the last generation wrote."""

    # Accepted only with its standard value: the base can never be looked for anywhere else.
    base_dir: Literal[".mlopsctl/base"] = ".mlopsctl/base"
    files: dict[RecordedPath, Digest] = Field(max_length=MAX_ENTRIES)
    # Older projects list the internal files without digests.
    internal: dict[RecordedPath, Digest] | list[RecordedPath] = Field(
        default_factory=dict, max_length=MAX_ENTRIES
    )
    source: Digest | None = None
    own_files: dict[RecordedPath, Digest] = Field(default_factory=dict, max_length=MAX_ENTRIES)


class State(_Strict):
    """``.mlopsctl/state.json``."""

    mlopsctl_version: ShortText | None = None
    template_version: ShortText | None = None
    catalog_digest: ShortText | None = None
    design_schema_version: int | None = Field(default=None, ge=0, le=10_000)
    tier: Literal["T1", "T2", "T3"] | None = None
    tier_floor: Literal["T1", "T2", "T3"] | None = None
    command: ShortText | None = None
    generated: Generated | None = None

    def file_digests(self) -> dict[str, str]:
        """Every generated artifact -> its SHA-256 (hex); empty when none is recorded."""
        if self.generated is None:
            return {}
        return {rel: hex_digest(d) for rel, d in self.generated.files.items()}

    def own_digests(self) -> dict[str, str]:
        if self.generated is None:
            return {}
        return {rel: hex_digest(d) for rel, d in self.generated.own_files.items()}

    def internal_digests(self) -> dict[str, str | None]:
        """Every file mlopsctl kept in ``.mlopsctl/`` -> its SHA-256 (hex), None where the
        generation recorded none (projects from older mlopsctl)."""
        if self.generated is None:
            return {}
        internal = self.generated.internal
        if isinstance(internal, list):
            return dict.fromkeys(internal)
        return {rel: hex_digest(d) for rel, d in internal.items()}

    @property
    def source(self) -> str | None:
        source = self.generated.source if self.generated is not None else None
        return hex_digest(source) if source is not None else None


JsonScalar = str | int | float | bool | None


class RecordedDesign(BaseModel):
    """``.mlopsctl/design.json``: the keys ``update`` reads are typed; the others are the
    design's own fields, which change with ``design_schema_version``, and are only bounded by
    the file's size."""

    model_config = ConfigDict(extra="allow", frozen=True, strict=True)

    fired_rules: list[ShortText] = Field(default_factory=list, max_length=MAX_ENTRIES)
    tier: Literal["T1", "T2", "T3"] | None = None
    stack: dict[str, Any] = Field(default_factory=dict)
    thresholds: dict[str, Any] = Field(default_factory=dict)
    sizing: dict[str, Any] = Field(default_factory=dict)
    requirements: dict[str, Any] = Field(default_factory=dict)
    governance: list[str] = Field(default_factory=list, max_length=MAX_ENTRIES)
    warnings: list[str] = Field(default_factory=list, max_length=MAX_ENTRIES)

    @property
    def project_name(self) -> str | None:
        name = self.requirements.get("project_name")
        return name if isinstance(name, str) else None


_M = TypeVar("_M", bound=BaseModel)


def _validated(model: type[_M], data: bytes, file: str) -> _M:
    try:
        return model.model_validate_json(data)
    except ValidationError as exc:
        error = exc.errors(include_url=False)[0]
        key = ".".join(str(part) for part in error["loc"]) or None
        raise StateFormatError(error["msg"], file=file, key=key) from None
    except (RecursionError, MemoryError):
        raise StateFormatError("nested too deeply", file=file) from None


def read_state(project: Path) -> State | None:
    """``project``'s ``.mlopsctl/state.json``, validated, its paths proven to stay inside the
    project; None when the project has none. Raises ``LayoutError``."""
    data = read_bytes(project, STATE_FILE, source=STATE_FILE, key="", limit=MAX_JSON_BYTES)
    if data is None:
        return None
    state = _validated(State, data, STATE_FILE)
    generated = state.generated
    if generated is not None:
        for rel in generated.files:
            key = f"generated.files.{shown(rel)}"
            if is_internal(rel) or rel == ANSWERS_FILE:
                raise UnsafePathError(
                    f"{shown(rel)} is not a generated artifact", file=STATE_FILE, key=key
                )
            resolve(project, rel, source=STATE_FILE, key=key)
            resolve(project, f"{BASE_DIR}/{rel}", source=STATE_FILE, key=key)
        for name, entries in (("internal", generated.internal), ("own_files", generated.own_files)):
            for rel in entries:
                key = f"generated.{name}.{shown(rel)}"
                if not is_internal(rel) or rel == STATE_DIR:
                    raise UnsafePathError(
                        f"{shown(rel)} is not a file in {STATE_DIR}/", file=STATE_FILE, key=key
                    )
                resolve(project, rel, source=STATE_FILE, key=key)
    return state


def read_design(project: Path) -> RecordedDesign | None:
    """``project``'s ``.mlopsctl/design.json``, validated; None when it has none."""
    data = read_bytes(project, DESIGN_FILE, source=DESIGN_FILE, key="", limit=MAX_JSON_BYTES)
    if data is None:
        return None
    return _validated(RecordedDesign, data, DESIGN_FILE)


def recorded_floor(project: Path) -> str | None:
    """The tier floor ``project``'s state records (None without state). Raises
    ``LayoutError``."""
    state = read_state(project)
    return state.tier_floor if state is not None else None


def read_base(project: Path, state: State) -> dict[str, bytes]:
    """The pristine copy of every artifact of the last generation, each checked against the
    digest ``state.json`` records for it."""
    base: dict[str, bytes] = {}
    for rel, expected in sorted(state.file_digests().items()):
        copy = f"{BASE_DIR}/{rel}"
        data = read_bytes(project, copy, source=copy, key="")
        if data is None or hashlib.sha256(data).hexdigest() != expected:
            what = "is missing" if data is None else "does not match the recorded SHA-256"
            raise BaseSnapshotError(
                f"the pristine copy {shown(copy)} {what}; without it update cannot tell your "
                "edits from generated content",
                file=copy,
                hint=f"restore it from git: git checkout -- {BASE_DIR}",
            )
        base[rel] = data
    return base


# --------------------------------------------------------------------------------------------
# Writing (generation side)
# --------------------------------------------------------------------------------------------


def record_base(target: Path, files: Iterable[str]) -> list[str]:
    """Store the base of the next update inside a freshly rendered project at ``target``.

    Every generated artifact (all files but ``mlopsctl.yaml`` and ``.mlopsctl/``) is copied to
    ``.mlopsctl/base/<path>``, its digest is recorded in ``.mlopsctl/state.json`` together with
    those of the internal files mlopsctl owns and the generation's source key (``source_key``),
    and ``.mlopsctl/.gitattributes`` keeps the copy byte-exact. Every file ends with the mode
    ``mlopsctl._modes`` prescribes. Returns the sorted list of all files now in ``target``.
    """
    files = sorted(files)
    artifacts = [f for f in files if not is_internal(f) and f != ANSWERS_FILE]
    hashes: dict[str, str] = {}
    for rel in artifacts:
        src = target / rel
        data = src.read_bytes()
        hashes[rel] = digest(data)
        copy = target / BASE_DIR / rel
        copy.parent.mkdir(parents=True, exist_ok=True)
        copy.write_bytes(data)
        os.chmod(copy, _modes.mode_like(src.stat().st_mode))
    (target / ATTRIBUTES_FILE).write_text(_ATTRIBUTES, encoding="utf-8")
    state_path = target / STATE_FILE
    state: dict[str, Any] = json.loads(state_path.read_text(encoding="utf-8"))
    copies = {f"{BASE_DIR}/{a}" for a in artifacts}
    internal = sorted({f for f in files if is_internal(f)} | {ATTRIBUTES_FILE} | copies)
    own = [f for f in files if is_internal(f) and f != STATE_FILE]
    floor = state.get("tier_floor")
    state["generated"] = {
        "base_dir": BASE_DIR,
        "files": hashes,
        # state.json itself is always rewritten, never removed: it records no digest of itself
        "internal": {
            rel: digest((target / rel).read_bytes()) for rel in internal if rel != STATE_FILE
        },
        # what validate's in-sync check needs to know this generation without repeating it
        "source": "sha256:" + source_key((target / ANSWERS_FILE).read_bytes(), floor),
        "own_files": {rel: digest((target / rel).read_bytes()) for rel in own},
    }
    state_path.write_text(json.dumps(state, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    everything = sorted(set(files) | set(internal))
    for rel in everything:
        path = target / rel
        mode = path.lstat().st_mode
        if stat.S_ISREG(mode) and stat.S_IMODE(mode) != _modes.mode_like(mode):
            _modes.apply(path)  # the copier renderer keeps the template's own modes
    return everything


def internal_changes(
    project: Path, state: State, new: Mapping[str, bytes]
) -> tuple[dict[str, bytes | None], list[str]]:
    """What ``update`` writes into ``project``'s ``.mlopsctl/`` (path -> content; None deletes)
    to hold the new generation's internal files ``new``, and warnings for the files it keeps.

    A file the last generation kept there and the new one does not is deleted only when its
    content matches the digest ``state.json`` records for it; one without a recorded digest or
    with other content is kept and reported."""
    writes: dict[str, bytes | None] = {}
    warnings: list[str] = []
    for rel, data in new.items():
        key = f"new generation {shown(rel)}"
        current = read_bytes(project, rel, source=STATE_DIR, key=key)
        if current != data:
            writes[rel] = data
    recorded = state.internal_digests()
    for rel, artifact_digest in state.file_digests().items():
        if recorded.get(f"{BASE_DIR}/{rel}") is None:  # a pristine copy: its artifact's digest
            recorded[f"{BASE_DIR}/{rel}"] = artifact_digest
    for rel in sorted(set(recorded) - set(new)):
        key = f"generated.internal.{shown(rel)}"
        current = read_bytes(project, rel, source=STATE_FILE, key=key)
        if current is None:
            continue
        expected = recorded[rel]
        if expected is None:
            warnings.append(
                f"kept {rel}: the new generation no longer writes it, but {STATE_FILE} records "
                "no digest for it (an older mlopsctl made it); delete it if unused"
            )
        elif hashlib.sha256(current).hexdigest() != expected:
            warnings.append(
                f"kept {rel}: the new generation no longer writes it, but its content does not "
                f"match the digest {STATE_FILE} records; delete it if unused"
            )
        else:
            writes[rel] = None
    return writes, warnings


# --------------------------------------------------------------------------------------------
# What one generation is a function of
# --------------------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def code_digest() -> str:
    """A digest of everything generation depends on besides the answers: mlopsctl's code and
    data (validate's own checks and schemas excepted) and the template."""
    pkg = Path(__file__).resolve().parent
    # where mlopsctl.render.template_dir() looks, without importing the renderer
    templates = pkg / "templates" if (pkg / "templates").is_dir() else pkg.parent / "templates"
    h = hashlib.sha256()
    roots = [(pkg, ("checks", "schemas", "templates")), (templates, ())]
    for root, skip in roots:
        for dirpath, dirnames, filenames in os.walk(root):
            rel_dir = Path(dirpath).relative_to(root)
            dirnames[:] = sorted(
                d for d in dirnames if d != "__pycache__" and not (rel_dir == Path() and d in skip)
            )
            for name in sorted(filenames):
                if name.endswith((".pyc", ".pyo")):
                    continue
                path = Path(dirpath) / name
                h.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()


def source_key(answers: bytes, tier_floor: str | None) -> str:
    """What one generation is a function of: the answers file as written, the tier floor of the
    command that made the project, and mlopsctl itself. Generation is deterministic, so two
    generations with the same key write the same files."""
    floor = (tier_floor or "").encode()
    return hashlib.sha256(answers + b"\0" + floor + b"\0" + code_digest().encode()).hexdigest()
