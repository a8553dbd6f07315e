"""The QMP multiplexer's sockets: an epoll loop, clients with buffered writes, the listener.

:class:`Loop` is the plumbing :class:`vmctl.runtime.qmpmux.Mux` is built on, with no QMP
in it: a handler per descriptor, non-blocking writes that queue what a client cannot take
yet (and drop a client once :data:`MAX_BACKLOG` bytes wait for it), read interest that
follows each client's state, and closing: a client when it has hung up and is owed
nothing, everybody when the loop ends (after at most :data:`LINGER` seconds to read what
is queued for them).  Standard library only (loaded by path in the supervisor).
"""

from __future__ import annotations

import collections
import functools
import os
import select
import socket
import stat
import threading
import time

#: Bytes queued for one client before it counts as stuck and is dropped (as the simulator).
MAX_BACKLOG = 8 << 20
#: Seconds clients get to read their last bytes when the loop ends.
LINGER = 1.0

READ, WRITE = select.EPOLLIN, select.EPOLLOUT
HUP = select.EPOLLHUP | select.EPOLLERR   # reported whatever was asked for


class Client:
    """One client connection and its protocol state (kept by the multiplexer)."""

    __slots__ = ("sock", "state", "oob", "stream", "out", "owed", "queue", "queued", "eof",
                 "paused", "mask")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.state = "waiting"          # waiting | negotiating | command | closed
        self.oob = False
        self.stream = None              # QEMU's JSON parser, once needed
        self.out = bytearray()          # bytes it could not take yet
        self.owed: collections.deque = collections.deque()   # [reply or None], in order
        self.queue: collections.deque = collections.deque()  # (slot, request, id or None)
        self.queued = False             # in the round-robin queue
        self.eof = False                # it sent its last byte
        self.paused = False             # owed too much: not read for now
        self.mask = 0                   # what the loop watches it for


