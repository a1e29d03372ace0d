"""What mlopsctl runs and reads stays contained: templates inside the package, no copier
tasks, migrations or extensions (so never --trust), no shell, and a fast --help that loads
neither copier nor the templates nor the rules."""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import mlopsctl
from mlopsctl.render import template_dir
from tests.conftest import installed_wheel

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = Path(mlopsctl.__file__).resolve().parent


def test_the_template_needs_no_trust() -> None:
    config = yaml.safe_load((template_dir() / "copier.yml").read_text(encoding="utf-8"))
    for key in ("_tasks", "_migrations", "_jinja_extensions", "_external_data"):
        assert key not in config, f"copier.yml must not use {key}"
    questions = [k for k in config if not k.startswith("_")]
    assert questions == [], "the template asks nothing: mlopsctl passes every value as data"


def test_no_template_file_is_a_symlink_or_escapes_the_template() -> None:
    root = template_dir().resolve()
    for path in template_dir().rglob("*"):
        assert not path.is_symlink(), path
        assert path.resolve().is_relative_to(root)


# ---- No shell, user strings after "--" ----

_SPAWNERS = {
    ("subprocess", "run"),
    ("subprocess", "Popen"),
    ("subprocess", "call"),
    ("subprocess", "check_call"),
    ("subprocess", "check_output"),
    ("subprocess", "getoutput"),
    ("subprocess", "getstatusoutput"),
    ("os", "system"),
    ("os", "popen"),
    ("os", "execv"),
    ("os", "execvp"),
    ("os", "execl"),
    ("os", "execlp"),
    ("os", "spawnv"),
    ("os", "spawnl"),
    ("os", "posix_spawn"),
    ("os", "posix_spawnp"),
    ("asyncio", "create_subprocess_shell"),
    ("asyncio", "create_subprocess_exec"),
}
_SHELLS = {
    ("subprocess", "getoutput"),
    ("subprocess", "getstatusoutput"),
    ("os", "system"),
    ("os", "popen"),
    ("asyncio", "create_subprocess_shell"),
}


def _safe_before_dashes(element: ast.expr, previous: ast.expr | None) -> bool:
    """A variable that cannot be read as an option: the value of the option just before it,
    or an f-string that starts with fixed text other than '-'."""
    if (
        isinstance(previous, ast.Constant)
        and isinstance(previous.value, str)
        and previous.value.startswith("-")
        and previous.value != "--"
        and "=" not in previous.value
    ):
        return True
    if isinstance(element, ast.JoinedStr) and element.values:
        head = element.values[0]
        return (
            isinstance(head, ast.Constant)
            and isinstance(head.value, str)
            and bool(head.value)
            and not head.value.startswith("-")
        )
    return False


def _runs_python_code(elts: list[ast.expr]) -> bool:
    """``[sys.executable, *constant interpreter flags, -c CODE | -m MODULE | script, ...]``:
    Python stops reading its own options there, so the rest is that program's argv."""
    first = elts[0] if elts else None
    is_python = (
        isinstance(first, ast.Attribute)
        and isinstance(first.value, ast.Name)
        and (first.value.id, first.attr) == ("sys", "executable")
    )
    if not is_python:
        return False
    i = 1
    while i < len(elts) and isinstance(elts[i], ast.Constant):
        value = elts[i].value  # type: ignore[attr-defined]
        if value in {"-c", "-m"}:
            return i + 1 < len(elts)
        if not (isinstance(value, str) and value.startswith("-")):
            return False
        i += 2 if value in {"-X", "-W"} else 1  # the flag's own value
    # a script path computed by mlopsctl itself (a call such as str(Path(__file__)))
    return i < len(elts) and isinstance(elts[i], ast.Call)


def _list_problems(args: ast.expr | None, params: set[str], where: str) -> list[str]:
    """The rules for one command list; ``*param`` forwards a wrapper's list (checked at the
    wrapper's call sites instead)."""
    if not isinstance(args, ast.List | ast.Tuple):
        return [f"{where}: the command must be a literal list"]
    if _runs_python_code(args.elts):
        return []  # everything after `python -c CODE` / `-m MODULE` is that program's argv
    seen_dashes = False
    previous: ast.expr | None = None
    for element in args.elts[1:]:
        if isinstance(element, ast.Constant):
            seen_dashes = seen_dashes or element.value == "--"
        elif isinstance(element, ast.Starred) and isinstance(element.value, ast.Name):
            if element.value.id not in params and not seen_dashes:
                return [f"{where}: a variable argument comes before '--'"]
        elif not seen_dashes and not _safe_before_dashes(element, previous):
            return [f"{where}: a variable argument comes before '--'"]
        previous = element
    return []


