"""The repository as the checks see it: files, parsed YAML/JSON documents, Kubernetes objects.

Parsing uses PyYAML's C loader (``CSafeLoader``) and ``json``; nothing keeps line numbers on the
fast path. A finding names a document and a key path; its line is looked up afterwards by
composing only that file's node tree (``line_of``).

The repository is untrusted input, and this module is its only reader: every read and parse is
bounded by the limits below (``LIMITS`` describes them for docs/checks.md). A YAML or JSON file
past a limit is not parsed and gets a finding (MLV001); other files past a limit are not read.
"""

from __future__ import annotations

import bisect
import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import yaml

from mlopsctl.checks._model import KeyPath

SKIP_DIRS = frozenset(
    {
        ".git",
        ".hg",
        ".svn",
        ".venv",
        "venv",
        ".tox",
        ".nox",
        "node_modules",
        "__pycache__",
        ".mypy_cache",
        ".pytest_cache",
        ".ruff_cache",
        ".hypothesis",
        ".ipynb_checkpoints",
        "mlruns",
        "mlartifacts",
        "build",
        "dist",
    }
)
# mlopsctl update's pristine copy of the last generation: byte-exact copies, not linted twice
INTERNAL_COPIES = ".mlopsctl/base/"
# Limits on what validate reads and parses. Generous for any real repository, small enough
# that a hostile one cannot make validate run for minutes or exhaust memory.
MAX_FILE_BYTES = 4 * 1024 * 1024  # read per file
MAX_TOTAL_BYTES = 256 * 1024 * 1024  # read per repository
MAX_FILES = 20_000  # files per repository
MAX_DEPTH = 100  # nesting of YAML/JSON collections
MAX_VALUES = 250_000  # values in one YAML/JSON file, YAML aliases expanded
MAX_TOTAL_VALUES = 2_000_000  # parsed values per repository
MAX_INT_DIGITS = 1000  # characters of one integer
MAX_PARSE_SECONDS = 120.0  # reading and parsing per run
MAX_TEXT_BYTES = MAX_FILE_BYTES
LIMITS: tuple[tuple[str, str], ...] = (
    ("size of one file", f"{MAX_FILE_BYTES // (1024 * 1024)} MiB"),
    ("bytes read per repository", f"{MAX_TOTAL_BYTES // (1024 * 1024)} MiB"),
    ("files per repository", f"{MAX_FILES:,}"),
    ("nesting depth of a YAML or JSON document", f"{MAX_DEPTH} levels"),
    ("values in one YAML or JSON file, aliases expanded", f"{MAX_VALUES:,}"),
    ("parsed values per repository", f"{MAX_TOTAL_VALUES:,}"),
    ("length of one integer", f"{MAX_INT_DIGITS:,} characters"),
    ("time spent reading and parsing", f"{MAX_PARSE_SECONDS:.0f} s"),
)
YAML_SUFFIXES = (".yaml", ".yml")
JSON_SUFFIXES = (".json",)
TEMPLATE_SUFFIXES = (".jinja", ".jinja2", ".j2", ".tpl", ".tmpl", ".gotmpl")

try:
    _Loader: Any = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - PyYAML built without libyaml
    _Loader = yaml.SafeLoader


class _BoundedLoader(_Loader):  # type: ignore[misc]
    """The C loader, refusing integers too long to convert in bounded time (YAML 1.1's
    base-60 integers such as ``1:2:3`` take quadratic time; decimal ones past 4300 digits raise
    ValueError)."""


def _construct_int(loader: Any, node: yaml.ScalarNode) -> Any:
    if len(node.value) > MAX_INT_DIGITS:
        raise _LimitError(
            f"an integer of more than {MAX_INT_DIGITS} characters (the limit)",
            node.start_mark.line + 1,
        )
    return yaml.constructor.SafeConstructor.construct_yaml_int(loader, node)


_BoundedLoader.add_constructor("tag:yaml.org,2002:int", _construct_int)


class ParseError(Exception):
    def __init__(self, message: str, line: int | None) -> None:
        super().__init__(message)
        self.message = message
        self.line = line


