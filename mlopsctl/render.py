"""Design -> template data -> copier -> files, written atomically.

The template ships inside the package (``templates/`` in the source tree, ``mlopsctl/templates``
in the wheel). Copier renders into a temporary directory beside the destination; the result is
moved into place only when every file rendered, so a failure or Ctrl-C leaves the destination as
it was.
"""

from __future__ import annotations

import errno
import fnmatch
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from mlopsctl import __version__
from mlopsctl._modes import mode_like
from mlopsctl.design import TIER_COMMAND, StackDesign
from mlopsctl.errors import DestinationError, GenerationError, Interrupted
from mlopsctl.escaping import json_document, json_value, yaml_value
from mlopsctl.interrupts import Progress, current, held, redeliver
from mlopsctl.monitoring import monitoring_contract, runtime_latency_metric, serving_table

TEMPLATE_VERSION = "1"
ANSWERS_FILE = "mlopsctl.yaml"
TMP_PREFIX = ".mlopsctl-tmp-"


def template_dir() -> Path:
    """The copier template: packaged inside the wheel, or at the top of a source checkout."""
    here = Path(__file__).resolve().parent
    packaged = here / "templates"
    if (packaged / "copier.yml").is_file():
        return packaged
    source = here.parent / "templates"
    if (source / "copier.yml").is_file():
        return source
    raise GenerationError(
        "the project template is missing from this installation", hint="reinstall mlopsctl"
    )


@lru_cache(maxsize=1)
def versions() -> dict[str, Any]:
    import yaml

    data: dict[str, Any] = yaml.safe_load(
        (Path(__file__).parent / "data" / "versions.yaml").read_text(encoding="utf-8")
    )
    return data


_PLAIN_SAFE = re.compile(r"^[a-z][a-z0-9_-]*$")
_YAML11_WORDS = frozenset({"y", "n", "yes", "no", "on", "off", "true", "false", "null"})


def _answer_scalar(value: Any) -> Any:
    """Strings that any YAML reader (1.1 or 1.2) reads back as the same string stay plain;
    every other string is double-quoted."""
    from ruamel.yaml.scalarstring import DoubleQuotedScalarString

    if isinstance(value, str) and not (_PLAIN_SAFE.match(value) and value not in _YAML11_WORDS):
        return DoubleQuotedScalarString(value)
    return value


def _answer_float(representer: Any, value: float) -> Any:
    """Floats as both YAML 1.1 and 1.2 readers read them (``1.0e+20``, never ``1e+20``)."""
    from mlopsctl.escaping import portable_float

    return representer.represent_scalar("tag:yaml.org,2002:float", portable_float(repr(value)))


def answers_yaml(design: StackDesign) -> str:
    """The human-editable ``mlopsctl.yaml``: every answer with its help text as a comment."""
    import io

    from ruamel.yaml import YAML
    from ruamel.yaml.comments import CommentedMap

    from mlopsctl.requirements import Requirements, ScaleRequirements

    data = design.requirements.model_dump(mode="json")
    root = CommentedMap()
    for name, info in Requirements.model_fields.items():
        value = data[name]
        if name == "scale_requirements":
            sub = CommentedMap()
            for sub_name, sub_info in ScaleRequirements.model_fields.items():
                if value.get(sub_name) is not None:
                    sub[sub_name] = value[sub_name]
                    sub.yaml_add_eol_comment(sub_info.description or "", sub_name)
            value = sub
        root[name] = _answer_scalar(value)
        root.yaml_set_comment_before_after_key(name, before=info.description, indent=0)
    yaml = YAML()
    yaml.representer.add_representer(float, _answer_float)
    yaml.width = 100
    yaml.indent(mapping=2, sequence=4, offset=2)
    out = io.StringIO()
    out.write(
        "# mlopsctl requirements. Edit an answer and run `mlopsctl update` to regenerate.\n"
        "# yaml-language-server: $schema=.mlopsctl/answers.schema.json\n"
    )
    yaml.dump(root, out)
    return out.getvalue()


def flags(design: StackDesign) -> dict[str, bool]:
    """Component switches the templates branch on: the design's ``components``, as decided."""
    return design.components.model_dump()


def _canary_percent(design: StackDesign) -> int:
    """The first traffic share a new version receives: the canary decision or the first step."""
    steps = [step for step in design.sizing.rollout_steps if 0 < step < 100]
    return design.sizing.canary_percent or (steps[0] if steps else 0)


