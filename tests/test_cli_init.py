"""``mlopsctl init`` through the CLI: every exit code and what is (not) written."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from mlopsctl import __version__
from mlopsctl.cli.app import app

runner = CliRunner()


def invoke(*args: str, input: str | None = None) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args), input=input)
    return result.exit_code, result.stdout, result.stderr


def test_version() -> None:
    code, out, _ = invoke("--version")
    assert code == 0
    assert out.strip() == f"mlopsctl {__version__}"


def test_help_lists_init() -> None:
    code, out, _ = invoke("--help")
    assert code == 0
    assert "init" in out


def test_init_help_shows_answer_options() -> None:
    code, out, _ = invoke("init", "--help")
    assert code == 0
    for option in ("--answers", "--set", "--defaults", "--force", "--strict"):
        assert option in out


def test_init_defaults_generates(tmp_path: Path) -> None:
    dest = tmp_path / "demo"
    code, out, _ = invoke("init", str(dest), "--defaults")
    assert code == 0, out
    assert "generated" in out
    assert (dest / "mlopsctl.yaml").is_file()
    assert "project_name: demo" in (dest / "mlopsctl.yaml").read_text()


def test_missing_answers_exit_2_and_list_them(tmp_path: Path) -> None:
    dest = tmp_path / "x"
    code, _, err = invoke("init", str(dest), "--set", "project_name=x")
    assert code == 2
    assert "missing required answers: model_type, framework" in err
    assert not dest.exists()


def test_invalid_answer_exit_2_names_field(tmp_path: Path) -> None:
    dest = tmp_path / "x"
    code, _, err = invoke("init", str(dest), "--defaults", "--set", "deployment_target=cloud")
    assert code == 2
    assert "deployment_target" in err
    assert "'batch'" in err
    assert "Traceback" not in err
    assert not dest.exists()


def test_bad_name_exit_2(tmp_path: Path) -> None:
    code, _, err = invoke(
        "init", str(tmp_path / "x"), "--defaults", "--set", "project_name=My_Model"
    )
    assert code == 2
    assert "DNS-1035" in err


def test_bad_set_syntax_exit_2(tmp_path: Path) -> None:
    code, _, err = invoke("init", str(tmp_path / "x"), "--defaults", "--set", "oops")
    assert code == 2
    assert "KEY=VALUE" in err


def test_unknown_option_exit_2(tmp_path: Path) -> None:
    code, _, _ = invoke("init", str(tmp_path / "x"), "--colour")
    assert code == 2


def test_missing_answers_file_exit_2(tmp_path: Path) -> None:
    code, _, err = invoke("init", str(tmp_path / "x"), "--answers", str(tmp_path / "nope.yaml"))
    assert code == 2
    assert "nope.yaml" in err


def test_non_empty_destination_refused_without_force(tmp_path: Path) -> None:
    dest = tmp_path / "x"
    dest.mkdir()
    (dest / "notes.txt").write_text("mine")
    code, _, err = invoke("init", str(dest), "--defaults")
    assert code == 2
    assert "not empty" in err
    assert sorted(p.name for p in dest.iterdir()) == ["notes.txt"]


def test_force_keeps_user_files(tmp_path: Path) -> None:
    dest = tmp_path / "x"
    dest.mkdir()
    (dest / "notes.txt").write_text("mine")
    code, _, _ = invoke("init", str(dest), "--defaults", "--force")
    assert code == 0
    assert (dest / "notes.txt").read_text() == "mine"
    assert (dest / "mlopsctl.yaml").is_file()


def test_destination_is_a_file_exit_2(tmp_path: Path) -> None:
    target = tmp_path / "file"
    target.write_text("x")
    code, _, err = invoke("init", str(target), "--defaults")
    assert code == 2
    assert "not a directory" in err
    assert target.read_text() == "x"


def test_unexpected_error_is_exit_70_without_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mlopsctl.rules.engine as engine

    def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError("kaboom")

    monkeypatch.setattr(engine, "evaluate", boom)
    code, _, err = invoke("init", str(tmp_path / "x"), "--defaults")
    assert code == 70
    assert "internal error: RuntimeError: kaboom" in err
    assert "Traceback" not in err
    assert not (tmp_path / "x").exists()


def test_interrupt_is_exit_130_and_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mlopsctl.render as render

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(render, "render_to", interrupted)
    monkeypatch.setattr(render, "render_tree", interrupted)
    code, _, err = invoke("init", str(tmp_path / "x"), "--defaults")
    assert code == 130
    assert "interrupted" in err
    assert list(tmp_path.iterdir()) == []
