"""One hierarchy of typed errors. Each carries a message, a hint and the exit code the CLI uses."""

from __future__ import annotations

from dataclasses import dataclass


class ExitCode:
    OK = 0
    FINDINGS = 1  # validate findings, or rule conflicts under --strict
    USAGE = 2  # usage error or invalid answers
    UPDATE_CONFLICTS = 3
    ABORTED = 4  # requirements hit an abort rule
    INTERNAL = 70
    OUTPUT = 74  # standard output is closed or full: the report could not be written
    INTERRUPTED = 130


class MlopsctlError(Exception):
    """Base of every error the core raises on purpose."""

    exit_code: int = ExitCode.INTERNAL

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class UsageError(MlopsctlError):
    exit_code = ExitCode.USAGE


@dataclass(frozen=True)
class FieldProblem:
    """One problem with one answer: which key, where it came from, what is wrong."""

    key: str
    message: str
    source: str | None = None  # file path, "--set", or None for defaults/prompt
    line: int | None = None

    def render(self) -> str:
        where = ""
        if self.source:
            where = f"{self.source}:{self.line}: " if self.line else f"{self.source}: "
        return f"{where}{self.key}: {self.message}"


class AnswersError(UsageError):
    """Answers that do not form a valid set of requirements."""

    def __init__(self, problems: list[FieldProblem], hint: str | None = None) -> None:
        self.problems = problems
        lines = [p.render() for p in problems]
        message = "invalid answers:\n" + "\n".join(f"  {line}" for line in lines)
        super().__init__(message, hint)


class MissingAnswersError(UsageError):
    """Required answers are missing and there is nobody to ask."""

    def __init__(self, missing: list[str]) -> None:
        self.missing = missing
        super().__init__(
            "missing required answers: " + ", ".join(missing),
            hint="give them with --answers FILE or --set KEY=VALUE, "
            "or use --defaults to take the default of every unanswered question",
        )


class RuleAbort(MlopsctlError):
    """The requirements hit an abort rule: an incompatible or infeasible combination."""

    exit_code = ExitCode.ABORTED

    def __init__(self, rule_id: str, message: str, remediation: str) -> None:
        self.rule_id = rule_id
        super().__init__(f"{rule_id}: {message}", hint=remediation)


class RuleConflictError(MlopsctlError):
    """Two fired rules set one choice differently and --strict was given."""

    exit_code = ExitCode.FINDINGS


class CatalogError(MlopsctlError):
    """A rule file in the catalog is malformed. This is a bug in the product or a custom rule."""

    exit_code = ExitCode.INTERNAL


class GenerationError(MlopsctlError):
    """Writing the generated repository failed; the destination is left as it was."""

    exit_code = ExitCode.USAGE


class Interrupted(MlopsctlError):
    """SIGINT or SIGTERM arrived while output was being moved into place; the move was
    completed first, so the message says what is now on disk."""

    exit_code = ExitCode.INTERRUPTED


class DestinationError(UsageError):
    """The destination cannot take a generated repository."""


class OutputError(MlopsctlError):
    """Standard output is closed, full or gone (a closed pipe): the report could not be written."""

    exit_code = ExitCode.OUTPUT
