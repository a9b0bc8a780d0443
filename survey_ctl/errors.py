"""One exception hierarchy; the CLI boundary (`survey_ctl.cli.main`) prints it.

Every error carries a message (what is wrong), an optional hint (what to do) and the
exit code of the topology contract: 1 for a failed operation or check, 2 for a usage
or topology error where nothing was touched. Messages never contain secrets.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2


class SurveyctlError(Exception):
    """Base of every error surveyctl reports to the user."""

    exit_code = EXIT_FAILED

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class UsageError(SurveyctlError):
    """Bad command-line usage; nothing was touched."""

    exit_code = EXIT_USAGE


class ConfigError(UsageError):
    """The topology file is invalid; nothing was touched."""


class OperationError(SurveyctlError):
    """An operation or check failed on a host."""


class HostError(OperationError):
    """A host could not be reached or refused us (SSH, Docker)."""

    def __init__(self, host: str, message: str, hint: str | None = None) -> None:
        super().__init__(f"{host}: {message}", hint)
        self.host = host


class HostKeyMismatch(HostError):
    """The host presented a key that differs from known_hosts."""


class LabError(OperationError):
    """The local lab could not be built, started or removed."""
