"""Drive the real questionnaire in a pseudo-terminal, as a person would."""

from __future__ import annotations

import sys
from pathlib import Path

import pexpect
import pytest
import yaml

from tests.terminal import Terminal

TIMEOUT = 30


def spawn(*args: str, cwd: Path, full: bool = False) -> pexpect.spawn:
    """mlopsctl at a terminal: a plain one (``TERM=dumb``), or with ``full`` a terminal that
    takes arrow keys; the user's cache is under ``cwd``."""
    env = {
        "TERM": "xterm-256color" if full else "dumb",
        "NO_COLOR": "1",
        "COLUMNS": "200",
        "PATH": "/usr/bin:/bin",
        "HOME": str(cwd),
        "XDG_CACHE_HOME": str(cwd / ".cache"),
        # prompt_toolkit asks the terminal where the cursor is; a pexpect terminal never says
        "PROMPT_TOOLKIT_NO_CPR": "1",
    }
    child = Terminal(
        sys.executable,
        ["-m", "mlopsctl", *args],
        cwd=str(cwd),
        encoding="utf-8",
        timeout=TIMEOUT,
        dimensions=(50, 200),
        env=env,
    )
    return child


def ended_interrupted(child: pexpect.spawn) -> None:
    """The command says nothing was written and exits 130 (an interrupt)."""
    child.expect_exact("interrupted: nothing was written")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 130


def answer(child: pexpect.spawn, question: str, reply: str) -> None:
    child.expect_exact(question)
    child.expect_exact(">")
    child.sendline(reply)


def test_full_questionnaire_generates(tmp_path: Path) -> None:
    child = spawn("init", "churn-model", cwd=tmp_path)
    # the project name defaults to the directory name
    child.expect_exact("Project name")
    child.expect_exact("[churn-model]")
    child.sendline("")
    # choices are listed, numbered, with the default marked
    child.expect_exact("Model type")
    child.expect_exact("1. classification  (default)")
    child.expect_exact("2. regression")
    child.expect_exact(">")
    child.sendline("2")
    answer(child, "Model framework", "xgboost")
    answer(child, "Deployment target", "")
    answer(child, "Model server", "")
    answer(child, "Peak requests per second", "300")
    answer(child, "Latency SLA at p95 (ms)", "120")
    answer(child, "Data volume per run (GB)", "")
    answer(child, "Concurrent users", "")
    # a wrong answer is explained and asked again
    child.expect_exact("Governance level")
    child.expect_exact(">")
    child.sendline("9")
    child.expect_exact("choose a number from 1 to 3")
    child.sendline("production")
    answer(child, "Existing MLOps platforms", "mlflow, 8")
    answer(child, "Model size (GB)", "")
    answer(child, "Team size (people)", "7")
    answer(child, "Kubernetes cluster available?", "y")
    answer(child, "Cloud provider", "")
    answer(child, "GPUs available for serving?", "")
    answer(child, "MLOps maturity level", "")
    answer(child, "Regulations that apply", "gdpr")
    answer(child, "Is explainability mandated?", "n")
    answer(child, "CI platform", "")
    answer(child, "Short description", "")
    # a summary, then a confirmation before anything is written
    child.expect_exact("Summary for churn-model")
    child.expect_exact("Stack")
    child.expect_exact("Generate the repository in churn-model?")
    assert not (tmp_path / "churn-model").exists()
    child.sendline("y")
    child.expect_exact("generated")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    answers = yaml.safe_load((tmp_path / "churn-model" / "mlopsctl.yaml").read_text())
    assert answers["project_name"] == "churn-model"
    assert answers["model_type"] == "regression"
    assert answers["framework"] == "xgboost"
    assert answers["governance_level"] == "production"
    assert answers["existing_stack"] == ["mlflow", "wandb"]
    assert answers["team_size"] == 7
    assert answers["regulations"] == ["gdpr"]
    assert answers["scale_requirements"] == {"rps": 300, "latency_ms": 120}