class Loop:
    """A handler per descriptor, and the clients' side of the sockets.

    Subclasses give :meth:`greet` (a client is accepted), :meth:`client_event` (it is
    readable or writable) and call :meth:`run` with a ``step`` that says how long the
    loop may sleep.
    """

    def __init__(self, public: str, log) -> None:
        self.public = public
        self._log = log
        self.clients: set[Client] = set()
        self._poll = select.epoll()
        self._handlers: dict = {}                # fd -> handler(mask)
        self._listener: socket.socket | None = None
        self._ino = 0
        self._stop = False
        self._wake_r, self._wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self.done = threading.Event()

    # -- any thread ----------------------------------------------------------------------
    def stop(self) -> None:
        """End the loop from any thread."""
        self._stop = True
        try:
            os.write(self._wake_w, b"x")
        except OSError:
            pass

    def bind(self) -> None:
        """Listen on ``public`` (mode 0600): bound under a temporary name, then renamed
        into place, so whoever sees the path can connect."""
        head, tail = os.path.split(self.public)
        tmp = os.path.join(head, "." + tail.rsplit(".", 1)[0] + ".new")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        try:
            if os.path.lexists(tmp):
                os.unlink(tmp)
            sock.bind(tmp)
            os.chmod(tmp, 0o600)
            sock.listen(128)
            sock.setblocking(False)
            os.replace(tmp, self.public)
            self._ino = os.lstat(self.public).st_ino
        except OSError:
            sock.close()
            raise
        self._listener = sock

    # -- the loop ------------------------------------------------------------------------
    def run(self, step) -> None:
        """Until :meth:`stop` or ``step()`` returns False; ``step()`` returns the seconds
        the loop may sleep (None: until something happens).  Then every socket closes."""
        poll, handlers = self._poll.poll, self._handlers
        try:
            if self._listener is None:
                self.bind()
            self.watch(self._listener.fileno(), READ, self._accept)
            self.watch(self._wake_r, READ, None)
            while not self._stop:
                timeout = step()
                if timeout is False:
                    break
                for fd, mask in poll(-1 if timeout is None else timeout):
                    handler = handlers.get(fd)
                    if handler is not None:
                        handler(mask)
        except Exception as exc:  # noqa: BLE001 - in the supervisor: say so, never end it
            self._log(f"stopped: {type(exc).__name__}: {exc}")
        finally:
            self.finish()
            self._close_all()
            self.done.set()

    def finish(self) -> None:
        """Subclass hook, called once when the loop ends, before the clients close."""

    def watch(self, fd: int, mask: int, handler) -> None:
        self._poll.register(fd, mask)
        self._handlers[fd] = handler

    def rewatch(self, fd: int, mask: int) -> None:
        self._poll.modify(fd, mask)

    def unwatch(self, fd: int) -> None:
        self._poll.unregister(fd)
        del self._handlers[fd]

    # -- clients ---------------------------------------------------------------------------
    def _accept(self, _mask: int) -> None:
        while True:
            try:
                sock, _ = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # EMFILE and the like: the others go on
                self._log(f"cannot accept a client: {exc}")
                return
            sock.setblocking(False)
            c = Client(sock)
            self.clients.add(c)
            self.greet(c)

    def greet(self, c: Client) -> None:
        """Subclass hook: ``c`` was accepted."""

    def client_event(self, c: Client, mask: int) -> None:
        """Subclass hook: ``c`` is readable (``READ``/``HUP`` in ``mask``) or writable."""

    def write(self, c: Client, data: bytes) -> None:
        """Send ``data`` to ``c`` now, or queue it; a client that hung up is closed."""
        if c.state == "closed":
            return
        if c.out:
            c.out += data
            if len(c.out) > MAX_BACKLOG:
                self._log("dropping a QMP client that stopped reading")
                self.close(c)
            return
        try:
            sent = c.sock.send(data)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError:  # it hung up: what it is sent now goes nowhere
            self.close(c)
            return
        if sent < len(data):
            c.out += data[sent:]
            self.interest(c)

    def flush(self, c: Client) -> None:
        """More of what is queued for ``c`` (it is writable)."""
        try:
            sent = c.sock.send(c.out)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self.close(c)
            return
        del c.out[:sent]
        if not c.out:
            self.interest(c)
            self.maybe_close(c)

    def interest(self, c: Client) -> None:
        """Watch ``c`` for what its state asks: reading unless it waits for the greeting,
        sent its last byte or owes too much; writing while bytes are queued."""
        if c.state == "closed":
            return
        mask = 0
        if c.state != "waiting" and not c.eof and not c.paused:
            mask |= READ
        if c.out:
            mask |= WRITE
        if mask == c.mask:
            return
        fd = c.sock.fileno()
        if c.mask == 0:
            self.watch(fd, mask, functools.partial(self.client_event, c))
        elif mask == 0:
            self.unwatch(fd)
        else:
            self.rewatch(fd, mask)
        c.mask = mask

    def maybe_close(self, c: Client) -> None:
        """A client that sent its last request is closed once it is owed nothing."""
        if c.eof and not c.owed and not c.out and not c.queue:
            self.close(c)

    def close(self, c: Client) -> None:
        if c.state == "closed":
            return
        if c.mask:
            self.unwatch(c.sock.fileno())
            c.mask = 0
        c.sock.close()
        c.state = "closed"
        c.queue.clear()
        c.owed.clear()
        self.clients.discard(c)

    def _close_all(self) -> None:
        """The end: the listener and its path go, clients get what is queued, then EOF."""
        if self._listener is not None:
            try:
                if os.lstat(self.public).st_ino == self._ino:
                    os.unlink(self.public)
            except OSError:
                pass
            self._listener.close()
        deadline = time.monotonic() + LINGER
        for c in list(self.clients):
            while c.out and time.monotonic() < deadline:
                try:
                    c.sock.setblocking(True)
                    c.sock.settimeout(max(0.01, deadline - time.monotonic()))
                    del c.out[:c.sock.send(c.out)]
                except OSError:
                    break
            c.out.clear()
            self.close(c)
        self._poll.close()
        for fd in (self._wake_r, self._wake_w):
            try:
                os.close(fd)
            except OSError:
                pass


def remove_socket(path: str) -> None:
    """Unlink ``path`` if it is a socket (nothing else is ever removed)."""
    try:
        if stat.S_ISSOCK(os.lstat(path).st_mode):
            os.unlink(path)
    except OSError:
        pass


def log_line(message: str) -> None:
    """One line to the instance log (the supervisor's stderr)."""
    try:
        os.write(2, f"vmctl: qmp: {message}\n".encode("utf-8", "replace"))
    except OSError:
        pass
