"""The specification's example workflow, written with the public API alone: quick setup
(``assess``), production pipeline (``generate`` at T2), full lifecycle (``generate`` at T3),
manifests generated into a directory, then a dry run of ``update`` and ``validate``."""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from mlopsctl import api
from mlopsctl.answers import AnswerSet

FRAUD = {
    "project_name": "fraud",
    "model_type": "classification",
    "deployment_target": "online",
    "scale_requirements": {"rps": 500, "latency_ms": 150},
    "governance_level": "production",
}


def git(cwd: Path, *args: str) -> str:
    proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True)
    return proc.stdout


def commit_all(dest: Path) -> None:
    git(dest, "init", "-q", "-b", "main")
    git(dest, "config", "user.name", "Test User")
    git(dest, "config", "user.email", "test@example.com")
    git(dest, "config", "commit.gpgsign", "false")
    git(dest, "add", "-A")
    git(dest, "commit", "-q", "-m", "Generate project with mlopsctl")


def tree(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and ".git" not in p.relative_to(root).parts[:1]
    }


def test_the_specification_workflow_through_the_api(tmp_path: Path) -> None:
    # T1: quick setup -- the recommendations, nothing written
    quick = api.assess(FRAUD)
    assert (quick.stack.tracking, quick.stack.serving) == ("mlflow", "kserve")
    assert quick.quickstart.deploy_command.startswith("kubectl apply")
    assert quick.quickstart.checklist
    assert list(tmp_path.iterdir()) == []

    # T2: production pipeline with monitoring, manifests generated into a directory
    pipeline = api.generate(FRAUD, tmp_path / "mlops-config", tier_floor="T2")
    config = tmp_path / "mlops-config"
    assert pipeline.destination.resolve() == config.resolve()
    for path in ("k8s/inferenceservice.yaml", "monitoring/alerts.yaml", "mlopsctl.yaml"):
        assert path in pipeline.files and (config / path).is_file()
    recorded = json.loads((config / ".mlopsctl/design.json").read_text(encoding="utf-8"))
    assert recorded["tier"] == "T2"
    assert not (config / "k8s/shadow-inferenceservice.yaml").exists()

    # T3: full lifecycle -- the tier-3 rules fire, so their files are there
    lifecycle = api.assess(FRAUD, tier_floor="T3")
    assert lifecycle.tier == "T3" and lifecycle.stack.rollout == "progressive"
    full = api.generate(lifecycle, tmp_path / "lifecycle")
    for path in ("k8s/shadow-inferenceservice.yaml", "src/rollout.py", "governance/approvals.yaml"):
        assert path in full.files and (tmp_path / "lifecycle" / path).is_file()

    # A dry run of update on the T2 project: the plan lists the changed decision, writes nothing
    commit_all(config)
    before = tree(config)
    plan = api.update(config, sets=["scale_requirements.latency_ms=30"], dry_run=True)
    changed = {(d.section, d.key): (d.old, d.new) for d in plan.decisions}
    assert changed[("answers", "scale_requirements.latency_ms")] == (150.0, 30.0)
    tighter = api.assess({**FRAUD, "scale_requirements": {"rps": 500, "latency_ms": 30}})
    newly_fired = set(tighter.fired_rules) - set(quick.fired_rules)
    assert newly_fired and newly_fired <= {d.key for d in plan.decisions if d.section == "rules"}
    assert "mlopsctl.yaml" in {f.path for f in plan.changed}
    assert tree(config) == before

    # The generated project validates clean
    assert api.validate(config, select=["MLV1"]).ok


def test_update_keeps_the_tier_floor_the_project_was_generated_with(tmp_path: Path) -> None:
    api.generate(FRAUD, tmp_path, tier_floor="T3")
    commit_all(tmp_path)
    plan = api.update(tmp_path, sets=["team_size=12"], dry_run=True)
    assert not [d for d in plan.decisions if d.section == "tier"]
    assert not any(d.section == "rules" and d.new != "fires" for d in plan.decisions)


def test_answers_files_are_laid_over_one_another(tmp_path: Path) -> None:
    base, over = tmp_path / "base.yaml", tmp_path / "over.yaml"
    base.write_text("project_name: fraud\nteam_size: 3\ngovernance_level: production\n")
    over.write_text("team_size: 9\n")
    req = api.load_requirements([base, over], sets=["gpu=true"], defaults=True)
    assert (req.project_name, req.team_size, req.gpu) == ("fraud", 9, True)
    assert req.governance_level == "production"