def test_declining_confirmation_writes_nothing(tmp_path: Path) -> None:
    child = spawn("init", "demo", "--set", "project_name=demo", cwd=tmp_path)
    for _ in range(30):
        index = child.expect([r"\] $", r"Generate the repository in demo\?"])
        if index == 1:
            break
        child.sendline("")
    else:
        pytest.fail("never reached the confirmation")
    child.sendline("n")
    child.expect_exact("cancelled: nothing was written")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    assert not (tmp_path / "demo").exists()


def test_answers_given_are_not_asked_again(tmp_path: Path) -> None:
    child = spawn(
        "init", "x", "--set", "project_name=preset", "--set", "framework=lightgbm", cwd=tmp_path
    )
    child.expect_exact("Model type")
    seen = child.before + child.after
    child.sendline("")
    for _ in range(30):
        index = child.expect([r"\] $", r"Generate the repository in x\?"])
        seen += child.before
        if index == 1:
            break
        child.sendline("")
    child.sendline("n")
    child.expect(pexpect.EOF)
    assert "Project name" not in seen
    assert "Model framework" not in seen


def test_no_terminal_never_prompts(tmp_path: Path) -> None:
    import subprocess

    result = subprocess.run(
        [sys.executable, "-m", "mlopsctl", "init", "x"],
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert result.returncode == 2
    assert "missing required answers" in result.stderr
    assert "Project name" not in result.stdout
    assert not (tmp_path / "x").exists()


# Every answer but the ones a test asks for; answered from a file, so the questionnaire opens at
# the question under test.
ALL_ANSWERS: dict[str, object] = {
    "project_name": "demo",
    "model_type": "classification",
    "framework": "sklearn",
    "deployment_target": "online",
    "model_server": "auto",
    "governance_level": "staging",
    "existing_stack": [],
    "model_size_gb": 0.1,
    "team_size": 5,
    "kubernetes": True,
    "cloud": "none",
    "gpu": False,
    "maturity_level": 1,
    "regulations": [],
    "explainability_required": False,
    "ci_platform": "github-actions",
    "description": "",
}
SCALE_KEYS = ("rps", "latency_ms", "data_volume_gb", "concurrent_users")


def answers_file(tmp_path: Path, *open_keys: str, **override: object) -> Path:
    """An answers file with every answer but ``open_keys`` (dotted), and ``override``."""
    data: dict[str, object] = {k: v for k, v in ALL_ANSWERS.items() if k not in open_keys}
    scale = {k: 100 for k in SCALE_KEYS if f"scale_requirements.{k}" not in open_keys}
    if "scale_requirements" not in open_keys:
        data["scale_requirements"] = scale
    data.update(override)
    path = tmp_path / "answers.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def finish(child: pexpect.spawn, destination: str, *, generate: bool = True) -> str:
    """Take the default of every question left, then confirm (or decline); what was shown."""
    seen = ""
    for _ in range(40):
        index = child.expect([r"\] $", rf"Generate the repository in {destination}\?"])
        seen += child.before + child.after
        if index == 1:
            break
        child.sendline("")
    else:
        pytest.fail("never reached the confirmation")
    child.sendline("y" if generate else "n")
    child.expect(pexpect.EOF)
    seen += child.before
    child.close()
    assert child.exitstatus == 0, seen
    return seen


def written(tmp_path: Path, destination: str) -> dict[str, object]:
    loaded = yaml.safe_load((tmp_path / destination / "mlopsctl.yaml").read_text())
    assert isinstance(loaded, dict)
    return loaded


def refused(child: pexpect.spawn, reply: str, reason: str) -> None:
    """``reply`` is refused with ``reason`` and the same question is asked again."""
    child.sendline(reply)
    child.expect_exact(reason)
    child.expect_exact(">")


def test_bad_values_are_refused_at_their_prompt_and_nothing_is_lost(tmp_path: Path) -> None:
    source = answers_file(
        tmp_path,
        "scale_requirements",
        "model_size_gb",
        "team_size",
        "project_name",
        "model_type",
    )
    child = spawn("init", "scaled", "--answers", str(source), cwd=tmp_path)
    answer(child, "Project name", "scaled")
    answer(child, "Model type", "regression")
    child.expect_exact("Peak requests per second")
    child.expect_exact(">")
    refused(child, "-5", "greater than or equal to 0")
    refused(child, "lots", "a number, please")
    child.sendline("300")
    child.expect_exact("Latency SLA at p95 (ms)")
    child.expect_exact(">")
    refused(child, "nan", "nan is not a finite number")
    refused(child, "inf", "inf is not a finite number")
    child.sendline("120")
    answer(child, "Data volume per run (GB)", "")
    answer(child, "Concurrent users", "")
    child.expect_exact("Model size (GB)")
    child.expect_exact(">")
    refused(child, "0", "greater than 0")
    child.sendline("2.5")
    child.expect_exact("Team size (people)")
    child.expect_exact(">")
    refused(child, "-1", "greater than or equal to 1")
    refused(child, "1.5", "a whole number")
    child.sendline("4")
    finish(child, "scaled")
    saved = written(tmp_path, "scaled")
    # the answers given before and after each refusal all stand
    assert saved["project_name"] == "scaled"
    assert saved["model_type"] == "regression"
    assert saved["scale_requirements"] == {"rps": 300, "latency_ms": 120}
    assert saved["model_size_gb"] == 2.5
    assert saved["team_size"] == 4


def test_a_project_name_is_checked_at_its_prompt(tmp_path: Path) -> None:
    source = answers_file(tmp_path, "project_name")
    child = spawn("init", "Not_A_Name", "--answers", str(source), cwd=tmp_path)
    child.expect_exact("Project name")
    child.expect_exact("[mlops-demo]")  # the directory's name is no valid default
    refused(child, "Bad_Name", "is not a valid name")
    child.sendline("\x03")
    child.expect(pexpect.EOF)


def test_abort_rule_fires_at_the_question_that_completes_it(tmp_path: Path) -> None:
    # framework and the target are answered first: the model server completes ABT001
    source = answers_file(tmp_path, "model_server", framework="xgboost")
    child = spawn("init", "srv", "--answers", str(source), cwd=tmp_path)
    child.expect_exact("Model server")
    child.expect_exact(">")
    child.sendline("torchserve")
    child.expect_exact("ABT001: incompatible-model-format-for-server")
    child.expect_exact("Set model_server to auto")  # what to change
    child.expect_exact(">")
    child.sendline("auto")
    finish(child, "srv", generate=False)


def test_abort_rule_fires_at_the_target_when_that_comes_last(tmp_path: Path) -> None:
    # the server and framework are given: the deployment target completes ABT001
    source = answers_file(
        tmp_path, "deployment_target", framework="xgboost", model_server="torchserve"
    )
    child = spawn("init", "tgt", "--answers", str(source), cwd=tmp_path)
    child.expect_exact("Deployment target")
    child.expect_exact(">")
    refused(child, "online", "ABT001")
    refused(child, "hybrid", "ABT001")
    child.sendline("batch")  # no online serving: the server is never started
    seen = finish(child, "tgt", generate=False)
    assert "Summary for demo" in seen


def test_answers_that_break_a_rule_together_are_refused_before_any_question(
    tmp_path: Path,
) -> None:
    child = spawn(
        "init",
        "x",
        "--set",
        "framework=xgboost",
        "--set",
        "model_server=torchserve",
        "--set",
        "deployment_target=online",
        cwd=tmp_path,
    )
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 4
    assert "ABT001" in child.before
    assert "Project name" not in child.before


@pytest.mark.parametrize(
    ("option", "named"),
    [
        ("framework=tensorflowx", "framework"),
        ("scale_requirements.rps=-5", "scale_requirements.rps"),
        ("team_size=0", "team_size"),
        ("project_name=Bad_Name", "project_name"),
    ],
)
def test_an_invalid_set_is_refused_before_any_question(
    tmp_path: Path, option: str, named: str
) -> None:
    child = spawn("init", "x", "--set", option, cwd=tmp_path)
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 2
    assert named in child.before
    assert "Project name" not in child.before
    assert "Model type" not in child.before
    assert not (tmp_path / "x").exists()


def test_a_non_empty_destination_is_refused_before_any_question(tmp_path: Path) -> None:
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "notes.txt").write_text("mine\n")
    child = spawn("init", "taken", cwd=tmp_path)
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 2
    assert "is not empty" in child.before
    assert "--force" in child.before
    assert "Project name" not in child.before
    # with --force the questionnaire runs
    child = spawn("init", "taken", "--force", cwd=tmp_path)
    child.expect_exact("Project name")
    child.sendline("\x03")
    child.expect(pexpect.EOF)
    assert (tmp_path / "taken" / "notes.txt").read_text() == "mine\n"


