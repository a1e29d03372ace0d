"""Governance predicates: the gates production requires and specific thresholds."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import Any

from mlopsctl.checks._engine import Context, Hit, predicate
from mlopsctl.checks._model import CheckSpec, KeyPath
from mlopsctl.checks._pods import _get, pods
from mlopsctl.checks._repo import KubeObject


def _docs_with_heading(ctx: Context, words: list[str]) -> bool:
    alternatives = "|".join(re.escape(w) for w in words)
    atx = rf"^#{{1,6}}\s.*({alternatives})"  # "## Rollback"
    setext = rf"^.*({alternatives}).*\n[=-]{{3,}}\s*$"  # "Rollback" underlined
    pattern = re.compile(f"{atx}|{setext}", re.IGNORECASE | re.MULTILINE)
    return any(pattern.search(f.text or "") for f in ctx.repo.markdown_files())


@predicate()
def rollback_procedure(ctx: Context, spec: CheckSpec) -> Iterable[Hit]:
    if not ctx.production(spec):
        return
    if not _docs_with_heading(ctx, spec.parameters.get("headings", ["rollback", "roll back"])):
        yield Hit(
            ".",
            None,
            "no runbook with a rollback section (a Markdown heading naming rollback)",
        )


def _environment_name(job: Any) -> str:
    env = job.get("environment") if isinstance(job, dict) else None
    if isinstance(env, dict):
        env = env.get("name")
    return str(env) if env is not None else ""


# A Jenkins ``input`` step, in any of Groovy's call spellings: ``input(...)``, ``input { }``
# (declarative), ``input message: '...'`` and ``input 'Deploy?'``.
_JENKINS_INPUT = re.compile(r"""\binput\b\s*(\(|\{|message\s*:|['"])""")


@predicate()
def approval_gate(ctx: Context, spec: CheckSpec) -> Iterable[Hit]:
    if not ctx.production(spec):
        return
    pattern = re.compile(spec.parameters.get("environment_pattern", "prod"), re.IGNORECASE)
    from mlopsctl.checks.ci import workflow_files

    ci_files = [f for f in workflow_files(ctx) if f.docs]
    gitlab = ctx.repo.get(".gitlab-ci.yml")
    jenkins = ctx.repo.get("Jenkinsfile")
    for f in ci_files:
        jobs = f.docs[0].get("jobs") if isinstance(f.docs[0], dict) else None
        if isinstance(jobs, dict) and any(
            pattern.search(_environment_name(j)) for j in jobs.values()
        ):
            return
    if gitlab is not None and isinstance(gitlab.docs[:1] and gitlab.docs[0], dict):
        for job in gitlab.docs[0].values():
            if isinstance(job, dict) and _manual(job) and pattern.search(_environment_name(job)):
                return
    if jenkins is not None and _JENKINS_INPUT.search(jenkins.text or ""):
        return
    where = ci_files[0].rel if ci_files else (gitlab.rel if gitlab else ".")
    yield Hit(
        where,
        None,
        "no production deployment job behind a manual approval (a GitHub Actions job with a "
        "protected `environment: production`, a GitLab `when: manual` job, or a Jenkins `input`)",
    )


def _manual(job: dict[Any, Any]) -> bool:
    """A GitLab job that runs only when someone starts it: ``when: manual``, or rules that each
    make it manual or leave it out."""
    if job.get("when") == "manual":
        return True
    rules = job.get("rules")
    whens = [r.get("when") for r in rules if isinstance(r, dict)] if isinstance(rules, list) else []
    return "manual" in whens and all(w in ("manual", "never") for w in whens)


@predicate()
def model_card(ctx: Context, spec: CheckSpec) -> Iterable[Hit]:
    if not ctx.production(spec):
        return
    pattern = re.compile(r"model[-_ ]?card", re.IGNORECASE)
    if not any(pattern.search(f.name) for f in ctx.repo.files):
        yield Hit(".", None, "no model card (a file named like MODEL_CARD.md)")


def _rollout_driver(ctx: Context) -> bool:
    """Code or a CI workflow (not a manifest) that sets an InferenceService's
    canaryTrafficPercent: the rollout is driven step by step at deploy time."""
    for f in ctx.repo.files:
        driver = f.suffix in {".py", ".sh"} or f.rel.startswith(".github/workflows/")
        if driver and "canaryTrafficPercent" in (f.text or ""):
            return True
    return False


def _runs_tracking_server(o: KubeObject) -> bool:
    """A Deployment of the MLflow tracking server (``mlflow server``), which serves no model."""
    for pod, _, _ in pods(o):
        for c in pod.get("containers") or []:
            if not isinstance(c, dict):
                continue
            words = [*(c.get("command") or []), *(c.get("args") or [])]
            if re.search(r"\bmlflow (server|ui)\b", " ".join(str(w) for w in words)):
                return True
    return False


def _canary_track(o: KubeObject) -> bool:
    """A Deployment whose pods carry a ``track: canary`` label (or ``<prefix>/track``): the
    Kubernetes canary pattern of a stable and a canary Deployment behind one Service."""
    labels = _get(o.data, ("spec", "template", "metadata", "labels"))
    return isinstance(labels, dict) and any(
        str(k).rpartition("/")[2] == "track" and v == "canary" for k, v in labels.items()
    )


def _shadow(o: KubeObject) -> bool:
    """A shadow service (label ``mlopsctl.dev/role: shadow``): it gets a copy of live requests
    and its answers never reach users, so no rollout applies to it."""
    labels = _get(o.data, ("metadata", "labels"))
    return isinstance(labels, dict) and labels.get("mlopsctl.dev/role") == "shadow"


@predicate()
def progressive_rollout(ctx: Context, spec: CheckSpec) -> Iterable[Hit]:
    serving = ctx.repo.objects("InferenceService", "Deployment", "Rollout", "Canary")
    serving = [o for o in serving if not _shadow(o)]
    serving = [o for o in serving if not (o.kind == "Deployment" and _runs_tracking_server(o))]
    isvcs = [o for o in serving if o.kind == "InferenceService"]
    deployments = [o for o in serving if o.kind == "Deployment"]
    if not isvcs and not deployments:
        return
    if not ctx.production(spec):
        return
    if any(o.kind in {"Rollout", "Canary"} for o in serving):
        return  # Argo Rollouts or Flagger drive the rollout
    if any(_canary_track(o) for o in deployments):
        return  # stable and canary Deployments behind one Service
    if isvcs and _rollout_driver(ctx):
        return  # a script or CI step sets canaryTrafficPercent step by step
    for o in isvcs:
        pct = _get(o.data, ("spec", "predictor", "canaryTrafficPercent"))
        if not isinstance(pct, int) or not 0 < pct < 100:
            yield Hit(
                o.file.rel,
                o.line("spec", "predictor"),
                f"{o.label()}: no canaryTrafficPercent between 1 and 99 for production rollouts",
            )
    if not isvcs:
        d = deployments[0]
        yield Hit(
            d.file.rel,
            d.line("kind"),
            "production serving without a canary: add an InferenceService canary, an Argo "
            "Rollouts Rollout or a Flagger Canary",
        )


# --- thresholds ---------------------------------------------------------------------------------

_PLACEHOLDER = re.compile(
    r"(\bTODO\b|\bTBD\b|\bFIXME\b|\bCHANGE_?ME\b|\bXXX\b|<[^<>=\s]+>|\$\{[^}]*\}|__\w+__)",
    re.IGNORECASE,
)
_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?%?$")


def _threshold_values(node: Any, path: KeyPath = ()) -> Iterator[tuple[KeyPath, Any, bool]]:
    """(path, value, direct) for scalars under keys naming a threshold. ``direct`` when the key
    itself names the threshold (``psi_threshold: 0.2``); nested values (Grafana's
    ``thresholds.steps[].value``, where null means minus infinity) only count as placeholders."""
    if isinstance(node, dict):
        for k, v in node.items():
            p = (*path, str(k))
            if re.search(r"threshold", str(k), re.IGNORECASE):
                if isinstance(v, dict | list):
                    for sub, value in _scalars(v, p):
                        yield sub, value, False
                else:
                    yield p, v, True
            elif isinstance(v, dict | list):
                yield from _threshold_values(v, p)
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _threshold_values(v, (*path, i))


def _scalars(node: Any, path: KeyPath) -> Iterator[tuple[KeyPath, Any]]:
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _scalars(v, (*path, str(k)))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _scalars(v, (*path, i))
    else:
        yield path, node


def _specific(value: Any, direct: bool) -> bool:
    if isinstance(value, str) and _PLACEHOLDER.search(value):
        return False
    if not direct:
        return True
    if isinstance(value, bool) or value is None:
        return False
    if isinstance(value, int | float):
        return True
    return isinstance(value, str) and bool(_NUMBER.match(value.strip()))


@predicate()
def thresholds_specific(ctx: Context, spec: CheckSpec) -> Iterable[Hit]:
    from mlopsctl.checks.prometheus import rule_groups

    for f in ctx.repo.data_files():
        if f.rel.startswith(".mlopsctl/") or "schema" in f.name:
            continue  # mlopsctl's own state and JSON Schemas describe thresholds, not set them
        for i, doc in enumerate(f.docs):
            for path, value, direct in _threshold_values(doc):
                if not _specific(value, direct):
                    yield Hit(
                        f.rel,
                        f.line_of(i, path),
                        f"threshold {'.'.join(map(str, path))} is {value!r}, not a number",
                    )
    for f, doc, base, groups in rule_groups(ctx):
        for gi, g in enumerate(groups.get("groups") or []):
            for ri, r in enumerate((g or {}).get("rules") or [] if isinstance(g, dict) else []):
                expr = r.get("expr") if isinstance(r, dict) else None
                if isinstance(expr, str) and _PLACEHOLDER.search(expr):
                    yield Hit(
                        f.rel,
                        f.line_of(doc, (*base, "groups", gi, "rules", ri, "expr")),
                        f"rule expression has a placeholder {_PLACEHOLDER.search(expr).group(0)!r}",  # type: ignore[union-attr]
                    )
