"""In-sync predicate: committed files equal what the current ``mlopsctl.yaml`` generates.

The design is rendered in a child process (``python -m mlopsctl.checks.sync ANSWERS OUT``) so that
copier runs on the second core while the other checks run here.
"""

from __future__ import annotations

import difflib
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path

from mlopsctl.checks._engine import Context, Hit, predicate
from mlopsctl.checks._model import CheckSpec


def render_answers(answers: Path, out: Path) -> list[str]:
    """Assess ``answers`` (an ``mlopsctl.yaml``) and render the project into ``out``."""
    from mlopsctl.answers import AnswerSet, build_requirements, fill_defaults, load_answers_file
    from mlopsctl.render import render_to
    from mlopsctl.rules.engine import evaluate

    answer_set = load_answers_file(answers, AnswerSet())
    fill_defaults(answer_set)
    design = evaluate(build_requirements(answer_set, use_defaults=True))
    return render_to(design, out)


def _first_difference(committed: str, generated: str) -> int:
    a, b = committed.splitlines(), generated.splitlines()
    for tag, i1, _i2, _j1, _j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if tag != "equal":
            return min(i1 + 1, max(len(a), 1))
    return max(len(a), 1)


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
    with tempfile.TemporaryDirectory(prefix="mlopsctl-sync-") as tmp:
        out = Path(tmp) / "out"
        proc = subprocess.run(
            [sys.executable, "-m", "mlopsctl.checks.sync", str(answers.path), str(out)],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
            env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
        )
        try:
            result = json.loads(proc.stdout.strip().splitlines()[-1])
        except (ValueError, IndexError):
            detail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
            ctx.note(spec.id, f"{spec.name}: could not render the design: {detail}")
            return
        if "error" in result:
            yield Hit(
                answers.rel,
                None,
                f"the answers do not generate a repository: {result['error']}",
            )
            return
        for rel in result["files"]:
            generated = (out / rel).read_bytes()
            committed = ctx.repo.get(rel)
            if committed is None:
                yield Hit(rel, None, "generated file is missing")
                continue
            try:
                same = committed.path.read_bytes() == generated
            except OSError:
                same = False
            if same:
                continue
            text = committed.text
            line = (
                _first_difference(text, generated.decode("utf-8", "replace"))
                if text is not None
                else None
            )
            yield Hit(rel, line, "differs from what mlopsctl.yaml generates")


def _main(argv: list[str]) -> int:
    from mlopsctl.errors import MlopsctlError

    answers, out = Path(argv[0]), Path(argv[1])
    try:
        files = render_answers(answers, out)
    except MlopsctlError as exc:
        print(json.dumps({"error": exc.message.replace("\n", " ")}))
        return 0
    print(json.dumps({"files": files}))
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
