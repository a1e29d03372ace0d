"""In-sync predicate: committed files equal what the current ``mlopsctl.yaml`` generates.

The design is rendered in a child process (``python -m mlopsctl.checks.sync ANSWERS OUT``) so that
copier runs on the second core while the other checks run here. Generation is deterministic, so
the rendered files are cached per (answers, mlopsctl code, templates) in the user cache directory
(``$XDG_CACHE_HOME/mlopsctl/render``; ``MLOPSCTL_NO_CACHE=1`` turns the cache off): a repeated
run, as in pre-commit, renders nothing.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from mlopsctl.checks._engine import Context, Hit, predicate
from mlopsctl.checks._model import CheckSpec
from mlopsctl.checks._repo import SourceFile, read_bounded
from mlopsctl.state import code_digest, read_state, source_key


def render_answers(answers: Path, out: Path) -> list[str]:
    """Assess ``answers`` (an ``mlopsctl.yaml``) and render the project into ``out``."""
    from mlopsctl.answers import AnswerSet, build_requirements, fill_defaults, load_answers_file
    from mlopsctl.render import apply_recorded_floor, render_tree
    from mlopsctl.rules.engine import evaluate

    answer_set = load_answers_file(answers, AnswerSet())
    fill_defaults(answer_set)
    design = evaluate(build_requirements(answer_set, use_defaults=True))
    design = apply_recorded_floor(design, read_state(answers.parent))
    return render_tree(design, out)


def _first_difference(committed: str, generated: str) -> int:
    a, b = committed.splitlines(), generated.splitlines()
    for tag, i1, _i2, _j1, _j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if tag != "equal":
            return min(i1 + 1, max(len(a), 1))
    return max(len(a), 1)


def _cache_dir() -> Path | None:
    if os.environ.get("MLOPSCTL_NO_CACHE"):
        return None
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "mlopsctl" / "render"


def cached(
    name: str, build: Callable[[], Any], keep: Callable[[Any], bool] = lambda value: True
) -> Any:
    """``build()``'s JSON result, cached per mlopsctl code digest (see ``_cache_dir``) when
    ``keep(result)``."""
    cache = _cache_dir()
    path = cache / f"{name}-{code_digest()}.json" if cache is not None else None
    if path is not None and path.is_file():
        try:
            return json.loads(path.read_text("utf-8"))
        except (OSError, ValueError):
            pass
    value = build()
    if path is not None and keep(value):
        _write_atomic(path, json.dumps(value))
    return value


def _write_atomic(path: Path, text: str) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp_file = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp_file.write_text(text, encoding="utf-8")
        os.replace(tmp_file, path)
    except OSError:
        pass


def _rendered(answers: Path) -> dict[str, Any]:
    """{"files": {rel: text}} or {"error": message}, from the cache or a fresh render."""
    floor = (read_state(answers.parent) or {}).get("tier_floor")
    key = source_key(read_bounded(answers) or b"", floor if isinstance(floor, str) else None)
    cache = _cache_dir()
    if cache is not None and (cache / f"{key}.json").is_file():
        try:
            cached: dict[str, Any] = json.loads((cache / f"{key}.json").read_text("utf-8"))
            return cached
        except (OSError, ValueError):
            pass
    with tempfile.TemporaryDirectory(prefix="mlopsctl-sync-") as tmp:
        out = Path(tmp) / "out"
        proc = subprocess.run(
            [sys.executable, "-m", "mlopsctl.checks.sync", str(answers), str(out)],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
            env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
        )
        try:
            result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
        except (ValueError, IndexError):
            detail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
            return {"crash": detail}
        if "files" in result:
            result["files"] = {
                rel: (out / rel).read_bytes().decode("utf-8", "surrogateescape")
                for rel in result["files"]
            }
    if cache is not None and "files" in result:
        _write_atomic(cache / f"{key}.json", json.dumps(result))
    return result


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
    if answers.read_bytes() is None:
        ctx.note(spec.id, f"skipped: mlopsctl.yaml is not read ({answers.unread or 'unreadable'})")
        return
    if _as_last_generated(ctx, answers):
        return
    result = _rendered(answers.path)
    if "crash" in result:
        ctx.note(spec.id, f"could not render the design: {result['crash']}")
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
    generated = doc.get("generated")
    if not isinstance(generated, dict) or _base_hashes(ctx) is None:
        return False
    source, own, floor = generated.get("source"), generated.get("own_files"), doc.get("tier_floor")
    if not isinstance(source, str) or not isinstance(own, dict):
        return False
    try:
        if source != source_key(
            answers.read_bytes() or b"", floor if isinstance(floor, str) else None
        ):
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


def _state(ctx: Context) -> dict[str, Any]:
    """``.mlopsctl/state.json`` as data; empty when it is missing or not a mapping."""
    state = ctx.repo.get(".mlopsctl/state.json")
    doc = state.docs[0] if state is not None and state.docs else None
    return doc if isinstance(doc, dict) else {}


def _base_hashes(ctx: Context) -> dict[str, str] | None:
    """SHA-256 of every artifact as last generated (``.mlopsctl/state.json`` generated.files),
    or None when the generation recorded none."""
    generated = _state(ctx).get("generated")
    files = generated.get("files") if isinstance(generated, dict) else None
    if isinstance(files, dict) and all(isinstance(v, str) for v in files.values()):
        return {str(k): v for k, v in files.items()}
    return None


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
