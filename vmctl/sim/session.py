"""One QMP connection as an explicit state machine (no sockets: bytes in, bytes out).

::

    connect ──greeting──▶ NEGOTIATING ──qmp_capabilities──▶ COMMAND ──close──▶ CLOSED
                              │ any other command:                │ qmp_capabilities again:
                              │ CommandNotFound "Expecting        │ CommandNotFound "Capabilities
                              │ capabilities negotiation …"       │ negotiation is already complete …"

Events reach a session only in ``COMMAND`` state, as in QEMU.  Parse errors and malformed
requests are answered and the session carries on; a request that carried an ``id`` gets it
back in the error.  ``exec-oob`` is an unexpected member unless ``oob`` was enabled at
negotiation; then it is refused the way QEMU refuses it for commands that do not allow
out-of-band execution (none of the simulator's do): ``execute`` must raise for a request
with ``oob`` set, after looking the command up (:class:`~vmctl.sim.commands.Dispatcher`
does).
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import Any

from vmctl.sim import qmp
from vmctl.sim.stream import JsonStream


class SessionState(str, enum.Enum):
    NEGOTIATING = "negotiating"
    COMMAND = "command"
    CLOSED = "closed"


class QMPSession:
    """Protocol state of one client; ``write`` sends bytes to it.

    ``execute(request)`` runs a checked command (raising :class:`~vmctl.sim.qmp.QMPError`);
    ``package`` goes into the greeting.
    """

    def __init__(self, execute: Callable[[qmp.Request], Any], write: Callable[[bytes], None],
                 package: str) -> None:
        self._execute = execute
        self._write = write
        self._stream = JsonStream()
        self.state = SessionState.NEGOTIATING
        self.oob = False
        self._write(qmp.encode(qmp.greeting(package)))

    def receive(self, data: bytes) -> None:
        """Handle bytes from the client: every complete message is answered in order."""
        for parsed in self._stream.feed(data):
            if self.state is SessionState.CLOSED:
                return
            if parsed.error is not None:
                self._send(qmp.failure("GenericError", parsed.error))
            else:
                self._handle(parsed.value)

    def deliver_event(self, line: bytes) -> None:
        """Forward an encoded event; dropped until capabilities are negotiated."""
        if self.state is SessionState.COMMAND:
            self._write(line)

    def close(self) -> None:
        self.state = SessionState.CLOSED

    # -- internals -----------------------------------------------------------------------
    def _send(self, message: dict[str, Any]) -> None:
        if self.state is not SessionState.CLOSED:
            self._write(qmp.encode(message))

    def _handle(self, obj: Any) -> None:
        req_id, has_id = qmp.request_id(obj)
        try:
            request = qmp.check_request(obj, allow_oob=self.oob)
            value = self._dispatch(request)
        except qmp.QMPError as exc:
            self._send(qmp.failure(exc.error_class, exc.desc, req_id, has_id))
            return
        self._send(qmp.success(value, request))

    def _dispatch(self, request: qmp.Request) -> Any:
        if self.state is SessionState.NEGOTIATING:
            # Only qmp_capabilities exists before negotiation; QEMU rewrites the
            # CommandNotFound of any other command (``exec-oob`` is not allowed yet).
            if request.command != "qmp_capabilities":
                raise qmp.QMPError("CommandNotFound",
                                   "Expecting capabilities negotiation with 'qmp_capabilities'")
            self._negotiate(request.arguments)
            return {}
        if request.oob:
            # Looked up first (CommandNotFound), then refused: no command of the
            # simulator allows out-of-band execution, qmp_capabilities included.
            if request.command == "qmp_capabilities":
                raise qmp.QMPError.generic(
                    f"The command {request.command} does not support OOB")
            return self._execute(request)
        if request.command == "qmp_capabilities":
            qmp.check_capabilities(request.arguments)  # arguments first, as QEMU
            raise qmp.QMPError("CommandNotFound",
                               "Capabilities negotiation is already complete, command ignored")
        return self._execute(request)

    def _negotiate(self, arguments: dict[str, Any]) -> None:
        enable = qmp.check_capabilities(arguments)
        self.oob = "oob" in enable
        self.state = SessionState.COMMAND