def test_maturity_levels_are_typed_as_the_level(tmp_path: Path) -> None:
    source = answers_file(tmp_path, "maturity_level", "framework")
    child = spawn("init", "mat", "--answers", str(source), cwd=tmp_path)
    child.expect_exact("Model framework")
    child.expect_exact(">")
    refused(child, "xgbost", "did you mean xgboost?")
    child.sendline("XGBoost")  # choices match ignoring case
    child.expect_exact("MLOps maturity level")
    # the levels are listed as themselves with their meaning, never renumbered
    child.expect_exact("0  manual")
    child.expect_exact("1  pipeline automation  (default)")
    child.expect_exact("2  CI/CD for pipelines")
    child.expect_exact(">")
    seen = child.before
    assert "1. 0" not in seen and "3. 2" not in seen
    refused(child, "3", "choose one of 0, 1, 2")
    child.sendline("2")
    finish(child, "mat")
    saved = written(tmp_path, "mat")
    assert saved["maturity_level"] == 2
    assert saved["framework"] == "xgboost"


@pytest.mark.parametrize(
    ("key", "prompt", "shows"),
    [
        ("project_name", "Project name", "DNS-1035 label"),
        ("scale_requirements.rps", "Peak requests per second", "example: 200"),
        ("kubernetes", "Kubernetes cluster available?", "answer y or n"),
        ("maturity_level", "MLOps maturity level", "2  CI/CD for pipelines"),
        ("existing_stack", "Existing MLOps platforms", "example: mlflow"),
    ],
)
def test_question_mark_shows_the_help_and_asks_again(
    tmp_path: Path, key: str, prompt: str, shows: str
) -> None:
    source = answers_file(tmp_path, key)
    child = spawn("init", "helped", "--answers", str(source), cwd=tmp_path)
    child.expect_exact(prompt)
    child.expect_exact(">")
    child.sendline("?")
    child.expect_exact(shows)
    child.expect_exact("Ctrl-C or Ctrl-D stops")
    child.expect_exact(">")  # asked again
    child.sendline("\x03")
    child.expect(pexpect.EOF)