class _LimitError(Exception):
    """A file past one of the limits above."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.line = line


class Budget:
    """What one run may still read and parse; shared by the files of a repository (checks
    run in threads, hence the lock)."""

    def __init__(self) -> None:
        import threading
        import time

        self._lock = threading.Lock()
        self._clock = time.monotonic
        self.deadline = time.monotonic() + MAX_PARSE_SECONDS
        self.values_left = MAX_TOTAL_VALUES

    def check_time(self) -> None:
        if self._clock() > self.deadline:
            raise _LimitError(
                f"not parsed: validate's limit of {MAX_PARSE_SECONDS:.0f} s for reading and "
                "parsing files was used up before this file"
            )

    def take_values(self, count: int) -> None:
        with self._lock:
            if count > self.values_left:
                raise _LimitError(
                    f"not parsed: the repository's limit of {MAX_TOTAL_VALUES:,} parsed values "
                    "was used up before this file"
                )
            self.values_left -= count


def read_bounded(path: Path, limit: int = MAX_FILE_BYTES) -> bytes | None:
    """The bytes of a regular file of at most ``limit`` bytes; None for anything else (a FIFO,
    a device such as /dev/zero, a directory, a larger file, an unreadable one). Opened without
    blocking and checked after opening, so a file swapped for a FIFO or a device meanwhile is
    not read either."""
    import stat

    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0))
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_size > limit:
            return None
        chunks: list[bytes] = []
        left = limit + 1
        while left > 0:
            chunk = os.read(fd, min(left, 1024 * 1024))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        raw = b"".join(chunks)
        return raw if len(raw) <= limit else None
    except OSError:
        return None
    finally:
        os.close(fd)


def _measure_nodes(root: Any, budget: int) -> int:
    """How many values a composed YAML document holds with every alias expanded, refusing more
    than ``budget``, nesting deeper than ``MAX_DEPTH`` and a document that contains itself.
    Shared (aliased) nodes are measured once, so this takes time in the size of the file, not of
    the expansion."""
    memo: dict[int, tuple[int, int]] = {}  # id(node) -> (values, depth)
    open_: set[int] = set()
    stack: list[tuple[Any, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        if isinstance(node, yaml.ScalarNode):
            continue
        key = id(node)
        children = (
            [n for pair in node.value for n in pair]
            if isinstance(node, yaml.MappingNode)
            else node.value
        )
        if done:
            open_.discard(key)
            values, depth = 1, 1
            for child in children:
                if isinstance(child, yaml.ScalarNode):
                    values += 1
                else:
                    v, d = memo[id(child)]
                    values += v
                    depth = max(depth, d + 1)
            if values > budget:
                raise _LimitError(
                    f"more than {MAX_VALUES:,} values with aliases expanded (the limit)",
                    node.start_mark.line + 1,
                )
            if depth > MAX_DEPTH:
                raise _LimitError(
                    f"nested more than {MAX_DEPTH} levels deep (the limit)",
                    node.start_mark.line + 1,
                )
            memo[key] = (values, depth)
            continue
        if key in memo:
            continue
        if key in open_:
            raise _LimitError(
                "an alias refers to a collection that contains it (a cycle)",
                node.start_mark.line + 1,
            )
        if len(open_) >= MAX_DEPTH:
            raise _LimitError(
                f"nested more than {MAX_DEPTH} levels deep (the limit)", node.start_mark.line + 1
            )
        open_.add(key)
        stack.append((node, True))
        stack.extend((child, False) for child in children if not isinstance(child, yaml.ScalarNode))
    return memo[id(root)][0] if id(root) in memo else 1


def _load_yaml(text: str, budget: int) -> tuple[list[Any], int]:
    """The documents of a YAML file and how many values they hold; each document is measured
    (``_measure_nodes``) after it is composed and before anything is constructed."""
    loader = _BoundedLoader(text)
    docs: list[Any] = []
    values = 0
    try:
        while loader.check_node():
            node = loader.get_node()
            values += _measure_nodes(node, budget - values)
            data = loader.construct_document(node)
            if data is not None:
                docs.append(data)
    finally:
        loader.dispose()
    return docs, values


_MAX_INT_BITS = int(MAX_INT_DIGITS * 3.33)


def _measure_json(doc: Any, budget: int) -> int:
    """How many values a JSON document holds, refusing more than ``budget``, nesting deeper
    than ``MAX_DEPTH`` and integers longer than ``MAX_INT_DIGITS``."""
    values = 0
    stack: list[tuple[Any, int]] = [(doc, 1)]
    while stack:
        node, depth = stack.pop()
        values += 1
        if isinstance(node, dict | list):
            if depth > MAX_DEPTH:
                raise _LimitError(f"nested more than {MAX_DEPTH} levels deep (the limit)")
            items = node.values() if isinstance(node, dict) else node
            stack.extend((item, depth + 1) for item in items)
            values += len(node) if isinstance(node, dict) else 0  # the keys
        elif type(node) is int and node.bit_length() > _MAX_INT_BITS:
            raise _LimitError(f"an integer of more than {MAX_INT_DIGITS} digits (the limit)")
        if values > budget:
            raise _LimitError(f"more than {MAX_VALUES:,} values (the limit)")
    return values


@dataclass
class SourceFile:
    rel: str
    path: Path
    size: int
    budget: Budget = field(default_factory=Budget, repr=False)
    # Why the file is not read at all (set by ``Repo.scan``), or None.
    unread: str | None = None
    name: str = field(init=False)
    suffix: str = field(init=False)
    _text: str | None = None
    _text_read: bool = False
    _docs: list[Any] | None = None
    _error: ParseError | None = None
    _parsed: bool = False
    _nodes: list[Any] | None = None
    _line_starts: list[int] | None = None

    def __post_init__(self) -> None:
        self.name = self.rel.rsplit("/", 1)[-1]
        stem, dot, ext = self.name.rpartition(".")
        self.suffix = f".{ext.lower()}" if dot and stem else ""
        if self.unread is None and self.size > MAX_FILE_BYTES:
            self.unread = f"larger than {MAX_FILE_BYTES // (1024 * 1024)} MiB (the limit per file)"

    @property
    def is_yaml(self) -> bool:
        return self.suffix in YAML_SUFFIXES

    @property
    def is_json(self) -> bool:
        return self.suffix in JSON_SUFFIXES

    @property
    def is_template(self) -> bool:
        return self.suffix in TEMPLATE_SUFFIXES

    def read_bytes(self) -> bytes | None:
        """The file's bytes, read within the limits (``read_bounded``); None when it is not
        read. Every check reads the repository's files through this or ``text``."""
        if self.unread is not None:
            return None
        return read_bounded(self.path)

    @property
    def text(self) -> str | None:
        """The file as UTF-8 text; None for binary files and files not read (``unread``)."""
        # Checks run in threads: publish the result before the flag (no lock needed, a race
        # only reads the file twice).
        if not self._text_read:
            text = None
            raw = self.read_bytes()
            if raw is not None and b"\0" not in raw[:8192]:
                try:
                    text = raw.decode("utf-8")
                except UnicodeDecodeError:
                    text = None
            self._text = text
            self._text_read = True
        return self._text

    def _parse(self) -> None:
        if self._parsed:
            return
        self._parse_now()
        self._parsed = True

    def _parse_now(self) -> None:
        text = self.text
        if text is None or not (self.is_yaml or self.is_json) or self.is_template:
            return
        try:
            self.budget.check_time()
            if self.is_json:
                self._parse_json(text)
                return
            docs, values = _load_yaml(text, MAX_VALUES)
            self.budget.take_values(values)
            self._docs = docs
        except _LimitError as exc:
            self._error = ParseError(exc.message, exc.line)
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            problem = exc.problem or exc.context or "not valid YAML"
            self._error = ParseError(
                f"not valid YAML: {problem}", mark.line + 1 if mark is not None else None
            )
        except yaml.YAMLError as exc:
            self._error = ParseError(f"not valid YAML: {exc}", None)
        except (ValueError, TypeError, RecursionError) as exc:  # e.g. a timestamp out of range
            self._error = ParseError(f"not valid YAML: {exc}", None)

    def _parse_json(self, text: str) -> None:
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as exc:
            self._error = ParseError(f"not valid JSON: {exc.msg}", exc.lineno)
            return
        except RecursionError:  # the C decoder's own guard, far past MAX_DEPTH
            raise _LimitError(f"nested more than {MAX_DEPTH} levels deep (the limit)") from None
        except ValueError:  # an integer past Python's int/str conversion limit
            raise _LimitError(
                f"an integer of more than {MAX_INT_DIGITS} digits (the limit)"
            ) from None
        self.budget.take_values(_measure_json(doc, MAX_VALUES))
        self._docs = [doc]

    @property
    def docs(self) -> list[Any]:
        """Parsed documents (YAML multi-document files give several); empty when unparsable."""
        self._parse()
        return self._docs or []

    @property
    def parse_error(self) -> ParseError | None:
        self._parse()
        return self._error

    @property
    def parsed(self) -> bool:
        self._parse()
        return self._docs is not None

    def nodes(self) -> list[Any]:
        """The YAML node trees (with marks), composed on demand for line lookups."""
        if self._nodes is None:
            nodes: list[Any] = []
            if self.text is not None and self.parsed:
                try:
                    nodes = [
                        n for n in yaml.compose_all(self.text, Loader=_Loader) if n is not None
                    ]
                except yaml.YAMLError:
                    nodes = []
            self._nodes = nodes
        return self._nodes

    def line_of(self, doc: int, path: KeyPath) -> int | None:
        """The 1-based line of ``path`` inside document ``doc``; the nearest existing parent's
        line when the path does not exist (a missing key is reported where it belongs)."""
        nodes = self.nodes()
        if doc >= len(nodes):
            return None if not self.is_json else self._json_line(path)
        node = nodes[doc]
        line: int = node.start_mark.line + 1
        for part in path:
            if isinstance(node, yaml.MappingNode):
                for key, value in node.value:
                    if isinstance(key, yaml.ScalarNode) and key.value == str(part):
                        line = key.start_mark.line + 1
                        node = value
                        break
                else:
                    return line
            elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
                if part >= len(node.value):
                    return line
                node = node.value[part]
                line = node.start_mark.line + 1
            else:
                return line
        return line

    def _json_line(self, path: KeyPath) -> int | None:
        keys = [p for p in path if isinstance(p, str)]
        text = self.text or ""
        if not keys:
            return 1
        match = re.search(rf'"{re.escape(keys[-1])}"\s*:', text)
        return text.count("\n", 0, match.start()) + 1 if match else None

    def find_line(self, needle: str) -> int | None:
        text = self.text or ""
        pos = text.find(needle)
        return None if pos < 0 else self.line_at(pos)

    def line_at(self, pos: int) -> int:
        """The 1-based line of character offset ``pos`` of ``text``, without rescanning the
        text (files with many findings stay linear)."""
        if self._line_starts is None:
            self._line_starts = line_starts(self.text or "")
        return bisect.bisect_right(self._line_starts, pos)


