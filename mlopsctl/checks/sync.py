"""In-sync predicate: committed files equal what the current ``mlopsctl.yaml`` generates.

The design is rendered in a child process (this module's ``_main``, started isolated from the
repository by ``mlopsctl.checks._isolated``) so that rendering runs on the second core while the
other checks run here. Generation is deterministic, so the rendered files are cached per (answers,
tier floor, mlopsctl code and templates) in the user cache directory
(``$XDG_CACHE_HOME/mlopsctl/render``, refused unless private, see ``mlopsctl._cachedir``;
``MLOPSCTL_NO_CACHE=1`` turns the cache off): a repeated run, as in pre-commit, renders nothing.
A cache entry is used only when it has the shape its writer gives it; anything else is rebuilt.
"""

from __future__ import annotations

import contextlib
import difflib
import hashlib
import json
import os
import sys
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from mlopsctl.checks._engine import Context, Hit, predicate
from mlopsctl.checks._model import CheckSpec
from mlopsctl.checks._repo import SourceFile, read_bounded
from mlopsctl.layout import (
    LayoutError,
    State,
    code_digest,
    read_design,
    read_state,
    recorded_floor,
    source_key,
)


def render_answers(answers: Path, out: Path) -> list[str]:
    """Assess ``answers`` (an ``mlopsctl.yaml``) and render the project into ``out``."""
    from mlopsctl._assess import assess
    from mlopsctl.render import render_tree

    design = assess(answers, tier_floor=recorded_floor(answers.parent))
    return render_tree(design, out)


def _first_difference(committed: str, generated: str) -> int:
    a, b = committed.splitlines(), generated.splitlines()
    for tag, i1, _i2, _j1, _j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if tag != "equal":
            return min(i1 + 1, max(len(a), 1))
    return max(len(a), 1)


RENDER_TIME_LIMIT = 300.0  # seconds; MLOPSCTL_CHECK_TIMEOUT overrides it


def _cache_dir() -> Path | None:
    from mlopsctl._cachedir import private_cache_dir

    return private_cache_dir("render")


def cached(
    name: str,
    build: Callable[[], Any],
    *,
    valid: Callable[[Any], bool],
    keep: Callable[[Any], bool] = lambda value: True,
) -> Any:
    """``build()``'s JSON result, cached per mlopsctl code digest (see ``_cache_dir``) when
    ``keep(result)``. A stored entry is used only when ``valid(entry)``: one of another shape
    (damaged, or written by something else) is built again."""
    cache = _cache_dir()
    path = cache / f"{name}-{code_digest()}.json" if cache is not None else None
    if path is not None:
        entry = _read_entry(path)
        if entry is not None and valid(entry):
            return entry
    value = build()
    if path is not None and keep(value):
        _write_atomic(path, json.dumps(value))
    return value


def _read_entry(path: Path) -> Any:
    """The JSON in the cache file ``path``; None when it is missing, not a regular file (a
    symlink or a FIFO is not followed), larger than any entry mlopsctl writes, or not JSON."""
    import stat

    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        with os.fdopen(fd, "rb") as f:
            st = os.fstat(f.fileno())
            if not stat.S_ISREG(st.st_mode) or st.st_size > _ENTRY_LIMIT:
                return None
            return json.loads(f.read(_ENTRY_LIMIT).decode("utf-8"))
    except (OSError, ValueError, RecursionError):
        return None


_ENTRY_LIMIT = 256 * 1024 * 1024


def _write_atomic(path: Path, text: str) -> None:
    try:
        with tempfile.NamedTemporaryFile(
            "w", encoding="utf-8", dir=path.parent, prefix=f".{path.name}.", delete=False
        ) as tmp_file:
            tmp_file.write(text)
        os.replace(tmp_file.name, path)
    except OSError:
        with contextlib.suppress(OSError, UnboundLocalError):
            os.unlink(tmp_file.name)


def _safe_rel(rel: object) -> bool:
    """``rel`` is a relative path inside the project: no absolute path, no ``..``."""
    if not isinstance(rel, str) or not rel or "\0" in rel or rel.startswith("/"):
        return False
    return all(part not in ("", ".", "..") for part in rel.split("/"))


def valid_render_entry(value: object) -> bool:
    """A cached render: ``{"files": {rel: text}}`` or ``{"error": message}``."""
    if not isinstance(value, dict) or len(value) != 1:
        return False
    if "error" in value:
        return isinstance(value["error"], str)
    files = value.get("files")
    return isinstance(files, dict) and all(
        _safe_rel(rel) and isinstance(text, str) for rel, text in files.items()
    )


def _valid_listing(value: object) -> bool:
    """What the rendering child prints: ``{"files": [rel, ...]}`` or ``{"error": message}``."""
    if not isinstance(value, dict) or len(value) != 1:
        return False
    if "error" in value:
        return isinstance(value["error"], str)
    files = value.get("files")
    return isinstance(files, list) and all(_safe_rel(rel) for rel in files)


