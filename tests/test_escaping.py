"""``yv()``/``jv()`` are the one way values reach generated YAML and JSON, and what they write
reads back as exactly the value, with PyYAML (YAML 1.1) and ruamel (YAML 1.2) alike."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from mlopsctl.escaping import json_value, yaml_value
from mlopsctl.render import template_dir

try:
    _PyLoader: Any = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - PyYAML built without libyaml
    _PyLoader = yaml.SafeLoader

# Fragments that break naive interpolation: YAML 1.1 booleans and nulls, numbers, Jinja and YAML
# syntax, line breaks of every kind, quotes, escapes, non-BMP and invisible characters.
NASTY = [
    "no",
    "No",
    "y",
    "n",
    "on",
    "off",
    "yes",
    "~",
    "null",
    "1e3",
    "0x10",
    "0o7",
    "012",
    "1_000",
    ".inf",
    "-.nan",
    "2024-01-01",
    "{{",
    "}}",
    "{%",
    "%}",
    "{#",
    ": ",
    "- ",
    "? ",
    "#",
    "&a",
    "*a",
    "!!python/object:os.system",
    "!tag",
    "\n",
    "\r\n",
    "\r",
    "\t",
    "'",
    '"',
    "\\",
    "\\n",
    "\\u0041",
    "😀",
    "👩\u200d💻",
    "\U0010ffff",
    "\U0001d54f",
    "\x00",
    "\x07",
    "\x1b[31m",
    "\x7f",
    "\x85",
    "\x9f",
    "\u2028",
    "\u2029",
    "\ufeff",
    "\ufffe",
    "\uffff",
    "\u202e",
    "\xa0",
    "---",
    "...",
    "|",
    ">-",
    "@",
    "`",
    "%",
    " ",
    "  ",
    "[",
    "]",
    "{",
    "}",
    ",",
    "<<",
    "=",
    "../",
    "/etc/passwd",
    "$(rm -rf /)",
    "${HOME}",
]
# Every code point a Python str from UTF-8 input can hold (surrogates cannot be encoded).
TEXT = st.text(alphabet=st.characters(exclude_categories=("Cs",)), max_size=40)
STRINGS = st.one_of(
    TEXT,
    st.lists(st.one_of(st.sampled_from(NASTY), TEXT), min_size=1, max_size=6).map("".join),
)
BATCH = 50


def _ruamel(typ: str) -> YAML:
    y = YAML(typ=typ, pure=True)
    return y


def _readers(document: str, round_trip: bool = True) -> list[Any]:
    out = [yaml.load(document, Loader=_PyLoader), _ruamel("safe").load(document)]
    if round_trip:  # the loader answers files are read with
        out.append(_ruamel("rt").load(document))
    return out


def _yaml_document(values: list[str]) -> str:
    """Each value in the places templates put them: a block value, a list item, a flow list."""
    lines = [f"k{i}: {yaml_value(v)}" for i, v in enumerate(values)]
    lines.append("items:")
    lines += [f"  - {yaml_value(v)}" for v in values]
    lines.append("flow: [" + ", ".join(yaml_value(v) for v in values) + "]")
    return "\n".join(lines) + "\n"


def _yaml_expected(values: list[str]) -> dict[str, Any]:
    expected: dict[str, Any] = {f"k{i}": v for i, v in enumerate(values)}
    expected["items"] = values
    expected["flow"] = values
    return expected


@pytest.mark.slow
def test_yaml_and_json_values_round_trip_20000_strings() -> None:
    seen = {"strings": 0}

    @settings(
        max_examples=20_000 // BATCH,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        database=None,
    )
    @given(st.lists(STRINGS, min_size=BATCH, max_size=BATCH))
    def round_trip(values: list[str]) -> None:
        document = _yaml_document(values)
        expected = _yaml_expected(values)
        for read in _readers(document, round_trip=False):
            assert dict(read) == expected, document
        array = "[" + ", ".join(json_value(v) for v in values) + "]"
        assert json.loads(array) == values
        for read in _readers(array, round_trip=False):
            assert list(read) == values, array
        seen["strings"] += len(values)

    round_trip()
    assert seen["strings"] >= 20_000


@pytest.mark.parametrize("fragment", NASTY)
def test_each_nasty_fragment_round_trips(fragment: str) -> None:
    for value in (fragment, f"a{fragment}b", fragment * 3):
        for read in _readers(f"v: {yaml_value(value)}\n"):
            assert read["v"] == value
        assert json.loads(json_value(value)) == value
        for read in _readers(f"v: {json_value(value)}\n"):
            assert read["v"] == value


@settings(max_examples=500, deadline=None, database=None)
@given(
    st.one_of(
        st.integers(),
        st.floats(allow_nan=True, allow_infinity=True),
        st.booleans(),
        st.none(),
        st.lists(st.integers(min_value=0, max_value=100), max_size=5),
        st.dictionaries(st.sampled_from(["a", "no", "1", "{{"]), STRINGS, max_size=3),
    )
)
def test_non_strings_keep_their_type(value: Any) -> None:
    for read in _readers(f"v: {yaml_value(value)}\n"):
        got = read["v"]
        if isinstance(value, float) and math.isnan(value):
            assert isinstance(got, float) and math.isnan(got)
            continue
        assert got == value
        if isinstance(value, bool) or value is None:
            assert got is value
        elif isinstance(value, float | str):
            assert isinstance(got, type(value))
        elif isinstance(value, int):
            assert isinstance(got, int) and not isinstance(got, bool)


@settings(max_examples=2000, deadline=None, database=None)
@given(st.floats(allow_nan=False, allow_infinity=False) | st.sampled_from([5e-324, 1e16, -1e-7]))
def test_json_value_floats_read_back_as_floats_everywhere(value: float) -> None:
    """``1e+16`` is a string to YAML 1.1 readers; ``1.0e+16`` is the float to every reader."""
    text = json_value({"v": value, "s": f"{value!r}"})
    assert json.loads(text) == {"v": value, "s": f"{value!r}"}  # strings keep their spelling
    for read in _readers(f"doc: {text}\n"):
        got = read["doc"]["v"]
        assert isinstance(got, float) and got == value


def test_json_value_refuses_what_json_cannot_spell() -> None:
    with pytest.raises(ValueError):
        json_value(float("nan"))
    with pytest.raises(ValueError):
        json_value(float("inf"))


def test_json_value_never_writes_surrogate_pair_escapes() -> None:
    # Jinja's tojson (ensure_ascii) writes these; YAML readers turn them into two broken characters.
    assert "\\ud83d" not in json_value("😀")
    assert yaml.load(f"v: {json_value('😀')}", Loader=_PyLoader)["v"] == "😀"


# ---- No template can bypass yv()/jv() ----

_RAW = re.compile(r"{%-?\s*raw\s*-?%}.*?{%-?\s*endraw\s*-?%}", re.S)
_COMMENT = re.compile(r"{#.*?#}", re.S)
_EXPR = re.compile(r"{{-?(.*?)-?}}", re.S)
_STATEMENT = re.compile(r"{%-?\s*(\w+)", re.S)
# Statements that can put text into the output without going through yv()/jv().
_FORBIDDEN_STATEMENTS = {"include", "import", "from", "macro", "call", "filter", "extends", "block"}
# Whole documents emitted by a YAML or JSON library in render.context(): the file is the one
# expression and nothing else.
WHOLE_DOCUMENTS = {"answers_yaml", "design_json", "state_json", "answers_schema_json"}


def _is_one_call(expression: str) -> bool:
    """``yv(...)`` or ``jv(...)`` and nothing after the call's closing parenthesis."""
    text = expression.strip()
    if not (text.startswith("yv(") or text.startswith("jv(")):
        return False
    depth = 0
    quote: str | None = None
    i = 2
    while i < len(text):
        ch = text[i]
        if quote:
            if ch == "\\":
                i += 2
                continue
            if ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth == 0:
                return i == len(text) - 1
        i += 1
    return False


