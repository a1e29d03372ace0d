"""The questionnaire's answers as one typed model.

Every field has a type, units in its name where it has units, a help text (``description``), an
example and a default. ``json_schema_extra["required_answer"]`` marks the questions that must be
answered when there is nobody to ask and ``--defaults`` was not given.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from mlopsctl.measured import MeasuredCapacity

ModelType = Literal[
    "classification",
    "regression",
    "clustering",
    "ranking",
    "generative",
    "time-series",
    "recommendation",
    "computer-vision",
    "nlp",
]
Framework = Literal[
    "sklearn",
    "xgboost",
    "lightgbm",
    "pytorch",
    "tensorflow",
    "keras",
    "onnx",
    "huggingface",
    "custom",
]
ModelServer = Literal["auto", "kserve", "seldon", "mlflow", "torchserve", "tf_serving", "triton"]
DeploymentTarget = Literal["batch", "online", "edge", "embedded", "hybrid"]
GovernanceLevel = Literal["experimental", "staging", "production"]
ExistingTool = Literal[
    "mlflow",
    "kubeflow",
    "vertex_ai",
    "sagemaker",
    "azure_ml",
    "databricks",
    "neptune",
    "wandb",
    "custom",
]
Cloud = Literal["none", "gcp", "aws", "azure"]
Regulation = Literal["gdpr", "hipaa", "pci-dss", "sox"]
CiPlatform = Literal["github-actions", "gitlab-ci", "jenkins"]
MaturityLevel = Literal[0, 1, 2]

# Longest suffix the generated manifests append to the project name is "-predictor-00001" (KServe's
# revision name, 16 characters) inside a 63-character DNS label, plus room for a "-canary"
# component name: 63 - 16 - 7 - 4 (safety margin) = 36.
PROJECT_NAME_MAX = 36
_DNS_1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
DESCRIPTION_MAX = 200
# Control characters (C0, DEL, C1), surrogates, line and paragraph separators, and the bidi
# embedding/override/isolate controls that can make text read differently from what it is.
_NOT_ONE_LINE = re.compile(
    r"[\x00-\x1f\x7f-\x9f\ud800-\udfff\u2028\u2029\u202a-\u202e\u2066-\u2069]"
)


def _q(
    help_text: str,
    example: Any,
    *,
    question: str,
    required: bool = False,
    labels: dict[str, str] | None = None,
    **kwargs: Any,
) -> Any:
    extra: dict[str, Any] = {"question": question, "required_answer": required}
    if labels:
        extra["labels"] = labels  # what each choice means, shown beside it at the prompt
    return Field(description=help_text, examples=[example], json_schema_extra=extra, **kwargs)


class ScaleRequirements(BaseModel):
    """How much traffic and data the model must handle. At least one figure is required."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    rps: Annotated[float, Field(ge=0, le=10_000_000)] | None = _q(
        "Peak prediction requests per second the model must sustain, at its online endpoint "
        "or on the device.",
        200,
        question="Peak requests per second",
        default=None,
    )
    latency_ms: Annotated[float, Field(ge=0.001, le=86_400_000)] | None = _q(
        "Latency SLA per prediction at p95, in milliseconds.",
        150,
        question="Latency SLA at p95 (ms)",
        default=None,
    )
    data_volume_gb: Annotated[float, Field(ge=0, le=100_000_000)] | None = _q(
        "Data scored or trained on per run, in gigabytes.",
        20,
        question="Data volume per run (GB)",
        default=None,
    )
    concurrent_users: Annotated[int, Field(ge=0, le=1_000_000_000)] | None = _q(
        "Users calling the model at the same time.",
        50,
        question="Concurrent users",
        default=None,
    )

    @model_validator(mode="after")
    def _at_least_one(self) -> ScaleRequirements:
        if all(getattr(self, name) is None for name in type(self).model_fields):
            raise ValueError(
                "give at least one of rps, latency_ms, data_volume_gb, concurrent_users"
            )
        return self


