"""The in-process template renderer, and copier's own run for the templates it does not follow.

Copier's own run (``copy``) spends most of its time importing copier and its prompt toolkit,
compiling every template again and starting one ``git config`` process per file.
``render_fast`` renders the same template with Jinja directly, following copier's rules for the
subset of copier features the template uses (``_subdirectory``, ``_templates_suffix``,
``_envops``, ``_exclude`` patterns that name files or folders, conditional file and folder
names, file modes), with compiled templates kept for the life of the process. A template that
uses anything else (a question, an exclusion by path, an answers file, a copier-only filter or
variable) raises ``NeedsCopier`` and is rendered by copier itself.
tests/test_determinism.py checks that both give identical trees.
"""

from __future__ import annotations

import fnmatch
import os
from contextlib import suppress
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from mlopsctl._modes import mode_like

_FAST_CONFIG_KEYS = frozenset({"_subdirectory", "_templates_suffix", "_envops", "_exclude"})


_COPIER_ANSWERS_FILE = ".copier-answers.yml"


class NeedsCopier(Exception):
    """The template uses a copier feature the in-process renderer does not follow."""


@dataclass(frozen=True)
class FastTemplate:
    root: Path  # the template (where copier.yml is)
    copy_root: Path  # root / _subdirectory
    suffix: str
    env: Any  # jinja2.sandbox.SandboxedEnvironment, as copier uses
    exclude: tuple[str, ...]  # _exclude: names never copied, at any depth
    names: dict[str, Any] = field(default_factory=dict)  # compiled file and folder names


@lru_cache(maxsize=4)
def fast_template(root: Path) -> FastTemplate | None:
    import yaml
    from jinja2 import FileSystemLoader, StrictUndefined
    from jinja2.sandbox import SandboxedEnvironment

    config = yaml.safe_load((root / "copier.yml").read_text(encoding="utf-8")) or {}
    if not isinstance(config, dict) or set(config) - _FAST_CONFIG_KEYS:
        return None
    subdirectory = config.get("_subdirectory")
    suffix = config.get("_templates_suffix", ".jinja")
    envops = dict(config.get("_envops") or {})
    if not isinstance(subdirectory, str) or Path(subdirectory) == Path():
        return None  # copier's default exclusions would apply
    exclude = config.get("_exclude", [])
    if not isinstance(exclude, list) or not all(
        isinstance(p, str) and p and "/" not in p and not p.startswith("!") for p in exclude
    ):
        return None  # copier matches paths and negations; names alone are followed here
    if not isinstance(suffix, str) or not suffix.startswith(".") or suffix.count(".") != 1:
        return None
    # Only StrictUndefined: a copier-only variable must fail here, never render as "".
    if envops.pop("undefined", None) != "jinja2.StrictUndefined":
        return None
    envops.setdefault("keep_trailing_newline", True)
    env = SandboxedEnvironment(
        loader=FileSystemLoader(str(root)),
        undefined=StrictUndefined,
        auto_reload=False,
        bytecode_cache=bytecode_cache(),
        **envops,
    )
    return FastTemplate(root, root / subdirectory, suffix, env, tuple(exclude))


def bytecode_cache() -> Any:
    """Jinja's own cache of compiled templates (keyed by template source and Jinja/Python
    version) under ``$XDG_CACHE_HOME/mlopsctl/jinja``: compiling the templates is most of a
    render. None when ``MLOPSCTL_NO_CACHE`` is set or the directory cannot be made private."""
    from jinja2 import FileSystemBytecodeCache

    from mlopsctl._cachedir import private_cache_dir

    directory = private_cache_dir("jinja")  # None: another user could plant compiled code there
    if directory is None:
        return None

    class BestEffort(FileSystemBytecodeCache):
        """A full or read-only cache costs a compilation, never the generation."""

        def load_bytecode(self, bucket: Any) -> None:
            try:
                super().load_bytecode(bucket)
            except (OSError, EOFError, ValueError):
                bucket.reset()

        def dump_bytecode(self, bucket: Any) -> None:
            with suppress(OSError):
                super().dump_bytecode(bucket)

    return BestEffort(str(directory))


def _render_part(tpl: FastTemplate, part: str, data: dict[str, Any]) -> str:
    if "{" not in part:
        return part
    compiled = tpl.names.get(part)
    if compiled is None:
        compiled = tpl.names[part] = tpl.env.from_string(part)
    rendered: str = compiled.render(**data)
    if rendered and (rendered in {".", "..", _COPIER_ANSWERS_FILE} or "/" in rendered):
        raise NeedsCopier(f"path part {part!r} renders to {rendered!r}")
    return rendered


def _write_new(path: Path, content: bytes, mode: int) -> None:
    """Create ``path`` (never following or replacing anything) with ``content`` and ``mode``."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        view = memoryview(content)
        while view:
            view = view[os.write(fd, view) :]
        os.fchmod(fd, mode)
    finally:
        os.close(fd)


def render_fast(tpl: FastTemplate, data: dict[str, Any], target: Path) -> list[str]:
    """Render ``tpl`` into the new directory ``target`` as copier would; return the files."""
    from jinja2 import TemplateError

    files: list[str] = []
    os.mkdir(target)
    try:
        pending = [Path()]
        while pending:
            rel_dir = pending.pop()
            with os.scandir(tpl.copy_root / rel_dir) as entries:
                names = sorted((e.name, e.is_symlink(), e.is_dir()) for e in entries)
            for name, is_link, is_dir in names:
                src_rel = rel_dir / name
                if is_link:
                    raise NeedsCopier(f"{src_rel} is a symlink")
                is_template = name.endswith(tpl.suffix)
                if not is_template and (tpl.copy_root / f"{src_rel}{tpl.suffix}").exists():
                    continue  # copier renders the templated sibling instead
                out_rel = src_rel.with_suffix("") if is_template else src_rel
                parts = [_render_part(tpl, part, data) for part in out_rel.parts]
                if not all(parts):
                    continue  # a conditional name rendered empty: skip it and what is below
                if any(fnmatch.fnmatchcase(parts[-1], pattern) for pattern in tpl.exclude):
                    continue  # copier matches _exclude against the destination path
                dst_rel = Path(*parts)
                if not is_template and (tpl.root / f"{dst_rel}{tpl.suffix}").exists():
                    continue  # copier's own rule for a plain file shadowed by a template
                dst = target / dst_rel
                if is_dir:
                    dst.mkdir(parents=True, exist_ok=True)
                    pending.append(src_rel)
                    continue
                src = tpl.copy_root / src_rel
                if is_template:
                    name_in_root = (src.relative_to(tpl.root)).as_posix()
                    content = tpl.env.get_template(name_in_root).render(**data).encode()
                else:
                    content = src.read_bytes()
                dst.parent.mkdir(parents=True, exist_ok=True)
                _write_new(dst, content, mode_like(src.stat().st_mode))
                files.append(dst_rel.as_posix())
    except TemplateError as exc:
        raise NeedsCopier(str(exc)) from exc
    return sorted(files)


def copy(template: Path, data: dict[str, Any], target: Path) -> None:
    """Render ``template`` with ``data`` into the empty directory ``target`` by copier itself."""
    from copier import run_copy

    run_copy(
        str(template),
        str(target),
        data=data,
        defaults=True,
        quiet=True,
        overwrite=True,
        unsafe=False,
        skip_tasks=True,
    )
