"""The generated docs/decisions.md: one entry per rule (its reason once, everything it set, its
sources), then the table of every value."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from mlopsctl.render import generate
from tests.generated_cases import CASES


def _choice(value: Any) -> str:
    return "-" if value is None else str(value)


def _one_line(text: str) -> str:
    return text.replace("\n", " ").strip()


@pytest.mark.parametrize(
    "case", ["defaults", "lifecycle-production-xgboost-gdpr", "variant-progressive-lifecycle"]
)
def test_each_rule_once_with_everything_it_set(tmp_path: Path, case: str) -> None:
    design = CASES[case].design()
    generate(design, tmp_path / "p")
    doc = (tmp_path / "p" / "docs" / "decisions.md").read_text(encoding="utf-8")
    by_rule, table = doc.split("\n## Decisions by rule\n")[1].split("\n## Every value\n")
    table = table.split("\n## ")[0]
    sections = dict(
        (m.group(1), m.group(2))
        for m in re.finditer(r"^### (\S+)\n(.*?)(?=^### |\Z)", by_rule, re.M | re.S)
    )
    decisions = design.json_dict()["decisions"]
    rules = list(dict.fromkeys(d["rule"] for d in decisions))
    assert list(sections) == rules  # one entry per rule, in the order the rules decided
    assert doc.count("\n### ") == len(rules)
    repeated = 0
    for rule in rules:
        made = [d for d in decisions if d["rule"] == rule]
        text = sections[rule]
        for reason in {_one_line(d["reason"]) for d in made}:
            assert text.count(reason) == 1, (rule, reason)
            repeated += sum(_one_line(d["reason"]) == reason for d in made) - 1
        for d in made:
            assert f"- `{d['capability']}` = {_choice(d['choice'])}" in text, (rule, d)
            if d["formula"]:
                assert f"formula `{d['formula']}`" in text
        for url in {r["url"] for d in made for r in d["references"]}:
            assert text.count(f"]({url})") == 1, (rule, url)
    assert repeated > 0, "the case has a rule that sets several values for one reason"
    rows = [line for line in table.splitlines() if line.startswith("| ")][2:]
    assert rows == [
        f"| {d['capability']} | {_choice(d['choice'])} | {d['rule']} |" for d in decisions
    ]
    assert "\n\n\n" not in doc.split("\n## Every value\n")[0]
