"""Check definitions (data files), findings and the report ``validate`` returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

CATALOG_DIR = Path(__file__).parent / "catalog"
Category = Literal["syntax", "schema", "policy", "consistency", "sync"]
Severity = Literal["error", "warning"]
KeyPath = tuple[str | int, ...]


class Reference(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    title: str
    url: str


class CheckSpec(BaseModel):
    """One check as written in ``mlopsctl/checks/catalog/<ID>-<name>.yaml``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^MLV\d{3}$")
    name: str = Field(pattern=r"^[a-z0-9]+(-[a-z0-9]+)*$")
    title: str
    category: Category
    severity: Severity = "error"
    rationale: str
    remediation: str
    references: list[Reference] = Field(min_length=1)
    predicate: str = Field(pattern=r"^[a-z_][a-z0-9_]*$")
    parameters: dict[str, Any] = Field(default_factory=dict)

    @field_validator("rationale", "remediation", "title")
    @classmethod
    def _one_paragraph(cls, value: str) -> str:
        return " ".join(value.split())


@dataclass(frozen=True)
class Finding:
    """One problem in one file. ``line`` is 1-based, None when the finding is about the file."""

    check: str
    path: str
    message: str
    line: int | None = None
    remediation: str = ""
    severity: Severity = "error"

    def sort_key(self) -> tuple[str, int, str, str]:
        return (self.path, self.line or 0, self.check, self.message)


@dataclass(frozen=True)
class Note:
    """Something the run could not do (a tool missing, no design to compare with)."""

    check: str
    message: str


@dataclass
class Report:
    root: Path
    checks: list[CheckSpec]
    findings: list[Finding] = field(default_factory=list)
    notes: list[Note] = field(default_factory=list)
    files_checked: int = 0
    suppressed: int = 0

    @property
    def ok(self) -> bool:
        return not self.findings


@lru_cache(maxsize=1)
def load_catalog() -> tuple[CheckSpec, ...]:
    """Every check, sorted by id. A malformed file is a bug in the product: CatalogError."""
    import yaml

    from mlopsctl.errors import CatalogError

    specs: list[CheckSpec] = []
    seen: dict[str, str] = {}
    for path in sorted(CATALOG_DIR.glob("*.yaml")):
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=yaml.CSafeLoader)
        try:
            spec = CheckSpec.model_validate(data)
        except Exception as exc:
            raise CatalogError(f"check file {path.name} is malformed: {exc}") from None
        if not path.name.startswith(f"{spec.id}-{spec.name}."):
            raise CatalogError(f"check file {path.name} must be named {spec.id}-{spec.name}.yaml")
        if spec.id in seen:
            raise CatalogError(f"check id {spec.id} is used by {seen[spec.id]} and {path.name}")
        seen[spec.id] = path.name
        specs.append(spec)
    return tuple(sorted(specs, key=lambda s: s.id))
