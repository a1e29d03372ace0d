"""Reference docs are generated from the code's data; the checked-in copies must be current."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlopsctl.docsgen import DOCS, PACKAGE_DATA, render_all, render_package_data

DOCS_DIR = Path(__file__).resolve().parent.parent / "docs"
PACKAGE_DIR = Path(__file__).resolve().parent.parent / "mlopsctl"


_WRITTEN_BY_MAKE_DOCS = {
    "docs": (DOCS_DIR, render_all),
    "mlopsctl": (PACKAGE_DIR, render_package_data),
}


@pytest.mark.parametrize(
    ("top", "rel"),
    [("docs", rel) for rel in sorted(DOCS)] + [("mlopsctl", rel) for rel in sorted(PACKAGE_DATA)],
)
def test_file_written_by_make_docs_is_current(top: str, rel: str) -> None:
    base, render = _WRITTEN_BY_MAKE_DOCS[top]
    path = base / rel
    assert path.is_file(), f"{top}/{rel} is missing: run `make docs`"
    assert path.read_text(encoding="utf-8") == render()[rel], (
        f"{top}/{rel} is stale: run `make docs` and commit the result"
    )
