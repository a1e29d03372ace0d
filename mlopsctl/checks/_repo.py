"""The repository as the checks see it: files, parsed YAML/JSON documents, Kubernetes objects.

Parsing uses PyYAML's C loader (``CSafeLoader``) and ``json``; nothing keeps line numbers on the
fast path. A finding names a document and a key path; its line is looked up afterwards by
composing only that file's node tree (``line_of``).
"""

from __future__ import annotations

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
MAX_TEXT_BYTES = 4 * 1024 * 1024
YAML_SUFFIXES = (".yaml", ".yml")
JSON_SUFFIXES = (".json",)
TEMPLATE_SUFFIXES = (".jinja", ".jinja2", ".j2", ".tpl", ".tmpl", ".gotmpl")

try:
    _Loader: Any = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - PyYAML built without libyaml
    _Loader = yaml.SafeLoader


class ParseError(Exception):
    def __init__(self, message: str, line: int | None) -> None:
        super().__init__(message)
        self.message = message
        self.line = line


@dataclass
class SourceFile:
    rel: str
    path: Path
    size: int
    name: str = field(init=False)
    suffix: str = field(init=False)
    _text: str | None = None
    _text_read: bool = False
    _docs: list[Any] | None = None
    _error: ParseError | None = None
    _parsed: bool = False
    _nodes: list[Any] | None = None

    def __post_init__(self) -> None:
        self.name = self.rel.rsplit("/", 1)[-1]
        stem, dot, ext = self.name.rpartition(".")
        self.suffix = f".{ext.lower()}" if dot and stem else ""

    @property
    def is_yaml(self) -> bool:
        return self.suffix in YAML_SUFFIXES

    @property
    def is_json(self) -> bool:
        return self.suffix in JSON_SUFFIXES

    @property
    def is_template(self) -> bool:
        return self.suffix in TEMPLATE_SUFFIXES

    @property
    def text(self) -> str | None:
        """The file as UTF-8 text; None for binary or very large files."""
        # Checks run in threads: publish the result before the flag (no lock needed, a race
        # only reads the file twice).
        if not self._text_read:
            text = None
            if self.size <= MAX_TEXT_BYTES:
                try:
                    raw = self.path.read_bytes()
                    if b"\0" not in raw[:8192]:
                        text = raw.decode("utf-8")
                except (OSError, UnicodeDecodeError):
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
        if self.is_json:
            try:
                self._docs = [json.loads(text)]
            except json.JSONDecodeError as exc:
                self._error = ParseError(f"not valid JSON: {exc.msg}", exc.lineno)
            return
        try:
            self._docs = [d for d in yaml.load_all(text, Loader=_Loader) if d is not None]
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
        return None if pos < 0 else text.count("\n", 0, pos) + 1


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


@dataclass
class Repo:
    root: Path
    files: list[SourceFile] = field(default_factory=list)

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

        for rel in _git_files(root) or _walk(root):
            if (patterns and excluded(rel)) or rel.startswith(INTERNAL_COPIES):
                continue
            path = root / rel
            try:
                st = path.stat()
            except OSError:
                continue  # deleted in the work tree, or a dangling link
            if os.path.isfile(path):
                repo.files.append(SourceFile(rel=rel, path=path, size=st.st_size))
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


def _walk(root: Path) -> list[str]:
    out: list[str] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(
            d for d in dirnames if d not in SKIP_DIRS and not d.endswith(".egg-info")
        )
        base = Path(dirpath)
        out.extend((base / name).relative_to(root).as_posix() for name in sorted(filenames))
    return out


def helm_template(rel: str, by_rel: dict[str, SourceFile]) -> bool:
    """Files under a Helm chart's ``templates/`` (a ``Chart.yaml`` beside it) are Go templates."""
    parts = rel.split("/")
    for i, part in enumerate(parts[:-1]):
        if part == "templates" and "/".join([*parts[:i], "Chart.yaml"]) in by_rel:
            return True
    return False