class Requirements(BaseModel):
    """The answers to the questionnaire: what is built, where it runs, and under which rules."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    project_name: str = _q(
        "Name of the project; becomes the Kubernetes Service, InferenceService and registered "
        f"model name. A DNS-1035 label of at most {PROJECT_NAME_MAX} characters: lowercase "
        "letters, digits and '-', starting with a letter and ending with a letter or digit.",
        "fraud-detection",
        question="Project name",
        required=True,
        default="mlops-demo",
    )
    model_type: ModelType = _q(
        "What the model does.",
        "classification",
        question="Model type",
        required=True,
        default="classification",
    )
    framework: Framework = _q(
        "The framework the model is trained with; it selects the model server and format.",
        "sklearn",
        question="Model framework",
        required=True,
        default="sklearn",
    )
    model_server: ModelServer = _q(
        "The model server to use for online serving, or auto to let the rules pick one by "
        "platform and framework. A server that cannot load the framework's format is refused.",
        "auto",
        question="Model server",
        default="auto",
    )
    deployment_target: DeploymentTarget = _q(
        "Where predictions are made: batch jobs, an online endpoint, edge or embedded devices, "
        "or a hybrid of online and batch.",
        "online",
        question="Deployment target",
        required=True,
        default="online",
    )
    scale_requirements: ScaleRequirements = _q(
        "Traffic and data figures; at least one of rps, latency_ms, data_volume_gb, "
        "concurrent_users.",
        {"rps": 200, "latency_ms": 150},
        question="Scale requirements",
        required=True,
        default=ScaleRequirements(rps=50, latency_ms=200),
    )
    governance_level: GovernanceLevel = _q(
        "How strictly releases are governed; production requires approvals, audit log, model "
        "card and gradual rollout.",
        "staging",
        question="Governance level",
        required=True,
        default="staging",
    )
    existing_stack: list[ExistingTool] = _q(
        "Platforms already in use; they are integrated rather than replaced.",
        ["mlflow"],
        question="Existing MLOps platforms",
        default_factory=list,
    )
    model_size_gb: Annotated[float, Field(gt=0, le=10_000)] = _q(
        "Size of the serialized model, in gigabytes.",
        0.2,
        question="Model size (GB)",
        default=0.1,
    )
    team_size: Annotated[int, Field(ge=1, le=100_000)] = _q(
        "People who build and operate the model.",
        6,
        question="Team size (people)",
        default=5,
    )
    kubernetes: bool = _q(
        "Whether a Kubernetes cluster is available for serving and pipelines.",
        True,
        question="Kubernetes cluster available?",
        default=True,
    )
    cloud: Cloud = _q(
        "Cloud provider, or none for on-premises or a laptop.",
        "none",
        question="Cloud provider",
        default="none",
    )
    gpu: bool = _q(
        "Whether GPUs are available for serving.",
        False,
        question="GPUs available for serving?",
        default=False,
    )
    maturity_level: MaturityLevel = _q(
        "MLOps maturity (Google's model): 0 manual, 1 pipeline automation, 2 CI/CD for pipelines.",
        1,
        question="MLOps maturity level",
        labels={"0": "manual", "1": "pipeline automation", "2": "CI/CD for pipelines"},
        default=1,
    )
    regulations: list[Regulation] = _q(
        "Regulations the model's data or decisions fall under.",
        ["gdpr"],
        question="Regulations that apply",
        default_factory=list,
    )
    explainability_required: bool = _q(
        "Whether predictions must be explainable by mandate.",
        False,
        question="Is explainability mandated?",
        default=False,
    )
    ci_platform: CiPlatform = _q(
        "The CI system that runs tests, validation, training and deployment.",
        "github-actions",
        question="CI platform",
        default="github-actions",
    )
    description: str = _q(
        "One line saying what the model is for; it lands verbatim in the Kubernetes "
        f"annotations and the dashboard. At most {DESCRIPTION_MAX} characters, no control "
        "characters or line breaks.",
        "Scores card transactions for fraud",
        question="Short description",
        default="",
    )
    measured: MeasuredCapacity | None = Field(
        default=None,
        description="One replica's capacity as measured under load (written by `mlopsctl "
        "rehearse --measure`, or by hand from a load test of your own); the sizing uses it "
        "instead of the assumed capacity per model family. Not a question: leave it out until "
        "you have measured.",
        examples=[
            {
                "rps_per_replica": 180.0,
                "p95_ms": 41.0,
                "latency_target_ms": 200.0,
                "concurrency": 8,
                "cpu_cores": 1.0,
                "measured_on": "2026-12-02",
                "machine": "AMD EPYC (2 CPUs)",
                "runtime": "mlserver 1.7.1",
                "tool": "locust 2.47.0",
            }
        ],
    )

    @field_validator("project_name")
    @classmethod
    def _dns_label(cls, value: str) -> str:
        if len(value) > PROJECT_NAME_MAX or not _DNS_1035.match(value):
            raise ValueError(
                f"{value!r} is not a valid name: use a DNS-1035 label of at most "
                f"{PROJECT_NAME_MAX} characters (lowercase letters, digits and '-', starting with "
                "a letter and ending with a letter or digit), e.g. 'fraud-detection'"
            )
        return value

    @field_validator("description")
    @classmethod
    def _one_line(cls, value: str) -> str:
        if len(value) > DESCRIPTION_MAX:
            raise ValueError(
                f"is {len(value)} characters long; a description is at most {DESCRIPTION_MAX}"
            )
        bad = _NOT_ONE_LINE.search(value)
        if bad is not None:
            raise ValueError(
                f"contains the control character U+{ord(bad.group()):04X}; "
                "a description is one line of plain text"
            )
        return value

    @field_validator("maturity_level", mode="before")
    @classmethod
    def _whole_level(cls, value: Any) -> Any:
        # The choices are integers, and True == 1 == 1.0 in Python: without this, `true` and
        # `1.0` would pass for level 1.
        if type(value) is not int:
            raise ValueError(f"{value!r} is not a level; write 0, 1 or 2 as a whole number")
        return value

    @field_validator("existing_stack", "regulations")
    @classmethod
    def _no_duplicates(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("list each value once")
        return sorted(value)


# Fields of the answers file that are no question of the questionnaire: what a measurement found.
NOT_ASKED = frozenset({"measured"})


def required_questions() -> list[str]:
    """Top-level keys that must be answered when nobody can be asked and --defaults is off."""
    out = []
    for name, info in Requirements.model_fields.items():
        extra = info.json_schema_extra
        if isinstance(extra, dict) and extra.get("required_answer"):
            out.append(name)
    return out


def answers_json_schema() -> dict[str, Any]:
    """The JSON Schema of the answers file (``mlopsctl.yaml``), for editors and CI."""
    schema = Requirements.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://mlopsctl.dev/schemas/answers.schema.json"
    return schema