PROMPT_KINDS = [
    ("project_name", "Project name"),  # text
    ("model_type", "Model type"),  # choice
    ("existing_stack", "Existing MLOps platforms"),  # several choices
    ("scale_requirements.rps", "Peak requests per second"),  # number
    ("team_size", "Team size (people)"),  # whole number
    ("kubernetes", "Kubernetes cluster available?"),  # yes or no
]


@pytest.mark.parametrize("key", [k for k, _ in PROMPT_KINDS])
@pytest.mark.parametrize("keys", ["\x04", "\x03"], ids=["ctrl-d", "ctrl-c"])
def test_ctrl_d_and_ctrl_c_end_any_plain_prompt(tmp_path: Path, key: str, keys: str) -> None:
    source = answers_file(tmp_path, key)
    child = spawn("init", "stop", "--answers", str(source), cwd=tmp_path)
    child.expect_exact(dict(PROMPT_KINDS)[key])
    child.expect_exact(">")
    child.send(keys)
    ended_interrupted(child)
    assert "internal error" not in child.before
    assert not (tmp_path / "stop").exists()


def _full_prompt(child: pexpect.spawn, title: str) -> None:
    """Wait until questionary draws the choice prompt ``title``."""
    child.expect_exact(title)
    child.expect_exact("type to filter")
    child.expect(r"[»›]")