def line_starts(text: str) -> list[int]:
    """Offsets where the lines of ``text`` start; ``bisect_right(starts, pos)`` is the 1-based
    line of offset ``pos``."""
    return [0, *(m.end() for m in re.finditer("\n", text))]


@dataclass(frozen=True)
class KubeObject:
    """A YAML document (or an item of a ``List``) with ``apiVersion`` and ``kind``."""

    file: SourceFile
    doc: int
    base: KeyPath
    data: dict[str, Any]

    @property
    def kind(self) -> str:
        return str(self.data.get("kind"))

    @property
    def api_version(self) -> str:
        return str(self.data.get("apiVersion"))

    @property
    def group(self) -> str:
        return self.api_version.rpartition("/")[0]

    @property
    def name(self) -> str:
        meta = self.data.get("metadata")
        return str(meta.get("name", "")) if isinstance(meta, dict) else ""

    def label(self) -> str:
        return f"{self.kind} {self.name}".strip()

    def line(self, *path: str | int) -> int | None:
        return self.file.line_of(self.doc, self.base + tuple(path))


@dataclass(frozen=True)
class Unread:
    """A path the repository lists that is not read, and why."""

    rel: str
    reason: str
    limit: bool = False  # past a limit of the whole repository: a finding whatever the file

    @property
    def is_data(self) -> bool:
        name = self.rel.rsplit("/", 1)[-1].lower()
        return name.endswith(YAML_SUFFIXES + JSON_SUFFIXES)