def _cpu_cores(quantity: str) -> float:
    return int(quantity[:-1]) / 1000 if quantity.endswith("m") else float(quantity)


def _memory_gb(quantity: str) -> float:
    units = {"Ki": 1 / 1024**2, "Mi": 1 / 1024, "Gi": 1.0, "Ti": 1024.0}
    for suffix, factor in units.items():
        if quantity.endswith(suffix):
            return round(float(quantity[: -len(suffix)]) * factor, 3)
    return round(float(quantity) / 1024**3, 3)


def _serving(design: StackDesign) -> dict[str, Any]:
    table = serving_table()
    fw = dict(table["frameworks"][design.requirements.framework])
    fw["runtime_image_ref"] = versions()["images"][fw["runtime_image"]]
    fw["runtime_latency_metric"] = runtime_latency_metric(design.requirements.framework)
    return {
        "cpu_cores": _cpu_cores(design.sizing.cpu_limit),
        "memory_gb": _memory_gb(design.sizing.memory_limit),
        "canary_percent": _canary_percent(design),
        "framework": fw,
        "mlserver": table["mlserver"],
    }


def context(design: StackDesign) -> dict[str, Any]:
    """Everything the template sees. ``yv``/``jv`` are the only ways values reach YAML/JSON."""
    from mlopsctl.names import resource_names
    from mlopsctl.requirements import answers_json_schema
    from mlopsctl.rules.model import catalog_digest

    design_dict = design.json_dict()
    state = {
        "mlopsctl_version": __version__,
        "template_version": TEMPLATE_VERSION,
        "catalog_digest": "sha256:" + catalog_digest(),
        "design_schema_version": design.schema_version,
        "tier": design.tier,
        "tier_floor": design.tier_floor,
        "command": TIER_COMMAND[design.tier],
    }
    return {
        "req": design_dict["requirements"],
        "design": design_dict,
        "flags": flags(design),
        "names": resource_names(design.requirements.project_name),
        "monitoring": monitoring_contract(design),
        "serving": _serving(design),
        "versions": versions(),
        "state": state,
        "yv": yaml_value,
        "jv": json_value,
        "jv_doc": json_document,
        "answers_yaml": answers_yaml(design),
        "design_json": json.dumps(design_dict, indent=2, sort_keys=True, ensure_ascii=False) + "\n",
        "state_json": json.dumps(state, indent=2, sort_keys=True) + "\n",
        "answers_schema_json": json.dumps(answers_json_schema(), indent=2, sort_keys=True) + "\n",
    }


@dataclass(frozen=True)
class GenerationResult:
    destination: Path
    files: tuple[str, ...]


def render_to(design: StackDesign, target: Path) -> list[str]:
    """Render the template into an empty directory ``target``; return the relative file paths."""
    from copier import run_copy

    run_copy(
        str(template_dir()),
        str(target),
        data=context(design),
        defaults=True,
        quiet=True,
        overwrite=True,
        unsafe=False,
        skip_tasks=True,
    )
    from mlopsctl.layout import record_base

    return record_base(  # keeps the base of the next `mlopsctl update`
        target,
        (str(p.relative_to(target)) for p in target.rglob("*") if p.is_file() or p.is_symlink()),
    )


# In-process rendering. Copier's own run (``render_to``) spends most of its time importing
# copier and its prompt toolkit, compiling every template again and starting one ``git config``
# process per file. ``_render_fast`` renders the same template with Jinja directly, following
# copier's rules for the subset of copier features the template uses (``_subdirectory``,
# ``_templates_suffix``, ``_envops``, ``_exclude`` patterns that name files or folders,
# conditional file and folder names, file modes), with compiled templates kept for the life of
# the process. A template that uses anything else (a question, an exclusion by path, an answers
# file, a copier-only filter or variable) is rendered by copier itself.
# tests/test_determinism.py checks that both give identical trees.
_FAST_CONFIG_KEYS = frozenset({"_subdirectory", "_templates_suffix", "_envops", "_exclude"})
_COPIER_ANSWERS_FILE = ".copier-answers.yml"


class _NeedsCopier(Exception):
    """The template uses a copier feature the in-process renderer does not follow."""