@pytest.mark.parametrize(("key", "title"), [PROMPT_KINDS[1], PROMPT_KINDS[2]])
@pytest.mark.parametrize("keys", ["\x04", "\x03"], ids=["ctrl-d", "ctrl-c"])
def test_ctrl_d_and_ctrl_c_end_an_arrow_key_prompt(
    tmp_path: Path, key: str, title: str, keys: str
) -> None:
    source = answers_file(tmp_path, key)
    child = spawn("init", "stop", "--answers", str(source), cwd=tmp_path, full=True)
    _full_prompt(child, title)
    child.send(keys)
    ended_interrupted(child)
    assert not (tmp_path / "stop").exists()


def test_arrow_keys_and_type_to_filter_pick_choices(tmp_path: Path) -> None:
    source = answers_file(
        tmp_path, "model_type", "framework", "model_server", "existing_stack", "maturity_level"
    )
    child = spawn("init", "picked", "--answers", str(source), cwd=tmp_path, full=True)
    _full_prompt(child, "Model type")
    child.send("\x1b[B")  # down: from the default, classification, to regression
    child.send("\r")
    _full_prompt(child, "Model framework")
    child.send("lightg")  # typing filters the list to lightgbm
    child.expect_exact("lightgbm")
    child.send("\r")
    _full_prompt(child, "Model server")
    child.send("?")  # help, then the same prompt again
    child.expect_exact("choices:")
    _full_prompt(child, "Model server")
    child.send("\r")
    _full_prompt(child, "Existing MLOps platforms")
    child.send(" ")  # the first, mlflow
    child.send("\x1b[B\x1b[B\x1b[B\x1b[B\x1b[B\x1b[B\x1b[B")  # down to wandb
    child.send(" ")
    child.send("\r")
    _full_prompt(child, "MLOps maturity level")
    child.send("\x1b[B")  # from 1 to 2
    child.send("\r")
    finish(child, "picked")
    saved = written(tmp_path, "picked")
    assert saved["model_type"] == "regression"
    assert saved["framework"] == "lightgbm"
    assert saved["existing_stack"] == ["mlflow", "wandb"]
    assert saved["maturity_level"] == 2


def test_plain_prompts_on_request_at_a_full_terminal(tmp_path: Path) -> None:
    source = answers_file(tmp_path, "model_type")
    child = Terminal(
        sys.executable,
        ["-m", "mlopsctl", "init", "plain", "--answers", str(source)],
        cwd=str(tmp_path),
        encoding="utf-8",
        timeout=TIMEOUT,
        dimensions=(50, 200),
        env={
            "TERM": "xterm-256color",
            "MLOPSCTL_PLAIN_PROMPTS": "1",
            "NO_COLOR": "1",
            "PATH": "/usr/bin:/bin",
            "XDG_CACHE_HOME": str(tmp_path / ".cache"),
        },
    )
    child.expect_exact("1. classification  (default)")
    child.expect_exact(">")
    child.sendline("2")
    finish(child, "plain")
    assert written(tmp_path, "plain")["model_type"] == "regression"


def _cache_files(tmp_path: Path) -> list[Path]:
    return sorted((tmp_path / ".cache").rglob("*.json"))


def test_an_interrupted_questionnaire_is_resumed(tmp_path: Path) -> None:
    child = spawn("init", "again", cwd=tmp_path)
    answer(child, "Project name", "resumed")
    answer(child, "Model type", "ranking")
    answer(child, "Model framework", "lightgbm")
    answer(child, "Deployment target", "hybrid")
    child.expect_exact("(5/")  # question 5, the model server
    child.expect_exact(">")
    child.send("\x04")
    child.expect_exact("kept the 4 answers given")
    ended_interrupted(child)
    assert not (tmp_path / "again").exists()  # never in the destination
    (saved,) = _cache_files(tmp_path)
    assert saved.stat().st_mode & 0o777 == 0o600
    assert saved.parent.stat().st_mode & 0o777 == 0o700

    child = spawn("init", "again", cwd=tmp_path)
    child.expect_exact("Resume the 4 answers you gave on")
    child.expect_exact("[Y/n]")
    child.sendline("")
    child.expect_exact("Model server")  # the first question not answered yet
    seen = child.before
    for asked in ("Project name", "Model type", "Model framework", "Deployment target"):
        assert asked not in seen
    child.sendline("")
    finish(child, "again")
    answers = written(tmp_path, "again")
    assert answers["project_name"] == "resumed"
    assert answers["model_type"] == "ranking"
    assert answers["framework"] == "lightgbm"
    assert answers["deployment_target"] == "hybrid"
    assert _cache_files(tmp_path) == []  # removed once the answers are complete