def _forwards_before_dashes(args: ast.expr, params: set[str]) -> bool:
    """``[exe, *param, ...]`` with the parameter before any ``--``: the callers decide."""
    if not isinstance(args, ast.List):
        return False
    for element in args.elts:
        if isinstance(element, ast.Constant) and element.value == "--":
            return False
        if (
            isinstance(element, ast.Starred)
            and isinstance(element.value, ast.Name)
            and element.value.id in params
        ):
            return True
    return False


def spawn_problems(source: str, name: str) -> list[str]:
    """Process launches that go through a shell, take a command string, or put a variable
    argument before ``--``. A function that forwards its first parameter into a launch
    (``[git, "-c", "x=y", *args]``) is a launcher too: its callers are held to the same rules."""
    tree = ast.parse(source)
    problems: list[str] = []
    wrappers: set[str] = set()
    for func in ast.walk(tree):
        if not isinstance(func, ast.FunctionDef):
            continue
        params = {a.arg for a in func.args.args[:1]}
        for node in ast.walk(func):
            if (
                isinstance(node, ast.Call)
                and _spawner(node)
                and node.args
                and _forwards_before_dashes(node.args[0], params)
            ):
                wrappers.add(func.name)
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        where = f"{name}:{node.lineno}"
        for kw in node.keywords:
            if kw.arg == "shell" and not (
                isinstance(kw.value, ast.Constant) and kw.value.value is False
            ):
                problems.append(f"{where}: shell=")
        call = _spawner(node)
        if call in _SHELLS:
            problems.append(f"{where}: {'.'.join(call)} runs a shell")
        elif call is not None:
            enclosing = _enclosing_params(tree, node)
            problems += _list_problems(node.args[0] if node.args else None, enclosing, where)
        elif isinstance(node.func, ast.Name) and node.func.id in wrappers:
            problems += _list_problems(node.args[0] if node.args else None, set(), where)
    return problems


def _spawner(node: ast.Call) -> tuple[str, str] | None:
    func = node.func
    if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
        call = (func.value.id, func.attr)
        if call in _SPAWNERS:
            return call
    return None


def _enclosing_params(tree: ast.AST, target: ast.AST) -> set[str]:
    for func in ast.walk(tree):
        if isinstance(func, ast.FunctionDef) and any(n is target for n in ast.walk(func)):
            return {a.arg for a in func.args.args[:1]}
    return set()


def test_the_package_never_uses_a_shell() -> None:
    problems: list[str] = []
    for path in sorted(PACKAGE.rglob("*.py")):
        problems += spawn_problems(path.read_text(encoding="utf-8"), str(path.relative_to(ROOT)))
    assert problems == []
    # Generated Python (templates) is held to the no-shell rule too.
    for path in sorted(template_dir().rglob("*.py.jinja")):
        assert not re.search(r"shell\s*=\s*True|os\.system\(|os\.popen\(", path.read_text()), path


@pytest.mark.parametrize(
    ("source", "ok"),
    [
        ('subprocess.run(["git", "status"])', True),
        ('subprocess.run(["git", "add", "--", path])', True),
        ('subprocess.run(["git", "add", path])', False),
        ('subprocess.run("git status", shell=True)', False),
        ("subprocess.run(cmd)", False),
        ('os.system("ls")', False),
        ('subprocess.check_output(["git", "config", "--get", "--", key], shell=False)', True),
        ('subprocess.run(["git", "merge-file", "-L", label, "--", a])', True),
        ('subprocess.run(["git", "commit", f"-m{msg}"])', False),
        ('subprocess.run(["git", "log", f"{ref}"])', False),
        (
            "def _git(args, cwd):\n    return subprocess.run([exe, '-c', 'a=b', *args])\n"
            "_git(['add', '--', path], '.')",
            True,
        ),
        (
            "def _git(args, cwd):\n    return subprocess.run([exe, '-c', 'a=b', *args])\n"
            "_git(['add', path], '.')",
            False,
        ),
        ("def f(args):\n    subprocess.run([exe, *other])", False),
        ("subprocess.run([sys.executable, '-c', CODE, *paths])", True),
        ("subprocess.run([sys.executable, '-m', 'tool', path])", True),
        ("subprocess.run([sys.executable, path])", False),
        ("subprocess.run(['promtool', 'check', 'rules', *files])", False),
    ],
)
def test_the_spawn_scanner_catches_unsafe_calls(source: str, ok: bool) -> None:
    assert (spawn_problems(source, "x") == []) is ok


