"""One replica's capacity as measured under load: the ``measured`` section of ``mlopsctl.yaml``.

``mlopsctl rehearse --measure`` load-tests the real serving runtime held to the pod's CPU limit
and writes what one replica sustained there; the sizing rules then read it instead of the
assumed capacity per model family (``mlopsctl.rules.sizing.CAPACITY_RPS``), so replicas and
the autoscaler's concurrency target come from measurement. A project's answers file is the one
source of its generation (``update``, ``validate``'s in-sync check and the recorded design all
read it), so the measurement lives there, next to the SLA it was measured against. It can be
written by hand too: figures from a load test in staging belong here as well.
"""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

# The key of the section in mlopsctl.yaml.
SECTION = "measured"

_Text = Annotated[str, Field(min_length=1, max_length=200)]


class MeasuredCapacity(BaseModel):
    """What one replica of the serving runtime sustained in a load test."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    rps_per_replica: Annotated[float, Field(gt=0, le=10_000_000)] = Field(
        description="Requests per second one replica sustained with its p95 latency within the "
        "SLA and no errors.",
        examples=[180.0],
    )
    p95_ms: Annotated[float, Field(gt=0, le=86_400_000)] = Field(
        description="p95 latency at that throughput, in milliseconds.", examples=[41.0]
    )
    latency_target_ms: Annotated[float, Field(gt=0, le=86_400_000)] = Field(
        description="The p95 latency SLA the load test stepped up to, in milliseconds.",
        examples=[200.0],
    )
    concurrency: Annotated[int, Field(ge=1, le=1_000_000)] = Field(
        description="Requests in flight (load-test users) at that throughput.", examples=[8]
    )
    cpu_cores: Annotated[float, Field(gt=0, le=1024)] = Field(
        description="CPU cores the replica was held to (the pod's CPU limit where the machine "
        "allowed it, else the cores it ran on).",
        examples=[1.0],
    )
    measured_on: str = Field(description="Date of the load test (YYYY-MM-DD).")
    machine: _Text = Field(description="The machine measured on: CPU model and core count.")
    runtime: _Text = Field(description="The serving runtime and its version.")
    tool: _Text = Field(description="The load-test tool and its version.")
    report: Annotated[str, Field(max_length=200)] | None = Field(
        default=None, description="The load test's report, relative to the project root."
    )

    @field_validator("measured_on", mode="before")
    @classmethod
    def _iso_date(cls, value: Any) -> Any:
        if isinstance(value, datetime.date):  # an unquoted date in YAML
            return value.isoformat()
        if isinstance(value, str):
            try:
                datetime.date.fromisoformat(value)
            except ValueError:
                raise ValueError(f"{value!r} is not a date; write YYYY-MM-DD") from None
        return value

    def summary(self) -> str:
        """``measured 2026-12-02 on 1 core: 180 rps at p95 41 ms``."""
        cores = f"{self.cpu_cores:g} core{'' if self.cpu_cores == 1 else 's'}"
        return (
            f"measured {self.measured_on} on {cores}: {self.rps_per_replica:g} rps at p95 "
            f"{self.p95_ms:g} ms"
        )


def write(answers_file: Path, measured: MeasuredCapacity) -> None:
    """Set the ``measured`` section of ``answers_file``, every other line kept as written
    (comments included); replaced atomically, with the file's owner and mode."""
    import io
    import os
    import tempfile

    from ruamel.yaml import YAML
    from ruamel.yaml.comments import CommentedMap

    yaml = YAML(typ="rt", pure=True)
    yaml.width = 100
    yaml.indent(mapping=2, sequence=4, offset=2)
    text = answers_file.read_text(encoding="utf-8")
    doc = yaml.load(text)
    if not isinstance(doc, CommentedMap):
        doc = CommentedMap()
    section = CommentedMap()
    for name, value in measured.model_dump(mode="json", exclude_none=True).items():
        section[name] = value
    had = SECTION in doc
    doc[SECTION] = section
    if not had:
        doc.yaml_set_comment_before_after_key(SECTION, before=SECTION_COMMENT, indent=0)
    out = io.StringIO()
    yaml.dump(doc, out)
    info = answers_file.stat()
    fd, tmp = tempfile.mkstemp(dir=answers_file.parent, prefix=".mlopsctl.yaml.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(out.getvalue())
        os.chmod(tmp, info.st_mode & 0o7777)
        if os.geteuid() == 0:
            os.chown(tmp, info.st_uid, info.st_gid)
        os.replace(tmp, answers_file)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


SECTION_COMMENT = (
    "One replica's capacity measured under load (mlopsctl rehearse --measure); the sizing uses "
    "it instead of the assumed capacity. Delete the section to go back to the assumption."
)
