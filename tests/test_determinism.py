"""The same answers give byte-identical output: across runs, destinations, working directories,
time zones, locales and hash seeds; and the in-process renderer gives exactly what copier gives."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from mlopsctl._renderer import fast_template, render_fast
from mlopsctl.api import assess, load_requirements
from mlopsctl.render import (
    context,
    generate,
    render_to,
    render_tree,
    template_dir,
)
from tests.test_hostile import snapshot

ANSWER_SETS: dict[str, dict[str, Any]] = {
    "defaults": {"project_name": "det"},
    "no-kubernetes": {"project_name": "det", "kubernetes": False, "ci_platform": "gitlab-ci"},
    "production-batch": {
        "project_name": "det-batch",
        "deployment_target": "batch",
        "governance_level": "production",
        "scale_requirements": {"data_volume_gb": 500},
        "regulations": ["gdpr", "hipaa"],
        "description": "no: {{ x }} 😀",
    },
    "high-traffic": {
        "project_name": "det-hot",
        "scale_requirements": {"rps": 5000, "latency_ms": 80},
        "maturity_level": 0,
        "team_size": 40,
        "existing_stack": ["mlflow", "kubeflow"],
    },
}


def _tree(root: Path) -> dict[str, Any]:
    out = snapshot(root)
    out.pop("")
    return out


@pytest.mark.parametrize("name", list(ANSWER_SETS))
def test_two_runs_give_identical_trees(name: str, tmp_path: Path) -> None:
    design = assess(load_requirements(ANSWER_SETS[name], defaults=True))
    generate(design, tmp_path / "one")
    again = assess(load_requirements(ANSWER_SETS[name], defaults=True))
    generate(again, tmp_path / "deeper" / "path" / "two")
    assert _tree(tmp_path / "one") == _tree(tmp_path / "deeper" / "path" / "two")


@pytest.mark.parametrize("name", list(ANSWER_SETS))
def test_the_in_process_renderer_matches_copier(name: str, tmp_path: Path) -> None:
    """Same files, folders, bytes and modes as copier's own run of the template."""
    design = assess(load_requirements(ANSWER_SETS[name], defaults=True))
    tpl = fast_template(template_dir())
    assert tpl is not None, "the template left the subset the in-process renderer follows"
    render_fast(tpl, context(design), tmp_path / "bare")  # raises if it needs copier
    fast = render_tree(design, tmp_path / "fast")
    slow = render_to(design, tmp_path / "copier")
    assert fast == slow
    assert _tree(tmp_path / "fast") == _tree(tmp_path / "copier")