def test_resume_declined_asks_everything(tmp_path: Path) -> None:
    child = spawn("init", "fresh", cwd=tmp_path)
    answer(child, "Project name", "first")
    child.expect_exact("Model type")
    child.expect_exact(">")
    child.send("\x03")
    child.expect(pexpect.EOF)
    child = spawn("init", "fresh", cwd=tmp_path)
    child.expect_exact("Resume the 1 answer you gave on")
    child.sendline("n")
    child.expect_exact("Project name")
    child.expect_exact("[fresh]")
    child.sendline("\x03")
    child.expect(pexpect.EOF)
    assert _cache_files(tmp_path) == []


@pytest.mark.parametrize("keys", ["\x04", "\x03"], ids=["ctrl-d", "ctrl-c"])
def test_ctrl_d_and_ctrl_c_at_the_resume_offer_keep_the_answers(tmp_path: Path, keys: str) -> None:
    child = spawn("init", "offer", cwd=tmp_path)
    answer(child, "Project name", "offer")
    child.expect_exact("Model type")
    child.expect_exact(">")
    child.send("\x03")
    child.expect(pexpect.EOF)
    child = spawn("init", "offer", cwd=tmp_path)
    child.expect_exact("[Y/n]")
    child.send(keys)
    ended_interrupted(child)
    child = spawn("init", "offer", cwd=tmp_path)
    child.expect_exact("Resume the 1 answer you gave on")
    child.send("\x03")
    child.expect(pexpect.EOF)


@pytest.mark.parametrize(
    "content",
    [
        b"not json {",
        b'{"format": 1, "destination": "/elsewhere", "saved_at": "2026-01-01T00:00:00", '
        b'"answers": {"project_name": "x"}}',
        b"[1, 2, 3]",
        b"\xff\xfe",
    ],
    ids=["not-json", "other-destination", "not-a-mapping", "not-utf8"],
)
def test_a_bad_saved_answers_file_is_ignored_with_a_note(tmp_path: Path, content: bytes) -> None:
    child = spawn("init", "cached", cwd=tmp_path)
    answer(child, "Project name", "cached")
    child.expect_exact("Model type")
    child.expect_exact(">")
    child.send("\x03")
    child.expect(pexpect.EOF)
    (saved,) = _cache_files(tmp_path)
    saved.write_bytes(content)
    child = spawn("init", "cached", cwd=tmp_path)
    child.expect_exact("ignored the saved answers")
    child.expect_exact("Project name")
    child.sendline("\x03")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 130
    assert "internal error" not in child.before


def test_a_tampered_saved_answer_is_ignored(tmp_path: Path) -> None:
    import json

    child = spawn("init", "cached", cwd=tmp_path)
    answer(child, "Project name", "cached")
    child.expect_exact("Model type")
    child.expect_exact(">")
    child.send("\x03")
    child.expect(pexpect.EOF)
    (saved,) = _cache_files(tmp_path)
    document = json.loads(saved.read_text())
    document["answers"]["project_name"] = "Bad Name\x1b[2J"
    saved.write_text(json.dumps(document))
    child = spawn("init", "cached", cwd=tmp_path)
    child.expect_exact("ignored the saved answers")
    child.expect_exact("project_name")
    child.expect_exact("Project name")
    child.sendline("\x03")
    child.expect(pexpect.EOF)


