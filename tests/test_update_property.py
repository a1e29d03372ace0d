"""Property: for any user edit and any answer change, update loses no user line and reports
every conflict with exit 3 (and only then)."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.test_update import (
    CHANGES,
    commit,
    conflicted_files,
    copy_repo,
    fresh,
    make_project,
    run_update,
    tree,
)

# Text files the user may edit (mlopsctl.yaml is the input and has its own tests).
TARGETS = [
    ".github/workflows/ci.yaml",
    "Makefile",
    "README.md",
    "docs/decisions.md",
    "k8s/inferenceservice.yaml",
    "k8s/tracking-server.yaml",
    "monitoring/alerts.yaml",
    "monitoring/grafana-dashboard.json",
    "requirements.txt",
    "src/train.py",
]

edits = st.lists(
    st.tuples(
        st.sampled_from(TARGETS),
        st.sampled_from(["insert", "replace", "delete"]),
        st.floats(min_value=0, max_value=1),
    ),
    min_size=1,
    max_size=3,
)


class Workspace:
    """A committed project with the defaults and fresh generations for every answer change."""

    def __init__(self, root: Path) -> None:
        self.project = make_project(root / "demo")
        self.base = tree(self.project)
        self.fresh = {tuple(s): fresh(root / f"fresh{i}", s) for i, s in enumerate(CHANGES)}

    def __repr__(self) -> str:
        return f"Workspace({self.project})"


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    return Workspace(tmp_path_factory.mktemp("property"))


def apply_edits(project: Path, plan: list[tuple[str, str, float]]) -> dict[str, list[str]]:
    """Apply the edits; return, per file, the lines the user wrote (each unique)."""
    written: dict[str, list[str]] = {}
    for n, (rel, kind, where) in enumerate(plan):
        path = project / rel
        lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
        i = max(0, min(int(where * len(lines)), len(lines) - 1))
        mine = f"# user edit {n} in {rel}\n"
        if kind != "insert" and lines:  # an emptied file has no line left to remove
            gone = lines.pop(i).rstrip("\n")  # a later edit may undo an earlier one
            if gone in written.get(rel, []):
                written[rel].remove(gone)
        if kind != "delete":
            lines.insert(i, mine)
            written.setdefault(rel, []).append(mine.rstrip("\n"))
        path.write_text("".join(lines), encoding="utf-8")
    return written


@pytest.mark.slow
@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(plan=edits, sets=st.sampled_from(CHANGES))
def test_no_user_line_lost_and_conflicts_exit_3(
    workspace: Workspace, plan: list[tuple[str, str, float]], sets: list[str]
) -> None:
    base, expected = workspace.base, workspace.fresh[tuple(sets)]
    with tempfile.TemporaryDirectory() as tmp:
        project = copy_repo(workspace.project, Path(tmp) / "demo")
        written = apply_edits(project, plan)
        ours = tree(project)
        commit(project, "User edits")

        result = run_update(project, *[a for s in sets for a in ("--set", s)])
        got = tree(project)
        marked = conflicted_files(project)
        reported = set(re.findall(r"^  (\S+): \d+ conflicts?$", result.stderr, re.MULTILINE))

        # Conflicts are marked, listed, and exit 3 -- and only then.
        assert result.exit_code in (0, 3), result.output
        assert marked == reported
        assert (result.exit_code == 3) == bool(marked)
        # No line the user wrote is lost: it is in the file, merged or inside a conflict.
        for rel, lines in written.items():
            assert rel in got, f"{rel} was removed although the user edited it"
            text = got[rel].decode().splitlines()
            for line in lines:
                assert line in text, f"{line!r} lost from {rel}"
        edited = {rel for rel, _, _ in plan if ours.get(rel) != base.get(rel)}
        for rel in set(base) | set(expected):
            if rel.startswith(".mlopsctl/") or rel == "mlopsctl.yaml":
                continue
            if rel not in edited:
                # Untouched by the user: exactly the new generation (or gone with it).
                assert got.get(rel) == expected.get(rel), rel
            elif base.get(rel) == expected.get(rel):
                # The generation did not change it: the user's version, byte for byte.
                assert got[rel] == ours[rel], rel
        assert not any(p.name.startswith(".mlopsctl-") for p in Path(tmp).iterdir())
