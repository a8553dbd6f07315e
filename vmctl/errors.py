"""The one user-error type and the exit codes every command uses.

A :class:`VmctlError` is what a user can fix: it is caught once, at the CLI boundary, and
printed as ``error: …`` and ``hint: …``.  Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import enum


class ExitCode(enum.IntEnum):
    """Exit statuses of ``vmctl``; stable, documented in ``docs/cli.md``."""

    OK = 0
    #: the machine is invalid, or the operation failed (instance not running, QMP error …)
    FAILURE = 1
    #: the command line is wrong (unknown option, missing argument, bad format name)
    USAGE = 2
    #: interrupted by the user (Ctrl-C)
    INTERRUPTED = 130


#: Alias used where "invalid machine" reads better than "failure".
INVALID = ExitCode.FAILURE


class VmctlError(Exception):
    """A failure the user can act on.

    ``VmctlError("no machine named 'p9'", hint="running: p9-dual, s390-crypto")``
    """

    def __init__(self, message: str, hint: str = "", exit_code: ExitCode = ExitCode.FAILURE) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.exit_code = exit_code

    def __str__(self) -> str:
        return self.message


class UsageError(VmctlError):
    """The command line itself is wrong (exit 2)."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message, hint, ExitCode.USAGE)