def test_a_batch_target_is_not_asked_for_serving_figures(tmp_path: Path) -> None:
    source = answers_file(
        tmp_path, "deployment_target", "model_server", "scale_requirements", "gpu"
    )
    child = spawn("init", "nightly", "--answers", str(source), cwd=tmp_path)
    answer(child, "Deployment target", "batch")
    child.expect_exact("Data volume per run (GB)")
    seen = child.before
    # the only figure a batch target is asked for cannot be left blank
    child.expect_exact("[required]")
    refused(child, "", "give at least one of data_volume_gb")
    child.sendline("40")
    seen += finish(child, "nightly", generate=False)
    serving = ("Model server", "Peak requests", "Latency SLA", "Concurrent users", "GPUs available")
    for asked in serving:
        assert asked not in seen
    assert "Not asked, as they do not apply:" in seen
    assert "scale_requirements.rps: a batch target serves no requests" in seen
    assert "model_server: a model server runs only for online serving" in seen
    assert "gpu: a batch target has no serving replicas to put GPUs on" in seen
    assert "Summary for demo" in seen  # the answers validate


@pytest.mark.parametrize("target", ["online", "hybrid", "edge"])
def test_serving_targets_are_asked_for_traffic(tmp_path: Path, target: str) -> None:
    source = answers_file(tmp_path, "deployment_target", "scale_requirements")
    child = spawn("init", "srv", "--answers", str(source), cwd=tmp_path)
    answer(child, "Deployment target", target)
    child.expect_exact("Peak requests per second")
    child.expect_exact(">")
    assert "serving endpoint" not in child.before
    child.send("\x03")
    child.expect(pexpect.EOF)


def test_answers_resumed_are_kept_again_by_a_second_interrupt(tmp_path: Path) -> None:
    child = spawn("init", "twice", cwd=tmp_path)
    answer(child, "Project name", "twice")
    answer(child, "Model type", "")
    answer(child, "Model framework", "")
    answer(child, "Deployment target", "")
    child.expect_exact("Model server")
    child.expect_exact(">")
    child.send("\x03")
    child.expect(pexpect.EOF)

    child = spawn("init", "twice", cwd=tmp_path)
    child.expect_exact("Resume the 4 answers")
    child.sendline("y")
    answer(child, "Model server", "mlflow")
    answer(child, "Peak requests per second", "")  # left blank: an answer too
    child.expect_exact("Latency SLA at p95 (ms)")
    child.expect_exact(">")
    child.send("\x04")
    child.expect_exact("kept the 6 answers given")
    child.expect(pexpect.EOF)

    child = spawn("init", "twice", cwd=tmp_path)
    child.expect_exact("Resume the 6 answers")
    child.sendline("")
    child.expect_exact("Latency SLA at p95 (ms)")
    assert "Peak requests per second" not in child.before
    child.expect_exact(">")
    child.sendline("80")
    finish(child, "twice")
    saved = written(tmp_path, "twice")
    assert saved["project_name"] == "twice"
    assert saved["model_server"] == "mlflow"
    assert saved["scale_requirements"] == {"latency_ms": 80}


@pytest.mark.parametrize("keys", ["\x04", "\x03"], ids=["ctrl-d", "ctrl-c"])
def test_answers_are_kept_until_the_repository_is_generated(tmp_path: Path, keys: str) -> None:
    path = answers_file(tmp_path, "model_type", "team_size")
    child = spawn("init", "late", "--answers", str(path), cwd=tmp_path)
    answer(child, "Model type", "ranking")
    answer(child, "Team size", "9")
    child.expect_exact("Generate the repository in late?")
    child.send(keys)  # at the confirmation, after every answer
    ended_interrupted(child)
    assert not (tmp_path / "late").exists()
    assert len(_cache_files(tmp_path)) == 1

    child = spawn("init", "late", "--answers", str(path), cwd=tmp_path)
    child.expect_exact("Resume the 2 answers you gave on")
    child.sendline("")
    finish(child, "late")  # nothing left to ask: straight to the confirmation
    answers = written(tmp_path, "late")
    assert answers["model_type"] == "ranking"
    assert answers["team_size"] == 9
    assert _cache_files(tmp_path) == []  # removed once the repository is generated