@dataclass
class Repo:
    root: Path
    files: list[SourceFile] = field(default_factory=list)
    # Paths not read at all: not regular files, symlinks leaving the repository, past the limit
    # on files or bytes. Files too large to read stay in ``files`` (their ``unread`` says why).
    unread: list[Unread] = field(default_factory=list)
    budget: Budget = field(default_factory=Budget, repr=False)

    @classmethod
    def scan(cls, root: Path, exclude: list[str] | None = None) -> Repo:
        """Every file under ``root`` except tool caches, virtualenvs and ``exclude`` globs
        (matched against the path relative to ``root``, e.g. ``tests/fixtures/**``)."""
        from fnmatch import fnmatchcase

        root = root.resolve()
        repo = cls(root=root)
        patterns = [p.rstrip("/") for p in exclude or []]

        def excluded(rel: str) -> bool:
            return any(
                fnmatchcase(rel, p) or fnmatchcase(rel, p + "/*") or rel.startswith(p + "/")
                for p in patterns
            )

        total = 0
        names = _git_files(root) or _walk(root)
        for rel in names:
            if (patterns and excluded(rel)) or rel.startswith(INTERNAL_COPIES):
                continue
            if len(repo.files) + len(repo.unread) >= MAX_FILES:
                repo.unread.append(
                    Unread(
                        rel,
                        f"the repository has more than {MAX_FILES:,} files (the limit); this "
                        "file and those after it are not checked",
                        limit=True,
                    )
                )
                break
            path = root / rel
            kind = _kind(root, path)
            if kind is None:
                continue
            if isinstance(kind, str):
                repo.unread.append(Unread(rel, kind))
                continue
            size = kind.st_size
            unread = None
            if size <= MAX_FILE_BYTES:
                total += size
                if total > MAX_TOTAL_BYTES:
                    unread = (
                        f"the repository's limit of {MAX_TOTAL_BYTES // (1024 * 1024)} MiB read "
                        "in total is used up before this file"
                    )
            repo.files.append(
                SourceFile(rel=rel, path=path, size=size, budget=repo.budget, unread=unread)
            )
        return repo

    @cached_property
    def by_rel(self) -> dict[str, SourceFile]:
        return {f.rel: f for f in self.files}

    def get(self, rel: str) -> SourceFile | None:
        return self.by_rel.get(rel)

    def data_files(self) -> Iterator[SourceFile]:
        for f in self.files:
            if (f.is_yaml or f.is_json) and not f.is_template:
                yield f

    @cached_property
    def kube_objects(self) -> list[KubeObject]:
        out: list[KubeObject] = []
        for f in self.data_files():
            if not f.is_yaml or helm_template(f.rel, self.by_rel):
                continue
            for i, doc in enumerate(f.docs):
                if not _is_kube(doc):
                    continue
                if doc.get("kind") == "List" and isinstance(doc.get("items"), list):
                    for j, item in enumerate(doc["items"]):
                        if _is_kube(item):
                            out.append(KubeObject(f, i, ("items", j), item))
                    continue
                out.append(KubeObject(f, i, (), doc))
        return out

    def objects(self, *kinds: str) -> list[KubeObject]:
        return [o for o in self.kube_objects if o.kind in kinds]

    def markdown_files(self) -> Iterator[SourceFile]:
        for f in self.files:
            if f.suffix in {".md", ".markdown", ".rst", ".txt"} and f.text is not None:
                yield f

    def python_files(self) -> Iterator[SourceFile]:
        for f in self.files:
            if f.suffix == ".py" and f.text is not None:
                yield f