def bypasses(source: str) -> list[str]:
    """Expressions and statements in a YAML/JSON template that do not go through yv()/jv()."""
    stripped = _COMMENT.sub("", _RAW.sub("", source))
    expressions = [m.group(1) for m in _EXPR.finditer(stripped)]
    whole = len(expressions) == 1 and stripped.strip() == "{{ " + expressions[0].strip() + " }}"
    if whole and expressions[0].strip() in WHOLE_DOCUMENTS:
        return []
    bad = [f"{{{{{e}}}}}" for e in expressions if not _is_one_call(e)]
    bad += [
        f"{{% {m.group(1)} %}}"
        for m in _STATEMENT.finditer(stripped)
        if m.group(1) in _FORBIDDEN_STATEMENTS
    ]
    return bad


def _data_templates() -> list[Path]:
    out = []
    for path in sorted(template_dir().rglob("*")):
        if not path.is_file():
            continue
        name = re.sub(r"{%.*?%}", "", path.name).removesuffix(".jinja")
        if name.endswith((".yaml", ".yml", ".json")) and path.name.endswith(".jinja"):
            out.append(path)
    return out


def test_there_are_yaml_and_json_templates_to_scan() -> None:
    names = [p.name for p in _data_templates()]
    assert any(".yaml" in n for n in names) and any(".json" in n for n in names)


@pytest.mark.parametrize(
    "path", _data_templates(), ids=lambda p: str(p.relative_to(template_dir()))
)
def test_yaml_and_json_templates_interpolate_only_through_yv_and_jv(path: Path) -> None:
    assert bypasses(path.read_text(encoding="utf-8")) == []


@pytest.mark.parametrize(
    ("source", "ok"),
    [
        ("name: {{ yv(req.project_name) }}\n", True),
        ("name: {{- yv(req.project_name ~ '-x') -}}\n", True),
        ("expr: rate(x{job={{ yv(a) }}}[5m])\n", True),
        ('summary: {% raw %}"{{ $value }}"{% endraw %}\n', True),
        ("{# {{ not output }} #}\nname: {{ jv(a) }}\n", True),
        ("{{ answers_yaml }}", True),
        ("name: {{ req.project_name }}\n", False),
        ("name: {{ req.project_name | tojson }}\n", False),
        ('name: "{{ x }}"\n', False),
        ("name: {{ yv(a) ~ 'b' }}\n", False),
        ("name: {{ yv(a) | upper }}\n", False),
        ("name: {{ yv(a) }}{{ b }}\n", False),
        ("{% include 'other.yaml' %}\n", False),
        ("x: 1\n{{ answers_yaml }}", False),
    ],
)
def test_the_scanner_catches_bypasses(source: str, ok: bool) -> None:
    assert (bypasses(source) == []) is ok
