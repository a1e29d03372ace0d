"""The hostile-input corpus (tests/data/hostile.yaml) through ``mlopsctl init``.

Every case is either refused before anything is written (exit 2, the message names the field,
the destination unchanged byte for byte, no temporary files left) or generated, with the value
reading back as exactly itself from every generated YAML and JSON file that carries it.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from ruamel.yaml import YAML
from typer.testing import CliRunner

from mlopsctl.cli.app import app

CORPUS = Path(__file__).parent / "data" / "hostile.yaml"
CASES: list[dict[str, Any]] = yaml.safe_load(CORPUS.read_text(encoding="utf-8"))["cases"]
SENTINEL = b"user file: must survive untouched\n"


def test_the_corpus_is_large_and_covers_both_outcomes() -> None:
    names = [c["name"] for c in CASES]
    assert len(names) == len(set(names))
    assert len(CASES) >= 60
    accepted = [c for c in CASES if "accept" in c or "accept_repeat" in c]
    rejected = [c for c in CASES if "reject" in c]
    assert len(accepted) >= 20 and len(rejected) >= 40
    assert len(accepted) + len(rejected) == len(CASES)
    assert any("set" in c for c in rejected) and any("answers" in c for c in rejected)


def _answers_bytes(case: dict[str, Any]) -> bytes | None:
    if "answers" in case:
        return str(case["answers"]).encode("utf-8")
    if "answers_bytes" in case:
        value = ast.literal_eval(case["answers_bytes"])
        assert isinstance(value, bytes)
        return value
    if "answers_repeat" in case:
        spec = case["answers_repeat"]
        if "raw" in spec:
            return (spec.get("prefix", "") + spec["raw"] * spec["count"]).encode("utf-8")
        return f'{spec["key"]}: "{spec["char"] * spec["count"]}"\n'.encode()
    return None


def _expected(case: dict[str, Any]) -> dict[str, Any]:
    if "accept_repeat" in case:
        spec = case["accept_repeat"]
        return {spec["key"]: spec["char"] * spec["count"]}
    expected: dict[str, Any] = case["accept"]
    return expected


def snapshot(root: Path) -> dict[str, Any]:
    """Every entry below ``root`` with its type, mode and bytes (symlinks not followed)."""
    out: dict[str, Any] = {}
    if not root.exists() and not root.is_symlink():
        return {"": None}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in sorted(dirnames + filenames):
            path = Path(dirpath) / name
            st = path.lstat()
            rel = str(path.relative_to(root))
            if path.is_symlink():
                out[rel] = ("link", os.readlink(path))
            elif path.is_dir():
                out[rel] = ("dir", st.st_mode)
            else:
                out[rel] = ("file", st.st_mode, path.read_bytes())
    out[""] = ("root", root.lstat().st_mode)
    return out


def leftovers(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if p.name.startswith(".mlopsctl-"))


def _readers(text: str, round_trip: bool) -> Iterator[tuple[str, list[Any]]]:
    yield "pyyaml", list(yaml.load_all(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)))
    yield "ruamel-safe", list(YAML(typ="safe", pure=True).load_all(text))
    if round_trip:  # how mlopsctl itself reads answers files
        yield "ruamel-rt", list(YAML(typ="rt").load_all(text))


# Where answers land; the JSON Schema of the answers file carries none of them.
_CARRIERS = ("mlopsctl.yaml", ".mlopsctl/design.json", "k8s/", "monitoring/", "pipelines/")


def parse_all(root: Path) -> dict[str, list[tuple[str, list[Any]]]]:
    """Every generated YAML and JSON file that carries answers, read by every reader (JSON
    also as YAML)."""
    parsed: dict[str, list[tuple[str, list[Any]]]] = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if path.suffix not in {".yaml", ".yml", ".json"} or not path.is_file():
            continue
        if not rel.startswith(_CARRIERS):
            continue
        text = path.read_text(encoding="utf-8")
        results = list(_readers(text, round_trip=rel == "mlopsctl.yaml"))
        if path.suffix == ".json":
            results.append(("json", [json.loads(text)]))
        parsed[str(path.relative_to(root))] = results
    return parsed


def _find(node: Any, key: str) -> Iterator[Any]:
    if isinstance(node, dict):
        for k, v in node.items():
            if k == key:
                yield v
            yield from _find(v, key)
    elif isinstance(node, list):
        for item in node:
            yield from _find(item, key)


def check_lands(root: Path, field: str, value: Any) -> int:
    """``value`` reads back as itself wherever ``field`` lands; returns the places checked."""
    parsed = parse_all(root)
    checked = 0
    for reader, docs in parsed["mlopsctl.yaml"]:
        assert docs[0][field] == value, reader
        assert type(docs[0][field]) in {type(value), *type(value).__subclasses__()} or (
            isinstance(value, str) and isinstance(docs[0][field], str)
        )
        checked += 1
    for reader, docs in parsed[".mlopsctl/design.json"]:
        assert docs[0]["requirements"][field] == value, reader
        checked += 1
    if field == "description":
        places = 0
        for rel, results in parsed.items():
            for reader, docs in results:
                for found in _find(docs, "mlopsctl.dev/description"):
                    assert found == value, (rel, reader)
                    places += 1
                if rel.endswith(".json") and rel.startswith("monitoring/"):
                    assert docs[0]["description"] == value, (rel, reader)
                    places += 1
        assert places >= 2, "the description lands in no manifest or dashboard"
        checked += places
    if field == "project_name":
        names = [
            d["metadata"]["name"]
            for results in parsed.values()
            for _, docs in results
            for d in docs
            if isinstance(d, dict) and d.get("kind") == "InferenceService"
        ]
        assert names and all(n == value for n in names)
        checked += len(names)
    return checked


def _args(case: dict[str, Any], tmp: Path) -> list[str]:
    args: list[str] = []
    if "answers_path" in case:
        args += ["--answers", str(case["answers_path"])]
    content = _answers_bytes(case)
    if content is not None:
        answers = tmp / "answers.yaml"
        answers.write_bytes(content)
        args += ["--answers", str(answers)]
    for option in case.get("set", []):
        args += ["--set", option]
    if "set_repeat" in case:
        spec = case["set_repeat"]
        args += ["--set", spec["prefix"] + spec["raw"] * spec["count"]]
    return args


def _prepared_destination(tmp: Path) -> Path:
    dest = tmp / "hostile-out"
    (dest / "docs").mkdir(parents=True)
    (dest / "keep.txt").write_bytes(SENTINEL)
    (dest / "README.md").write_bytes(SENTINEL)  # a file generation would replace
    return dest


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_hostile_case(case: dict[str, Any], tmp_path: Path) -> None:
    dest = _prepared_destination(tmp_path)
    before = snapshot(dest)
    args = ["init", str(dest), "--defaults", "--force", *_args(case, tmp_path)]
    result = CliRunner().invoke(app, args)
    if "reject" in case:
        field = str(case["reject"])
        assert result.exit_code == 2, result.output
        assert "error:" in result.output.lower(), result.output
        if field == "(file)":
            assert str(tmp_path / "answers.yaml") in result.output, result.output
        else:
            assert field in result.output, result.output
        assert "Traceback" not in result.output
        assert snapshot(dest) == before
    else:
        assert result.exit_code == 0, result.output
        for field, value in _expected(case).items():
            assert check_lands(dest, field, value) >= 2
        assert (dest / "keep.txt").read_bytes() == SENTINEL
    assert leftovers(tmp_path) == []


def test_rejections_into_a_missing_destination_create_nothing(tmp_path: Path) -> None:
    dest = tmp_path / "a" / "b"
    for case in [c for c in CASES if "reject" in c][:20]:
        result = CliRunner().invoke(app, ["init", str(dest), "--defaults", *_args(case, tmp_path)])
        assert result.exit_code == 2, (case["name"], result.output)
        assert not (tmp_path / "a").exists()
        assert leftovers(tmp_path) == []


@pytest.mark.slow
@pytest.mark.parametrize(
    "name", ["newline-injection-via-set", "yaml11-no-via-set", "billion-laughs", "name-no"]
)
def test_hostile_case_through_a_real_process(name: str, tmp_path: Path) -> None:
    case = next(c for c in CASES if c["name"] == name)
    dest = _prepared_destination(tmp_path)
    before = snapshot(dest)
    cmd = [sys.executable, "-m", "mlopsctl", "init", str(dest), "--defaults", "--force"]
    proc = subprocess.run(
        [*cmd, *_args(case, tmp_path)], capture_output=True, text=True, timeout=120, check=False
    )
    if "reject" in case:
        assert proc.returncode == 2, proc.stderr
        assert str(case["reject"]) in proc.stderr
        assert snapshot(dest) == before
    else:
        assert proc.returncode == 0, proc.stderr
        for field, value in _expected(case).items():
            check_lands(dest, field, value)
    assert leftovers(tmp_path) == []
