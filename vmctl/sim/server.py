"""The simulator's QMP server: asyncio on a Unix socket, any number of clients.

Each connection gets a :class:`~vmctl.sim.session.QMPSession`; commands run to completion
in the event loop, so replies keep request order and events emitted by a command (``STOP``
for ``stop``) reach every client before that command's reply, as in QEMU.  The virtual
clock advances in fixed quanta of wall time while the machine runs.

Faults stay local to one connection: garbage is answered with a parse error, a client that
vanishes mid-command is dropped, a client that stops reading is disconnected once
:data:`MAX_BACKLOG` bytes are queued for it.  When the machine ends (``quit``, a guest
shutdown, SIGTERM) every client gets the ``SHUTDOWN`` event and pending replies, then the
socket is closed and removed.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import time
from collections.abc import Callable
from typing import Any

from vmctl.sim import qmp
from vmctl.sim.build import Simulation
from vmctl.sim.session import QMPSession

#: Bytes queued for one client before it is considered stuck and dropped.
MAX_BACKLOG = 8 << 20
#: Virtual seconds per clock step.
QUANTUM = 0.05
#: At most this much virtual time is caught up after the process was stopped.
MAX_CATCH_UP = 5.0


class EventHub:
    """Stamps events with wall time and hands them to every live session."""

    def __init__(self, wall: Callable[[], float] = time.time) -> None:
        self._wall = wall
        self.sessions: set[QMPSession] = set()
        self.count = 0

    def emit(self, name: str, data: dict[str, Any] | None) -> None:
        line = qmp.encode(qmp.event(name, self._wall(), data))
        self.count += 1
        for session in list(self.sessions):
            session.deliver_event(line)


class _Connection(asyncio.Protocol):
    def __init__(self, server: SimServer) -> None:
        self.server = server
        self.transport: asyncio.Transport | None = None
        self.session: QMPSession | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.session = QMPSession(self.server.sim.dispatcher.execute, self._write,
                                  self.server.package)
        self.server.hub.sessions.add(self.session)

    def data_received(self, data: bytes) -> None:
        if self.session is not None:
            self.session.receive(data)
        self.server.after_input()

    def eof_received(self) -> bool | None:
        return None  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        if self.session is not None:
            self.server.hub.sessions.discard(self.session)
            self.session.close()
        self.server.connections.discard(self)

    def _write(self, data: bytes) -> None:
        t = self.transport
        if t is None or t.is_closing():
            return
        t.write(data)
        if t.get_write_buffer_size() > MAX_BACKLOG:
            self.server.console("vmctl-sim: dropping a QMP client that stopped reading")
            t.abort()


class SimServer:
    """Serves ``sim`` on an already bound, listening Unix socket ``sock``."""

    def __init__(self, sim: Simulation, hub: EventHub, sock: socket.socket, *,
                 package: str, console: Callable[[str], None], path: str = "",
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.sim = sim
        self.hub = hub
        self.sock = sock
        self.path = path
        self.package = package
        self.console = console
        self.clock = clock
        self.connections: set[_Connection] = set()
        self._done: asyncio.Event | None = None
        self.signal: int | None = None

    def after_input(self) -> None:
        if self.sim.finished and self._done is not None:
            self._done.set()

    def _on_signal(self, signum: int) -> None:
        if self.signal is not None:
            return
        self.signal = signum
        self.console(f"vmctl-sim: terminating on signal {signum}")
        if not self.sim.finished:
            self.sim.vm.lifecycle.quit(reason="host-signal")
        if self._done is not None:
            self._done.set()

    def _signal_from_handler(self, loop: asyncio.AbstractEventLoop, signum: int) -> None:
        try:
            loop.call_soon_threadsafe(self._on_signal, signum)
        except RuntimeError:
            pass  # the loop has closed: the process is on its way out anyway

    def _make_connection(self) -> _Connection:
        conn = _Connection(self)
        self.connections.add(conn)
        return conn

    async def _clock(self) -> None:
        last = self.clock()
        pending = 0.0
        lifecycle = self.sim.vm.lifecycle
        while not lifecycle.finished:
            await asyncio.sleep(QUANTUM)
            now = self.clock()
            pending = min(pending + now - last, MAX_CATCH_UP)
            last = now
            while pending >= QUANTUM and not lifecycle.finished:
                lifecycle.advance(QUANTUM)
                pending -= QUANTUM
        if self._done is not None:
            self._done.set()

    async def serve(self) -> int:
        """Run until the machine ends; returns the process exit status (0)."""
        loop = asyncio.get_running_loop()
        self._done = asyncio.Event()
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            # Plain handlers (not loop.add_signal_handler): they outlive the loop, so a
            # second signal while the process exits is absorbed instead of killing it.
            signal.signal(signum, lambda n, _f: self._signal_from_handler(loop, n))
        server = await loop.create_unix_server(self._make_connection, sock=self.sock)
        clock = asyncio.create_task(self._clock())
        if self.sim.finished:
            self._done.set()
        await self._done.wait()
        server.close()
        clock.cancel()
        for conn in list(self.connections):
            if conn.transport is not None:
                conn.transport.close()  # flushes what is queued, then closes
        deadline = loop.time() + 1.0
        while self.connections and loop.time() < deadline:
            await asyncio.sleep(0.005)
        if self.path:
            try:
                os.unlink(self.path)
            except FileNotFoundError:
                pass
        return 0
