"""Errors of a rehearsal that stop it before any handoff is checked."""

from __future__ import annotations

from mlopsctl.errors import ExitCode, MlopsctlError, UsageError


class MissingToolError(MlopsctlError):
    """A local tool the rehearsal needs is missing; the hint says how to install it."""

    exit_code = ExitCode.USAGE


class ProjectError(UsageError):
    """The directory is not a generated repository the rehearsal can run (a file is missing or
    does not say what the rehearsal reads from it)."""


class NotRehearsable(MlopsctlError):
    """A part of the project the rehearsal cannot run yet (an image base it does not know):
    reported as a failed handoff of its component, not as bad input."""

    exit_code = ExitCode.FINDINGS
