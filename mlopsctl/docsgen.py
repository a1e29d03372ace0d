"""Generate the reference docs in ``docs/`` from the code's own data.

``python -m mlopsctl.docsgen`` rewrites them; ``tests/test_docs.py`` fails when a checked-in copy
is stale. Each entry maps a path under ``docs/`` to a function returning its text.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from importlib import import_module
from pathlib import Path

DOCS: dict[str, str] = {
    "checks.md": "mlopsctl.checks._docs:checks_md",
    "cli.md": "mlopsctl.docsgen:cli_md",
    "questions.md": "mlopsctl.docsgen:questions_md",
    "rehearse.md": "mlopsctl.rehearse._docs:rehearse_md",
    "schemas/answers.schema.json": "mlopsctl.docsgen:answers_schema",
    "rules.md": "mlopsctl.rules.describe:rules_reference_md",
    "schemas/design.schema.json": "mlopsctl.rules.describe:design_schema_json",
}
# Generated files shipped inside the package (paths under ``mlopsctl/``), so that readers such as
# ``validate`` need not build them (building the answers schema imports pydantic).
PACKAGE_DATA: dict[str, str] = {
    "schemas/answers.schema.json": "mlopsctl.docsgen:answers_schema",
}


def _load(target: str) -> Callable[[], str]:
    module, _, name = target.partition(":")
    fn: Callable[[], str] = getattr(import_module(module), name)
    return fn


def render_all() -> dict[str, str]:
    return {path: _load(target)() for path, target in sorted(DOCS.items())}


def render_package_data() -> dict[str, str]:
    return {path: _load(target)() for path, target in sorted(PACKAGE_DATA.items())}


def questions_md() -> str:
    from mlopsctl.questionnaire import questions
    from mlopsctl.requirements import required_questions

    required = set(required_questions())
    lines = [
        "# The questionnaire",
        "",
        "Generated from `mlopsctl/requirements.py` by `make docs`; do not edit by hand.",
        "Answers go in `mlopsctl.yaml` (or any file given to `--answers`) under these keys;",
        "`--set KEY=VALUE` takes the same dotted keys. Its JSON Schema is",
        "[schemas/answers.schema.json](schemas/answers.schema.json).",
        "",
        "At a terminal `mlopsctl init` asks the questions the answers leave open, in this order,",
        "and checks each answer when it is given: against its own constraints, and against every",
        "abort rule whose inputs are all answered (a model server that cannot load the framework",
        "is refused at the question that completes the pair); a refused answer is asked again",
        "with the reason. Questions that do not apply are not asked, and listed with the reason:",
        "a `batch` target is not asked for `rps`, `latency_ms`, `concurrent_users` or",
        "`model_server`, an `edge` or `embedded` one not for `model_server`. `?` at a prompt",
        "shows the question's help. Choices are picked with the arrow keys or by typing to",
        "filter; with `TERM=dumb`, when standard input or output is not a terminal, or with",
        "`MLOPSCTL_PLAIN_PROMPTS=1` they are listed and typed by number or name (a choice that is",
        "itself a number, as the maturity levels, is typed as that number). Ctrl-C or Ctrl-D",
        "stops (exit 130, nothing written); the answers given so far are kept in the user's",
        "cache (`$XDG_CACHE_HOME/mlopsctl/questionnaire`, private; `MLOPSCTL_NO_CACHE=1` keeps",
        "none) and the next `mlopsctl init` for the same directory offers them.",
        "",
        "| key | question | allowed | default | required without --defaults |",
        "| --- | --- | --- | --- | --- |",
    ]
    for q in questions():
        allowed = ", ".join(f"`{c}`" for c in q.choices) if q.choices else q.kind
        if q.optional:
            allowed += " (optional)"
        default = "-" if q.default is None else f"`{json.dumps(q.default)}`"
        top = q.key.split(".")[0]
        req = "yes" if top in required and "." not in q.key else ""
        lines.append(f"| `{q.key}` | {q.prompt}: {q.help} | {allowed} | {default} | {req} |")
    lines.extend(_measured_md())
    return "\n".join(lines) + "\n"


def _measured_md() -> list[str]:
    """The ``measured`` section of the answers file: no question, what a load test found."""
    from mlopsctl.measured import MeasuredCapacity
    from mlopsctl.requirements import Requirements

    lines = [
        "",
        "## `measured`: one replica's capacity, measured",
        "",
        " ".join((Requirements.model_fields["measured"].description or "").split()),
        "With it, `sizing.per_replica_rps` (rule SIZ003) is the measured figure, and the",
        "replicas, the autoscaler's concurrency target (70 % of the measured requests in",
        "flight, SIZ004) and the capacity line of `docs/decisions.md` say where it comes from",
        "(`measured 2026-12-02 on 1 core: 180 rps at p95 41 ms`); the serving alerts gain",
        "`ModelReplicaSaturation` at 80 % of the measured capacity (SIZ018, ALR004), which",
        "without a measurement does not exist. A section that is not valid is refused naming",
        "the key (exit 2).",
        "",
        "| key | meaning | required |",
        "| --- | --- | --- |",
    ]
    for name, info in MeasuredCapacity.model_fields.items():
        required = "yes" if info.is_required() else ""
        lines.append(f"| `measured.{name}` | {info.description} | {required} |")
    return lines


def cli_md() -> str:
    """Every command's --help, as the CLI itself prints it."""
    from typing import Any

    import typer

    from mlopsctl.cli.app import app

    root = typer.main.get_command(app)
    lines = [
        "# Command-line reference",
        "",
        "Generated from the CLI's own help by `make docs`; do not edit by hand.",
        "",
    ]

    # Typer carries its own copy of click, so commands are handled by what they can do.
    def walk(cmd: Any, path: list[str], parent: Any) -> None:
        settings = {**cmd.context_settings, "max_content_width": 100, "terminal_width": 100}
        ctx = cmd.context_class(cmd, info_name=path[-1], parent=parent, **settings)
        title = " ".join(path)
        lines.extend([f"## `{title}`", "", "```text", cmd.get_help(ctx).rstrip(), "```", ""])
        if hasattr(cmd, "list_commands"):
            for name in sorted(cmd.list_commands(ctx)):
                sub = cmd.get_command(ctx, name)
                if sub is not None and not sub.hidden:
                    walk(sub, [*path, name], ctx)

    walk(root, ["mlopsctl"], None)
    return "\n".join(lines).rstrip() + "\n"


def answers_schema() -> str:
    from mlopsctl.requirements import answers_json_schema

    return json.dumps(answers_json_schema(), indent=2, sort_keys=True) + "\n"


def main(argv: list[str] | None = None) -> int:
    root = Path(argv[0]) if argv else Path(__file__).resolve().parent.parent / "docs"
    outputs = [(root, render_all())]
    if not argv:
        outputs.append((Path(__file__).resolve().parent, render_package_data()))
    for base, texts in outputs:
        for rel, text in texts.items():
            path = base / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
