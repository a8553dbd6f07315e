"""The one user-error type and the exit codes every command uses.

A :class:`VmctlError` is what a user can fix: it is caught once, at the CLI boundary, and
printed as ``error: …`` and ``hint: …``.  Anything else is a bug and keeps its traceback.

The exception tree (what a caller may catch, and where each is raised)::

    Exception
     ├── VmctlError                      a user can act on it; exit_code says how vmctl exits
     │    ├── UsageError                 the command line is wrong (exit 2)
     │    ├── MachineError               vmctl.config.loader: a machine that cannot be loaded
     │    │                              or is invalid; carries every Diagnostic (file, line)
     │    ├── QMPCommandError            vmctl.runtime.client: QEMU (or the simulator)
     │    │                              answered a command with an error class and text
     │    └── QMPConnectionError         vmctl.runtime.client: no QMP peer, or it went away
     ├── QMPError                        vmctl.sim.qmp: a simulated command fails with a QMP
     │                                   error class; the server sends it, nobody else sees it
     ├── FeedError                       vmctl.tui.feed: the TUI's feed lost its instance
     └── OSError
          └── ModelError                 vmctl.model: a kernel-side model refuses with an errno
               │                         (``exc.errno``), exactly as the kernel would
               └── (plugins' own)        e.g. vfio-ap's LockOrderError: a lock taken out of
                                         the kernel's order

Plugins get ``VmctlError``, ``UsageError``, ``ModelError`` and ``QMPError`` from
:mod:`vmctl.api`.  The plugin manager treats a ``VmctlError`` from a hook as a deliberate
refusal and lets it through; any other exception from a hook leaves that plugin out.
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


def describe_oserror(exc: BaseException) -> str:
    """``"No space left on device (ENOSPC)"``: an OSError's text and its errno's name."""
    if isinstance(exc, OSError) and exc.strerror:
        import errno

        name = errno.errorcode.get(exc.errno or 0, "")
        return f"{exc.strerror} ({name})" if name else exc.strerror
    return str(exc) if isinstance(exc, OSError) else repr(exc)


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
