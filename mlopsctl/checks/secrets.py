"""Secrets predicates: no literal credentials in manifests, CI files and text."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import Any

from mlopsctl.checks._engine import Context, Hit, predicate
from mlopsctl.checks._model import CheckSpec, KeyPath
from mlopsctl.checks._pods import KSERVE_MODEL_KEYS, pods
from mlopsctl.checks._repo import KubeObject

_SECRET_NAME = re.compile(
    r"(PASSWORD|PASSWD|SECRET|TOKEN|API_?KEY|ACCESS_?KEY|PRIVATE_?KEY|CREDENTIALS?)", re.I
)
_REFERENCE = re.compile(r"^\s*(\$\{[^}]+\}|\$\([^)]+\)|\$[A-Za-z_][A-Za-z0-9_]*|<[^>]*>)?\s*$")
_AWS_KEY = re.compile(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b")
_DATABRICKS = re.compile(r"\bdapi[0-9a-f]{32}\b")
_GH_TOKEN = re.compile(r"\b(ghp|gho|ghs|ghu)_[A-Za-z0-9]{36}\b")
_PRIVATE_KEY = re.compile(r"-----BEGIN ([A-Z]+ )?PRIVATE KEY-----")
# scheme://user:password@host -- the password runs to the last '@' before the host, so a
# password containing '@' is caught whole.
_URL_PASSWORD = re.compile(
    r"\b[a-zA-Z][a-zA-Z0-9+.-]*://(?P<user>[^\s:/@'\"]+):(?P<pw>[^\s'\"]+)@(?P<host>[^\s@/'\"]+)"
)
_TEXT_SUFFIXES = {
    ".yaml", ".yml", ".json", ".py", ".env", ".ini", ".cfg", ".toml", ".sh", ".conf",
    ".properties", ".tf", ".tfvars", ".txt", ".md",
}  # fmt: skip
_ENV_LINE = re.compile(r"^\s*(export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*?)\s*$")


def _is_reference(value: str) -> bool:
    v = value.strip().strip("'\"")
    return (
        v == ""
        or bool(_REFERENCE.match(v))
        or v.startswith(("${", "$(", "{{", "<", "arn:", "projects/", "vault:"))
        or v.lower() in {"changeme", "none", "null", "redacted", "***", "xxx"}
    )


def _password_literal(pw: str) -> bool:
    placeholders = {"password", "pass", "passwd", "pwd", "secret", "changeme"}
    return (
        not _is_reference(pw)
        and not re.fullmatch(r"\*+|x+|\.\.\.", pw)
        and pw.lower() not in placeholders
    )


def _line_secrets(text: str) -> Iterator[tuple[int, str]]:
    for n, line in enumerate(text.splitlines(), 1):
        if _AWS_KEY.search(line):
            yield n, "AWS access key id"
        if _DATABRICKS.search(line):
            yield n, "Databricks token"
        if _GH_TOKEN.search(line):
            yield n, "GitHub token"
        if _PRIVATE_KEY.search(line):
            yield n, "private key"
        for m in _URL_PASSWORD.finditer(line):
            if _password_literal(m.group("pw")):
                yield n, f"password in connection string for {m.group('host')}"


def _env_literals(obj: KubeObject, pod: dict[str, Any], path: KeyPath) -> Iterator[Hit]:
    for key in ("containers", "initContainers"):
        for i, c in enumerate(pod.get(key) or []):
            if not isinstance(c, dict):
                continue
            for j, env in enumerate(c.get("env") or []):
                if not isinstance(env, dict) or "value" not in env:
                    continue
                name, value = str(env.get("name", "")), env.get("value")
                if (
                    _SECRET_NAME.search(name)
                    and isinstance(value, str | int)
                    and not _is_reference(str(value))
                ):
                    yield Hit(
                        obj.file.rel,
                        obj.line(*path, key, i, "env", j, "value"),
                        f"{obj.label()}: env {name} has a literal value; "
                        "use valueFrom.secretKeyRef",
                    )


@predicate()
def literal_secret(ctx: Context, spec: CheckSpec) -> Iterable[Hit]:
    seen: set[tuple[str, int | None]] = set()

    def once(h: Hit) -> Iterator[Hit]:
        if (h.path, h.line) not in seen:
            seen.add((h.path, h.line))
            yield h

    for obj in ctx.repo.kube_objects:
        if obj.kind == "Secret" and (obj.data.get("data") or obj.data.get("stringData")):
            yield from once(
                Hit(obj.file.rel, obj.line("kind"), f"{obj.label()}: Secret with literal data")
            )
        for pod, path, _ in pods(obj):
            for h in _env_literals(obj, pod, path):
                yield from once(h)
            for key in KSERVE_MODEL_KEYS:
                if isinstance(pod.get(key), dict):
                    for h in _env_literals(obj, {"containers": [pod[key]]}, path):
                        yield from once(Hit(h.path, obj.line(*path, key, "env"), h.message))
    for f in ctx.repo.files:
        name = f.name
        is_env = name == ".env" or (name.startswith(".env.") and not name.endswith(".example"))
        if not (is_env or f.suffix in _TEXT_SUFFIXES) or f.text is None:
            continue
        for n, what in _line_secrets(f.text):
            yield from once(Hit(f.rel, n, f"literal {what}"))
        if is_env:
            for n, line in enumerate(f.text.splitlines(), 1):
                m = _ENV_LINE.match(line)
                if m and _SECRET_NAME.search(m.group(2)) and not _is_reference(m.group(3)):
                    yield from once(Hit(f.rel, n, f"{m.group(2)} has a literal value"))
        elif f.suffix == ".py":
            for m in re.finditer(
                r"^\s*(?:os\.environ\[\s*['\"])?([A-Z_]*(?:MLFLOW_TRACKING_(?:TOKEN|PASSWORD)|"
                r"PASSWORD|SECRET_KEY|API_KEY))['\"]?\]?\s*=\s*['\"]([^'\"]+)['\"]",
                f.text,
                re.MULTILINE,
            ):
                if not _is_reference(m.group(2)):
                    lineno = f.line_at(m.start())
                    yield from once(Hit(f.rel, lineno, f"{m.group(1)} set to a literal value"))
        elif (
            (f.is_yaml or f.is_json)
            and f.docs
            and not any(isinstance(d, dict) and "kind" in d for d in f.docs)
        ):
            for key, value in _secret_keys(f.docs):
                if _is_reference(value):
                    continue
                at = f.find_line(value) or f.find_line(key)
                yield from once(Hit(f.rel, at, f"{key} has a literal value"))


def _secret_keys(node: Any, key: str = "") -> Iterator[tuple[str, str]]:
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _secret_keys(v, str(k))
    elif isinstance(node, list):
        for v in node:
            yield from _secret_keys(v, key)
    elif (
        isinstance(node, str)
        and key
        and re.search(r"(password|passwd|secret|token|api_?key|access_?key)$", key, re.I)
        and not key.lower().endswith(("_ref", "_env", "secretname", "secret_name"))
    ):
        yield key, node