@dataclass(frozen=True)
class _FastTemplate:
    root: Path  # the template (where copier.yml is)
    copy_root: Path  # root / _subdirectory
    suffix: str
    env: Any  # jinja2.sandbox.SandboxedEnvironment, as copier uses
    exclude: tuple[str, ...]  # _exclude: names never copied, at any depth
    names: dict[str, Any] = field(default_factory=dict)  # compiled file and folder names


@lru_cache(maxsize=4)
def _fast_template(root: Path) -> _FastTemplate | None:
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
        bytecode_cache=_bytecode_cache(),
        **envops,
    )
    return _FastTemplate(root, root / subdirectory, suffix, env, tuple(exclude))


def _bytecode_cache() -> Any:
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


def _render_part(tpl: _FastTemplate, part: str, data: dict[str, Any]) -> str:
    if "{" not in part:
        return part
    compiled = tpl.names.get(part)
    if compiled is None:
        compiled = tpl.names[part] = tpl.env.from_string(part)
    rendered: str = compiled.render(**data)
    if rendered and (rendered in {".", "..", _COPIER_ANSWERS_FILE} or "/" in rendered):
        raise _NeedsCopier(f"path part {part!r} renders to {rendered!r}")
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


def _render_fast(tpl: _FastTemplate, data: dict[str, Any], target: Path) -> list[str]:
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
                    raise _NeedsCopier(f"{src_rel} is a symlink")
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
        raise _NeedsCopier(str(exc)) from exc
    return sorted(files)


def render_tree(design: StackDesign, target: Path) -> list[str]:
    """Render into the new directory ``target``: in-process when the template allows it, else
    by copier."""
    tpl = _fast_template(template_dir())
    if tpl is not None:
        try:
            files = _render_fast(tpl, context(design), target)
        except _NeedsCopier:
            shutil.rmtree(target, ignore_errors=True)
        else:
            from mlopsctl.layout import record_base

            return record_base(target, files)  # as render_to does after copier
    return render_to(design, target)


# ---- Atomic output ----------------------------------------------------------------------------


@contextmanager
def _staging(parent: Path, progress: Progress) -> Iterator[Path]:
    """A private directory beside the destination (same filesystem, so renames are atomic),
    removed whatever happens."""
    try:
        with held(progress):  # a signal cannot fall between creating it and arming its removal
            tmp = Path(tempfile.mkdtemp(prefix=TMP_PREFIX, dir=parent))
    except OSError as exc:
        raise _os_error(exc, parent, "creating a working directory in") from None
    try:
        redeliver(progress)
        yield tmp
    finally:
        with held(progress):
            shutil.rmtree(tmp, ignore_errors=True)


def _os_error(exc: OSError, path: Path, doing: str) -> GenerationError:
    reason = exc.strerror or str(exc)
    hint = "check the permissions of the destination and its parent directory"
    if exc.errno == errno.ENOSPC:
        hint = "free some disk space and run the command again"
    elif exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        hint = "choose a destination you can write to, or fix the permissions"
    return GenerationError(f"{doing} {path} failed: {reason}; nothing was changed", hint=hint)


def _resolve_destination(destination: Path) -> Path:
    """Absolute, with symlinks in the parent resolved; the last component is left as given so
    that a destination which is itself a symlink is seen (and refused)."""
    path = destination.absolute()
    if path.name in {"", ".", ".."}:
        return path.resolve()
    return path.parent.resolve() / path.name


def generate(design: StackDesign, destination: Path, *, force: bool = False) -> GenerationResult:
    """Generate the repository at ``destination``, all or nothing.

    A missing destination receives the whole tree by one rename (missing parent directories
    included); an empty one receives its top-level entries. A non-empty destination is refused
    unless ``force``; with ``force`` generated files are swapped in one by one, the originals
    kept aside and put back if anything fails, and no other file is touched. Nothing is written
    outside the destination but a temporary directory beside it, removed before returning; a
    destination that is a symlink, or a generated path through a symlink, is refused. A Ctrl-C
    or SIGTERM during rendering leaves the destination as it was; one that arrives while the
    tree is being moved into place is acted on once the move is complete (``Interrupted``).
    Two runs into one destination take turns: the second sees what the first wrote.
    """
    destination = _resolve_destination(destination)
    _refuse_own_template(destination)
    with _turn(destination) as (anchor, waited):
        return _generate_locked(design, destination, anchor, force=force, waited=waited)


