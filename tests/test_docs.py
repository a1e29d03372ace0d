"""Reference docs are generated from the code's data; the checked-in copies must be current."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlopsctl.docsgen import DOCS, PACKAGE_DATA, render_all, render_package_data

DOCS_DIR = Path(__file__).resolve().parent.parent / "docs"
PACKAGE_DIR = Path(__file__).resolve().parent.parent / "mlopsctl"


@pytest.mark.parametrize("rel", sorted(DOCS))
def test_checked_in_doc_is_current(rel: str) -> None:
    path = DOCS_DIR / rel
    assert path.is_file(), f"docs/{rel} is missing: run `make docs`"
    assert path.read_text(encoding="utf-8") == render_all()[rel], (
        f"docs/{rel} is stale: run `make docs` and commit the result"
    )


@pytest.mark.parametrize("rel", sorted(PACKAGE_DATA))
def test_shipped_generated_file_is_current(rel: str) -> None:
    path = PACKAGE_DIR / rel
    assert path.is_file(), f"mlopsctl/{rel} is missing: run `make docs`"
    assert path.read_text(encoding="utf-8") == render_package_data()[rel], (
        f"mlopsctl/{rel} is stale: run `make docs` and commit the result"
    )
