"""Check definitions (data files), findings and the report ``validate`` returns."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

CATALOG_DIR = Path(__file__).parent / "catalog"
Category = Literal["syntax", "schema", "policy", "consistency", "sync"]
Severity = Literal["error", "warning"]
KeyPath = tuple[str | int, ...]

# The format of a check file, validated as the catalog loads (pydantic would cost a large share
# of a validate run's start-up).
CHECK_FILE_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "additionalProperties": False,
    "required": [
        "id", "name", "title", "category", "rationale", "remediation", "references", "predicate",
    ],
    "properties": {
        "id": {"type": "string", "pattern": r"^MLV\d{3}$"},
        "name": {"type": "string", "pattern": r"^[a-z0-9]+(-[a-z0-9]+)*$"},
        "title": {"type": "string", "minLength": 1},
        "category": {"enum": ["syntax", "schema", "policy", "consistency", "sync"]},
        "severity": {"enum": ["error", "warning"]},
        "rationale": {"type": "string", "minLength": 1},
        "remediation": {"type": "string", "minLength": 1},
        "references": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["title", "url"],
                "properties": {
                    "title": {"type": "string"},
                    "url": {"type": "string", "pattern": "^https://"},
                },
            },
        },
        "predicate": {"type": "string", "pattern": "^[a-z_][a-z0-9_]*$"},
        "parameters": {"type": "object"},
    },
}  # fmt: skip


@dataclass(frozen=True)
class Reference:
    title: str
    url: str


@dataclass(frozen=True)
class CheckSpec:
    """One check as written in ``mlopsctl/checks/catalog/<ID>-<name>.yaml``."""

    id: str
    name: str
    title: str
    category: Category
    rationale: str
    remediation: str
    references: tuple[Reference, ...]
    predicate: str
    severity: Severity = "error"
    parameters: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> CheckSpec:
        def para(text: str) -> str:
            return " ".join(text.split())

        return cls(
            id=data["id"],
            name=data["name"],
            title=para(data["title"]),
            category=data["category"],
            rationale=para(data["rationale"]),
            remediation=para(data["remediation"]),
            references=tuple(Reference(r["title"], r["url"]) for r in data["references"]),
            predicate=data["predicate"],
            severity=data.get("severity", "error"),
            parameters=dict(data.get("parameters") or {}),
        )

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["references"] = [asdict(r) for r in self.references]
        return out


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

    from mlopsctl.checks._jsonschema import SchemaValidator
    from mlopsctl.errors import CatalogError

    validator = SchemaValidator(CHECK_FILE_SCHEMA)
    specs: list[CheckSpec] = []
    seen: dict[str, str] = {}
    for path in sorted(CATALOG_DIR.glob("*.yaml")):
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=yaml.CSafeLoader)
        errors = sorted(validator.iter_errors(data), key=lambda e: list(map(str, e.path)))
        if errors:
            where = "/".join(map(str, errors[0].path)) or "(file)"
            raise CatalogError(f"check file {path.name} is malformed: {where}: {errors[0].message}")
        spec = CheckSpec.from_data(data)
        if not path.name.startswith(f"{spec.id}-{spec.name}."):
            raise CatalogError(f"check file {path.name} must be named {spec.id}-{spec.name}.yaml")
        if spec.id in seen:
            raise CatalogError(f"check id {spec.id} is used by {seen[spec.id]} and {path.name}")
        seen[spec.id] = path.name
        specs.append(spec)
    return tuple(sorted(specs, key=lambda s: s.id))