def _refuse_own_template(destination: Path) -> None:
    own = template_dir().resolve()
    target = destination.resolve()
    if target == own or own in target.parents or target in own.parents:
        raise DestinationError(
            f"{destination} holds mlopsctl's own template ({own}); generating there would "
            "overwrite mlopsctl itself",
            hint="choose a directory outside the mlopsctl installation",
        )


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
def _turn(destination: Path) -> Iterator[tuple[Path, bool]]:
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


def _generate_locked(
    design: StackDesign, destination: Path, anchor: Path, *, force: bool, waited: bool
) -> GenerationResult:
    if destination.is_symlink():
        raise DestinationError(
            f"{destination} is a symbolic link",
            hint=f"give the directory it points to ({destination.resolve()}) instead",
        )
    if destination.exists() and not destination.is_dir():
        raise DestinationError(f"{destination} exists and is not a directory")
    is_dir = destination.is_dir()
    existing = is_dir and any(destination.iterdir())
    if existing and not force:
        if waited:
            raise DestinationError(
                f"another mlopsctl run generated into {destination} while this one waited for "
                "it; this run wrote nothing",
                hint="use the repository it generated, or choose a new directory",
            )
        raise DestinationError(
            f"{destination} is not empty",
            hint="choose a new directory, or pass --force to write the generated files into it "
            "(other files are left alone; mlopsctl update is the way to regenerate a project)",
        )
    progress = current()
    try:
        with _staging(anchor, progress) as tmp:
            stage = tmp / "out"
            files = render_tree(design, stage)
            what = f"the {len(files)} generated files are all in place in {destination}"
            if existing:
                _swap_in(stage, destination, files, tmp, progress, what)
            elif is_dir:
                _move_entries(stage, destination, progress, what)
            else:
                _move_in(stage, destination, anchor, tmp, progress, what)
    except OSError as exc:
        raise _os_error(exc, destination, "writing") from None
    finally:
        redeliver(progress)
    if progress.signals:
        raise Interrupted(
            f"interrupted while the repository was being moved into {destination}; "
            f"that step was completed, so {what}",
            hint="check the repository, or remove it and run the command again",
        )
    return GenerationResult(destination=destination, files=tuple(files))


def _move_in(
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


def _move_entries(stage: Path, destination: Path, progress: Progress, what: str) -> None:
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


def _check_targets(destination: Path, files: list[str]) -> None:
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


def _swap_in(
    stage: Path, destination: Path, files: list[str], tmp: Path, progress: Progress, what: str
) -> None:
    """Replace generated files in an existing tree one by one, with a rollback journal."""
    _check_targets(destination, files)
    backup = tmp / "backup"
    replaced: list[str] = []
    created: list[Path] = []
    created_dirs: list[Path] = []
    with held(progress):
        try:
            backup.mkdir()
            for rel in files:
                target = destination / rel
                for parent in reversed(Path(rel).parents):
                    d = destination / parent
                    if not d.exists():
                        d.mkdir()
                        created_dirs.append(d)
                if target.exists() or target.is_symlink():
                    (backup / rel).parent.mkdir(parents=True, exist_ok=True)
                    os.replace(target, backup / rel)
                    replaced.append(rel)
                else:
                    created.append(target)
                os.replace(stage / rel, target)
        except BaseException:
            _roll_back(destination, backup, replaced, created, created_dirs)
            raise
        progress.commit(what)


def _roll_back(
    destination: Path,
    backup: Path,
    replaced: list[str],
    created: list[Path],
    created_dirs: list[Path],
) -> None:
    failed: list[str] = []
    for path in created:
        try:
            path.unlink(missing_ok=True)
        except OSError:
            failed.append(str(path))
    for rel in replaced:
        try:
            os.replace(backup / rel, destination / rel)
        except OSError:
            failed.append(str(destination / rel))
    for d in reversed(created_dirs):
        try:
            d.rmdir()
        except OSError:
            failed.append(str(d))
    if failed:
        # Keep the originals: move the journal next to the destination, never delete it.
        keep = Path(tempfile.mkdtemp(prefix=".mlopsctl-backup-", dir=destination.parent))
        os.replace(backup, keep / "backup")
        raise GenerationError(
            "could not restore " + ", ".join(failed[:5]),
            hint=f"the original files are kept in {keep / 'backup'}",
        )
