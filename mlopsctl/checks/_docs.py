"""``docs/checks.md``, generated from the check catalog (``make docs``)."""

from __future__ import annotations

from mlopsctl.checks._model import load_catalog
from mlopsctl.checks._repo import LIMITS

CATEGORIES = {
    "syntax": "Syntax",
    "schema": "Schemas",
    "policy": "Policy",
    "consistency": "Consistency",
    "sync": "In sync with mlopsctl.yaml",
}


def checks_md() -> str:
    specs = load_catalog()
    lines = [
        "# Checks of `mlopsctl validate`",
        "",
        "Generated from `mlopsctl/checks/catalog/` by `make docs`; do not edit by hand.",
        "",
        "`mlopsctl validate [DIR]` prints `path:line  CHECK-ID  message  (remediation)`; "
        "`--format json` and `--format sarif` (SARIF 2.1.0) are for machines. Exit codes: 0 no "
        "findings, 1 findings, 2 usage error. `--select`/`--ignore` take ids (`MLV203`), names "
        "(`no-privilege-escalation`) or id prefixes (`MLV2`). A file can silence a check for "
        "itself with a comment that gives a reason (a suppression without one is finding "
        "MLV004):",
        "",
        "```yaml",
        "# mlopsctl: ignore[MLV209] batch worker, no HTTP endpoint to probe",
        "```",
        "",
        "Checks that need the design (`.mlopsctl/design.json`) or a governance level are skipped "
        "with a note on repositories mlopsctl did not generate; so are checks whose tool is "
        "missing (promtool, kfp, the schemas of `kubernetes-validate` and `check-jsonschema`: "
        "`pip install 'mlopsctl[validate]'`).",
        "",
        "A repository is untrusted input: `validate` runs none of its code, with the one "
        "exception of compiling Kubeflow pipelines ([MLV107](#mlv107-kfp-pipeline-compiles)). "
        "Everything it starts (the rendering of MLV401, the pipeline compilation, promtool) "
        "runs in a scratch working directory with an environment of only `PATH` (its absolute "
        "entries), `HOME` and `TMPDIR`, in a session of its own, and Python children run as "
        "`python -I` (the current directory, the user site and `PYTHON*` variables such as "
        "`PYTHONPATH` and `PYTHONSTARTUP` do not reach them). Each has a time limit (rendering "
        "and compiling 300 s, promtool 120 s; `MLOPSCTL_CHECK_TIMEOUT=SECONDS` sets all of "
        "them): when it runs out, the child and whatever it started are stopped and the check "
        "reports a finding. Results are cached in `$XDG_CACHE_HOME/mlopsctl/render` "
        "(`~/.cache` without it; `MLOPSCTL_NO_CACHE=1` turns caching off); a cache directory "
        "that is not the user's own, or that group or others can write to, is not used. Run it "
        "as the `mlopsctl` command (as the pre-commit hook does): `python -m mlopsctl` started "
        "inside a repository lets Python itself import that repository's modules before "
        "mlopsctl runs.",
        "",
        "## What validate reads",
        "",
        "The repository is untrusted input (a pull request nobody vetted): validate reads it "
        "within these limits, so that no file can keep it busy for minutes or exhaust memory.",
        "",
        "| limit | value |",
        "| --- | --- |",
        *(f"| {what} | {value} |" for what, value in LIMITS),
        "",
        "A YAML or JSON file past a limit is not parsed and gets an MLV001 finding naming the "
        "limit; so does one that YAML aliases make refer to itself. YAML aliases are expanded in "
        'the count of values, so an entity-expansion ("billion laughs") file is refused before '
        "anything is built from it. Paths that are not regular files (a FIFO, a device such as "
        "`/dev/zero`, a socket) and symlinks that lead outside the repository are never opened: "
        "an MLV001 finding for a YAML or JSON file, a note for any other file. Other files "
        "larger than the limit per file are left out silently, like binary files. Past the "
        "limits for the whole repository, the files after the limit get the finding.",
        "",
        "## Checks",
        "",
        "| id | name | category | title |",
        "| --- | --- | --- | --- |",
    ]
    for s in specs:
        lines.append(
            f"| [{s.id}](#{_anchor(s.id, s.name)}) | `{s.name}` | {s.category} | {s.title} |"
        )
    for cat, heading in CATEGORIES.items():
        group = [s for s in specs if s.category == cat]
        if not group:
            continue
        lines += ["", f"## {heading}"]
        for s in group:
            lines += [
                "",
                f"### {s.id} {s.name}",
                "",
                f"**{s.title}.** Severity: {s.severity}.",
                "",
                f"*Why:* {s.rationale}",
                "",
                f"*Fix:* {s.remediation}",
                "",
                "*References:* " + "; ".join(f"[{r.title}]({r.url})" for r in s.references),
            ]
            params = {k: v for k, v in s.parameters.items() if k != "runtime_metrics"}
            if params:
                lines += [
                    "",
                    "*Parameters:* " + ", ".join(f"`{k}` = `{v}`" for k, v in params.items()),
                ]
            metrics = s.parameters.get("runtime_metrics")
            if isinstance(metrics, dict):
                lines += ["", "*Metrics known to be exported by serving runtimes:*", ""]
                for group_name, names in metrics.items():
                    lines.append(f"- {group_name}: " + ", ".join(f"`{m}`" for m in names))
    return "\n".join(lines) + "\n"


def _anchor(check_id: str, name: str) -> str:
    return f"{check_id.lower()}-{name}"