def _is_kube(doc: Any) -> bool:
    return (
        isinstance(doc, dict)
        and isinstance(doc.get("apiVersion"), str)
        and isinstance(doc.get("kind"), str)
    )


def _git_files(root: Path) -> list[str] | None:
    """Inside a git work tree: the files git tracks or would track (ignored files such as a local
    ``.env`` are not the repository's). None outside git or without git."""
    from mlopsctl import _git
    from mlopsctl.errors import MlopsctlError

    if not any((d / ".git").exists() for d in (root, *root.parents)):
        return None
    try:  # with the repository's hooks, fsmonitor and drivers off (mlopsctl._git)
        proc = _git.run(
            ["ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            root,
            check=False,
            timeout=60,
        )
    except (OSError, MlopsctlError):
        return None
    if proc.returncode != 0:
        return None
    names = {n.decode("utf-8", "surrogateescape") for n in proc.stdout.split(b"\0") if n}
    return sorted(n for n in names if not (set(n.split("/")[:-1]) & SKIP_DIRS))


def _kind(root: Path, path: Path) -> os.stat_result | str | None:
    """A regular file's status; why it is not read (a FIFO, a device, a symlink that leaves the
    repository); or None for what is silently left out (a directory, a dangling link, a file
    deleted meanwhile)."""
    import stat

    try:
        st = path.lstat()
        if stat.S_ISLNK(st.st_mode):
            real = Path(os.path.realpath(path))
            if not real.is_relative_to(root):
                return "a symlink to a path outside the repository"
            st = real.stat()
    except (OSError, RuntimeError):  # RuntimeError: a symlink loop on older Pythons
        return None
    if stat.S_ISREG(st.st_mode):
        return st
    if stat.S_ISDIR(st.st_mode):
        return None  # a submodule or a symlinked directory
    for test, what in (
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(st.st_mode):
            return f"not a regular file ({what})"
    return "not a regular file"


def _walk(root: Path) -> list[str]:
    """Every file below ``root`` (directory symlinks not followed); the walk stops well past
    ``MAX_FILES``."""
    out: list[str] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(
            d for d in dirnames if d not in SKIP_DIRS and not d.endswith(".egg-info")
        )
        base = Path(dirpath)
        out.extend((base / name).relative_to(root).as_posix() for name in sorted(filenames))
        if len(out) > 2 * MAX_FILES:
            break
    return out


def helm_template(rel: str, by_rel: dict[str, SourceFile]) -> bool:
    """Files under a Helm chart's ``templates/`` (a ``Chart.yaml`` beside it) are Go templates."""
    parts = rel.split("/")
    for i, part in enumerate(parts[:-1]):
        if part == "templates" and "/".join([*parts[:i], "Chart.yaml"]) in by_rel:
            return True
    return False