def test_compiled_files_and_editor_leftovers_in_the_template_are_not_copied(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An installed template has __pycache__ folders wherever pip compiled its Python files;
    neither renderer copies them (nor editor and VCS leftovers), and both still agree."""
    import shutil

    template = tmp_path / "template"
    shutil.copytree(template_dir(), template)
    planted = [
        "project/src/__pycache__/train.cpython-311.pyc",
        "project/tests/__pycache__/conftest.cpython-311.pyc",
        "project/src/stale.pyc",
        "project/~README.md",
        "project/.DS_Store",
        "project/.git/HEAD",
    ]
    for rel in planted:
        (template / rel).parent.mkdir(parents=True, exist_ok=True)
        (template / rel).write_bytes(b"not for the project")
    monkeypatch.setattr("mlopsctl.render.template_dir", lambda: template)
    design = assess(load_requirements(ANSWER_SETS["defaults"], defaults=True))
    assert fast_template(template) is not None
    fast = render_tree(design, tmp_path / "fast")
    slow = render_to(design, tmp_path / "copier")
    assert fast == slow
    assert _tree(tmp_path / "fast") == _tree(tmp_path / "copier")
    leaked = [
        f
        for f in fast
        if any(part in f for part in ("__pycache__", ".pyc", "~", ".DS_Store", ".git/"))
    ]
    assert leaked == []
    assert "src/train.py" in fast


def _cli(dest: Path, cwd: Path, env: dict[str, str]) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "mlopsctl",
            "init",
            str(dest),
            "--defaults",
            "--set",
            "project_name=det",
            "--set",
            "description=Ünïcödé 😀",
        ],
        cwd=cwd,
        env={**os.environ, **env},
        check=True,
        capture_output=True,
        timeout=120,
    )


def _locale(candidates: list[str]) -> str:
    available = subprocess.run(["locale", "-a"], capture_output=True, text=True, check=False)
    names = {n.lower().replace("-", "") for n in available.stdout.split()}
    for candidate in candidates:
        if candidate.lower().replace("-", "") in names:
            return candidate
    return "C"


@pytest.mark.slow
def test_environment_does_not_leak_into_the_output(tmp_path: Path) -> None:
    (tmp_path / "cwd-a").mkdir()
    (tmp_path / "cwd-b" / "x").mkdir(parents=True)
    runs = [
        (
            tmp_path / "a",
            tmp_path / "cwd-a",
            {"TZ": "UTC", "LC_ALL": "C.UTF-8", "PYTHONHASHSEED": "0"},
        ),
        (
            tmp_path / "b" / "c" / "d",
            tmp_path / "cwd-b" / "x",
            {
                "TZ": "Pacific/Kiritimati",
                "LC_ALL": _locale(["tr_TR.UTF-8", "de_DE.UTF-8"]),
                "PYTHONHASHSEED": "12345",
                "LANG": "ja_JP.UTF-8",
            },
        ),
        (
            tmp_path / "e",
            tmp_path,
            {
                "TZ": "America/St_Johns",
                "LC_ALL": "C",
                "PYTHONHASHSEED": "random",
                "SOURCE_DATE_EPOCH": "0",
            },
        ),
    ]
    trees = []
    for dest, cwd, env in runs:
        _cli(dest, cwd, env)
        trees.append(_tree(dest))
    assert trees[0] == trees[1] == trees[2]


def test_no_timestamps_and_sorted_machine_files(tmp_path: Path) -> None:
    design = assess(load_requirements(ANSWER_SETS["production-batch"], defaults=True))
    generate(design, tmp_path / "out")
    time.sleep(1.1)  # a clock reading anywhere in the output would now differ
    generate(design, tmp_path / "later")
    assert _tree(tmp_path / "out") == _tree(tmp_path / "later")
    stamp = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}")
    for path in (tmp_path / "out").rglob("*"):
        if path.is_file():
            assert not stamp.search(path.read_text(encoding="utf-8")), path
    # Machine-written JSON state is key-sorted, so the same design always gives the same bytes.
    for path in (tmp_path / "out" / ".mlopsctl").glob("*.json"):
        text = path.read_text(encoding="utf-8")
        canonical = json.dumps(json.loads(text), indent=2, sort_keys=True, ensure_ascii=False)
        assert text == canonical + "\n", path


def test_compiled_template_cache_changes_nothing(tmp_path: Path) -> None:
    """A cold cache, a warm one and none at all give the same tree; the cache stays private."""
    cache = tmp_path / "cache"
    trees = []
    for run, extra in enumerate(({}, {}, {"MLOPSCTL_NO_CACHE": "1"})):
        out = tmp_path / f"run{run}" / "demo"
        env = {**os.environ, "XDG_CACHE_HOME": str(cache), **extra}
        if not extra:
            env.pop("MLOPSCTL_NO_CACHE", None)
        subprocess.run(
            [sys.executable, "-m", "mlopsctl", "init", str(out), "--defaults"],
            check=True,
            capture_output=True,
            env=env,
        )
        trees.append(_tree(out))
    assert trees[0] == trees[1] == trees[2]
    compiled = list((cache / "mlopsctl" / "jinja").iterdir())
    assert compiled  # the first run filled it, the second read it
    assert (cache / "mlopsctl" / "jinja").stat().st_mode & 0o077 == 0


def test_a_full_or_damaged_template_cache_costs_nothing_but_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno

    import jinja2
    import jinja2.bccache

    from mlopsctl._renderer import bytecode_cache

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("MLOPSCTL_NO_CACHE", raising=False)
    cache = bytecode_cache()
    assert cache is not None
    env = jinja2.Environment(loader=jinja2.DictLoader({"t": "{{ 1 + 1 }}"}), bytecode_cache=cache)

    def full(*args: Any, **kwargs: Any) -> Any:
        raise OSError(errno.ENOSPC, "No space left on device")

    with monkeypatch.context() as m:
        m.setattr(jinja2.bccache.tempfile, "NamedTemporaryFile", full)
        assert env.get_template("t").render() == "2"  # compiled, not stored
    assert list((tmp_path / "cache" / "mlopsctl" / "jinja").iterdir()) == []
    env.cache.clear()
    assert env.get_template("t").render() == "2"  # stored this time
    (stored,) = (tmp_path / "cache" / "mlopsctl" / "jinja").iterdir()
    stored.write_bytes(b"damaged")
    env.cache.clear()
    assert env.get_template("t").render() == "2"  # a damaged entry is compiled again