def _rendered(answers: Path) -> dict[str, Any]:
    """{"files": {rel: text}}, {"error": message} (the answers do not generate), or
    {"crash": detail} / {"timeout": message} (the render did not finish), from the cache or a
    fresh render."""
    from mlopsctl.checks._isolated import python, scratch_dir, time_limit, user_cache_base

    key = source_key(read_bounded(answers) or b"", recorded_floor(answers.parent))
    cache = _cache_dir()
    if cache is not None:
        entry = _read_entry(cache / f"{key}.json")
        if entry is not None and valid_render_entry(entry):
            return dict(entry)
    env = {}
    base = user_cache_base()  # the compiled templates' cache
    if base is not None:
        env["XDG_CACHE_HOME"] = base
    if os.environ.get("MLOPSCTL_NO_CACHE"):
        env["MLOPSCTL_NO_CACHE"] = "1"
    with scratch_dir("mlopsctl-sync-") as tmp:
        out = tmp / "out"
        outcome = python(
            "mlopsctl.checks.sync",
            [os.path.abspath(answers), str(out)],
            tmp,
            limit=time_limit(RENDER_TIME_LIMIT),
            env=env,
        )
        if outcome.timed_out:
            return {"timeout": outcome.timeout_message("rendering mlopsctl.yaml")}
        result = outcome.last_json()
        if not _valid_listing(result):
            return {"crash": outcome.detail()}
        if "files" in result:
            try:
                result["files"] = {
                    rel: (out / rel).read_bytes().decode("utf-8", "surrogateescape")
                    for rel in result["files"]
                }
            except OSError as exc:
                return {"crash": f"{type(exc).__name__}: {exc}"}
    if cache is not None and "files" in result:
        _write_atomic(cache / f"{key}.json", json.dumps(result))
    return dict(result)


@predicate(slow=True)
def generated_in_sync(ctx: Context, spec: CheckSpec) -> Iterable[Hit]:
    answers = ctx.repo.get("mlopsctl.yaml")
    if answers is None or ctx.repo.get(".mlopsctl/state.json") is None:
        ctx.note(
            spec.id,
            "skipped: not a repository mlopsctl generated (no mlopsctl.yaml and "
            ".mlopsctl/state.json)",
        )
        return
    try:  # what generation recorded, read and validated by the one reader of .mlopsctl/
        read_state(ctx.repo.root)
        read_design(ctx.repo.root)
    except LayoutError as exc:
        yield Hit(exc.file, None, exc.message)
        return
    if answers.read_bytes() is None:
        ctx.note(spec.id, f"skipped: mlopsctl.yaml is not read ({answers.unread or 'unreadable'})")
        return
    if _as_last_generated(ctx, answers):
        return
    result = _rendered(answers.path)
    if "crash" in result:
        ctx.note(spec.id, f"could not render the design: {result['crash']}")
        return
    if "timeout" in result:
        yield Hit(answers.rel, None, result["timeout"])
        return
    if "error" in result:
        message = f"the answers do not generate a repository: {result['error']}"
        yield Hit(answers.rel, None, message)
        return
    base = _base_hashes(ctx)
    rendered: dict[str, str] = result["files"]
    for rel, text in sorted(rendered.items()):
        if rel in _NOT_COMPARED:
            continue
        generated = text.encode("utf-8", "surrogateescape")
        committed = ctx.repo.get(rel)
        if base is not None and not rel.startswith(".mlopsctl/"):
            # Generation recorded what it wrote: the file is in sync when the answers still
            # generate exactly that; the user's own edits to it are theirs to keep.
            if base.get(rel) == hashlib.sha256(generated).hexdigest():
                continue
            if committed is None:
                yield Hit(rel, None, "mlopsctl.yaml now generates this file; it is missing")
                continue
            line = _first_difference(committed.text, text) if committed.text is not None else None
            yield Hit(rel, line, "mlopsctl.yaml now generates a different version of this file")
            continue
        if committed is None:
            yield Hit(rel, None, "generated file is missing")
            continue
        if committed.read_bytes() != generated:
            line = _first_difference(committed.text, text) if committed.text is not None else None
            yield Hit(rel, line, "differs from what mlopsctl.yaml generates")
    for rel in sorted(set(base or ()) - set(rendered)):
        if ctx.repo.get(rel) is not None:
            yield Hit(rel, None, "mlopsctl.yaml no longer generates this file")


def _as_last_generated(ctx: Context, answers: SourceFile) -> bool:
    """The answers, the tier floor and mlopsctl itself are those of the last generation, and the
    files mlopsctl keeps in ``.mlopsctl/`` are as it wrote them. Generation is deterministic, so
    it would write again exactly the files ``state.json`` records: in sync, nothing to render."""
    doc = _state(ctx)
    if doc is None or doc.generated is None or _base_hashes(ctx) is None:
        return False
    source, own, floor = doc.source, doc.own_digests(), doc.tier_floor
    if source is None:
        return False
    try:
        if source != source_key(answers.read_bytes() or b"", floor):
            return False
        for rel, digest in own.items():
            f = ctx.repo.get(str(rel))
            raw = f.read_bytes() if f is not None else None
            if raw is None or hashlib.sha256(raw).hexdigest() != digest:
                return False
    except OSError:
        return False
    return True


# mlopsctl.yaml is the source; state.json records versions and hashes, not generated content.
_NOT_COMPARED = {"mlopsctl.yaml", ".mlopsctl/state.json", ".mlopsctl/.gitattributes"}


def _state(ctx: Context) -> State | None:
    """``.mlopsctl/state.json``, validated (``mlopsctl.layout``); None when it is missing or
    malformed (``generated_in_sync`` reports that)."""
    try:
        return read_state(ctx.repo.root)
    except LayoutError:
        return None


def _base_hashes(ctx: Context) -> dict[str, str] | None:
    """SHA-256 of every artifact as last generated (``.mlopsctl/state.json`` generated.files),
    or None when the generation recorded none."""
    state = _state(ctx)
    if state is None or state.generated is None:
        return None
    return state.file_digests()


def _main(argv: list[str]) -> int:
    from mlopsctl.errors import MlopsctlError

    answers, out = Path(argv[0]), Path(argv[1])
    try:
        files = render_answers(answers, out)
    except MlopsctlError as exc:
        print(json.dumps({"error": exc.message.replace("\n", " ")}))
        return 0
    # the pristine copy of the generation (.mlopsctl/base/) repeats the artifacts: leave it out
    print(json.dumps({"files": [f for f in files if not f.startswith(".mlopsctl/base/")]}))
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