def test_the_questionnaire_feeds_the_same_path() -> None:
    asked: list[AnswerSet] = []

    def ask(answers: AnswerSet) -> None:
        asked.append(answers)
        answers.set(("project_name",), "asked", source="(prompt)")

    req = api.load_requirements({"team_size": 4}, ask=ask)
    assert len(asked) == 1 and (req.project_name, req.team_size) == ("asked", 4)


def test_an_unknown_tier_floor_is_a_usage_error(tmp_path: Path) -> None:
    from mlopsctl.errors import UsageError

    with pytest.raises(UsageError, match="T9"):
        api.generate(FRAUD, tmp_path / "out", tier_floor="T9")
    assert not (tmp_path / "out").exists()


def _workflow_blocks() -> tuple[list[str], str]:
    """The python blocks and the shell step of docs/api.md's example workflow, in order."""
    text = (Path(__file__).parents[1] / "docs/api.md").read_text(encoding="utf-8")
    section = text.split("## Example workflow", 1)[1].split("\n## ", 1)[0]
    python = re.findall(r"```python\n(.*?)```", section, re.DOTALL)
    shell = re.findall(r"```sh\n(.*?)```", section, re.DOTALL)
    assert len(python) == 2 and len(shell) == 1
    return python, shell[0]


def test_the_documented_workflow_runs_as_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (setup, after_commit), commit = _workflow_blocks()
    monkeypatch.chdir(tmp_path)
    for key, value in {
        "GIT_AUTHOR_NAME": "Test User",
        "GIT_AUTHOR_EMAIL": "test@example.com",
        "GIT_COMMITTER_NAME": "Test User",
        "GIT_COMMITTER_EMAIL": "test@example.com",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_CONFIG_NOSYSTEM": "1",
    }.items():
        monkeypatch.setenv(key, value)

    scope: dict[str, object] = {}
    exec(setup, scope)
    out = capsys.readouterr().out
    assert out.startswith("mlflow kserve\nkubectl apply -f k8s/inferenceservice.yaml\n")
    assert "T3 progressive\n" in out
    assert (tmp_path / "mlops-config/k8s/inferenceservice.yaml").is_file()
    assert not (tmp_path / "mlops-config/k8s/shadow-inferenceservice.yaml").exists()
    assert (tmp_path / "mlops-lifecycle/k8s/shadow-inferenceservice.yaml").is_file()

    subprocess.run(["sh", "-ec", commit], cwd=tmp_path, check=True, capture_output=True)
    before = tree(tmp_path / "mlops-config")
    exec(after_commit, scope)
    out = capsys.readouterr().out
    assert "answers scale_requirements.latency_ms 150.0 -> 30.0\n" in out
    assert "+  latency_ms: 30.0" in out
    assert out.endswith("clean\n")
    assert tree(tmp_path / "mlops-config") == before


PACKAGE = Path(__file__).parents[1] / "mlopsctl"
# What only mlopsctl.api may reach: the answers loaders, the engine, the renderer, update.
CORE_ONLY = {"mlopsctl.rules.engine", "mlopsctl.render", "mlopsctl.update"}
LOADERS = {"apply_sets", "build_requirements", "fill_defaults", "load_answers_file", "evaluate"}


def _runtime_imports(tree: ast.Module) -> list[tuple[str, str]]:
    """(module, name) of every import that runs, those under ``if TYPE_CHECKING`` left out."""
    typing_only = {
        id(node)
        for block in ast.walk(tree)
        if isinstance(block, ast.If) and ast.unparse(block.test) == "TYPE_CHECKING"
        for stmt in block.body
        for node in ast.walk(stmt)
    }
    found = []
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.ImportFrom) and node.module:
            found += [(node.module, alias.name) for alias in node.names]
        elif isinstance(node, ast.Import):
            found += [(alias.name, "") for alias in node.names]
    return found


@pytest.mark.parametrize("path", sorted((PACKAGE / "cli").glob("*.py")), ids=lambda p: p.name)
def test_the_cli_reaches_answers_rules_rendering_and_update_only_through_the_api(
    path: Path,
) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    bad = [
        f"{module}.{name}"
        for module, name in _runtime_imports(tree)
        if any(module == m or module.startswith(m + ".") for m in CORE_ONLY)
        or (module == "mlopsctl.answers" and name in LOADERS)
    ]
    assert bad == [], f"{path.name} imports {bad}; call mlopsctl.api instead"


def test_the_rules_run_on_answers_in_one_place() -> None:
    callers = sorted(
        path.relative_to(PACKAGE).as_posix()
        for path in PACKAGE.rglob("*.py")
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name | ast.Attribute)
        and (node.func.id if isinstance(node.func, ast.Name) else node.func.attr)
        in {"evaluate", "build_requirements"}
    )
    assert callers == ["_assess.py", "_assess.py"]