# ---- --help and --version stay light ------------------------------------------------------------

HEAVY = (
    "copier",
    "jinja2",
    "pydantic",
    "pydantic_core",
    "ruamel",
    "yaml",
    "questionary",
    "prompt_toolkit",
    "mlopsctl.rules",
    "mlopsctl.requirements",
    "mlopsctl.render",
    "mlopsctl.design",
    "mlopsctl.answers",
    "rich.markdown",
)

_PROBE = """
import json, sys
sys.argv = ["mlopsctl", *sys.argv[1:]]
import os
def _exit(code):  # the entry point ends the process directly; come back here instead
    raise SystemExit(code)
os._exit = _exit
from mlopsctl.cli import main
try:
    main()
except SystemExit:
    pass
print("MODULES=" + json.dumps(sorted(sys.modules)), file=sys.stderr)
"""


# Typer (0.2x) builds a subcommand's parameters with pydantic, so ``init --help`` loads
# pydantic through Typer itself; mlopsctl's own modules stay unloaded all the same.
TYPER_OWN = ("pydantic", "pydantic_core", "annotated_types")


@pytest.mark.parametrize(
    ("args", "allowed"),
    [(["--help"], ()), (["--version"], ()), (["init", "--help"], TYPER_OWN)],
)
def test_help_and_version_import_nothing_heavy(args: list[str], allowed: tuple[str, ...]) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", _PROBE, *args], capture_output=True, text=True, check=True
    )
    line = next(x for x in proc.stderr.splitlines() if x.startswith("MODULES="))
    modules = json.loads(line.removeprefix("MODULES="))
    heavy = [h for h in HEAVY if h not in allowed]
    loaded = [m for m in modules if any(m == h or m.startswith(h + ".") for h in heavy)]
    assert loaded == []
    assert proc.stdout.strip()


# ---- The wheel carries the templates ----

_AUDIT = """
import sys
opened = []
def hook(event, args):
    if event == "open" and isinstance(args[0], (str, bytes)) and not isinstance(args[0], int):
        opened.append(args[0] if isinstance(args[0], str) else args[0].decode())
sys.addaudithook(hook)
sys.argv = ["mlopsctl", "init", sys.argv[1], "--defaults", "--set", "project_name=wheel"]
import os
def _exit(code):  # the entry point ends the process directly; come back here instead
    raise SystemExit(code)
os._exit = _exit
from mlopsctl.cli import main
try:
    main()
except SystemExit as exc:
    code = exc.code
import mlopsctl.render as render
print("TEMPLATE=" + str(render.template_dir()))
print("PACKAGE=" + render.__file__)
print("OPENED=" + "\\n".join(opened).replace("\\n", "\\x00"))
sys.exit(code)
"""


@pytest.mark.slow
def test_the_installed_wheel_generates_without_the_source_tree(tmp_path: Path) -> None:
    python, site = installed_wheel(tmp_path)
    work = tmp_path / "work"
    work.mkdir()
    proc = subprocess.run(
        [str(python), "-c", _AUDIT, str(work / "out")],
        cwd=work,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    fields = dict(line.split("=", 1) for line in proc.stdout.splitlines() if "=" in line)
    assert Path(fields["TEMPLATE"]).is_relative_to(site), fields["TEMPLATE"]
    assert Path(fields["PACKAGE"]).is_relative_to(site)
    opened = [Path(p) for p in fields["OPENED"].split("\x00") if p]
    from_source = [
        p
        for p in opened
        if p.is_absolute()
        and p.resolve().is_relative_to(ROOT)
        and not p.resolve().is_relative_to(ROOT / ".venv")
    ]
    assert from_source == []
    assert any(p.name == "copier.yml" and p.is_relative_to(site) for p in opened)
    assert (work / "out" / "mlopsctl.yaml").is_file()
    # pip compiled the template's Python files in site-packages: none of that reaches the project
    assert list((site / "mlopsctl" / "templates").rglob("*.pyc")) != []
    assert sorted((work / "out").rglob("__pycache__")) == []
    assert sorted((work / "out").rglob("*.pyc")) == []
    # and the installed wheel writes exactly what this checkout writes (state.json included)
    from tests.test_determinism import _tree

    checkout = [sys.executable, "-m", "mlopsctl", "init", str(work / "checkout"), "--defaults"]
    subprocess.run(
        [*checkout, "--set", "project_name=wheel"],
        capture_output=True,
        check=True,
        timeout=300,
    )
    assert _tree(work / "out") == _tree(work / "checkout")
