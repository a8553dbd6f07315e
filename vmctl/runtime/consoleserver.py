"""The console server: one guest console, a replay buffer, one interactive client.

Standard library only (the supervisor loads it by path through
:mod:`~vmctl.runtime.consolemux`, which says who runs it; the simulator imports it).

The protocol on ``console.sock`` (mode 0600)
--------------------------------------------
Frames both ways: one byte kind, a 4-byte big-endian length, the payload::

    client -> server   A  {"version": 1, "force": bool, "replay": bool}   first, within 5 s
                       K  keystrokes for the guest (raw bytes)
    server -> client   H  {"version": 1, "name", "backend", "replay": N}  attached
                       R  the output kept since boot (at most REPLAY_BYTES), once
                       D  live output
                       X  {"reason", "message"[, "pid"]}: the session ends (then close)

``X`` reasons: ``busy`` (another client is attached; ``pid`` names it), ``taken-over``
(a client attached with ``force``), ``ended`` (the machine's console closed), ``error``.

A connection's states::

    PENDING --A--> ATTACHED --EOF/X--> CLOSED
       |  \\--A, another attached, no force--> X busy --> CLOSED
       \\--5 s without A, bad frame--> CLOSED

One client at a time: a second ``A`` is refused (``busy``) unless it says ``force``, which
takes the console over (the first client gets ``X taken-over``), as ``virsh console
--force`` does.  Only processes of the same user (or root) are served.
"""

from __future__ import annotations

import json
import os
import selectors
import socket
import struct
import threading
import time

VERSION = 1
#: Output kept for the replay (trimmed at a line start when one is near).
REPLAY_BYTES = 64 << 10
#: Largest frame accepted from a peer; bytes queued for a client before it is dropped;
#: keystrokes queued for QEMU before more are dropped.
MAX_FRAME = 1 << 20
CLIENT_BACKLOG = 4 << 20
GUEST_BACKLOG = 64 << 10
HANDSHAKE_TIMEOUT = 5.0
#: ``sizeof(sun_path) - 1`` on Linux.
MAX_SOCKET_PATH = 107


def fits(path: str) -> bool:
    """``path`` can name a Unix socket."""
    return len(os.fsencode(path)) <= MAX_SOCKET_PATH


# -- frames --------------------------------------------------------------------------------
def frame(kind: bytes, payload: bytes = b"") -> bytes:
    return kind + struct.pack(">I", len(payload)) + payload


def jframe(kind: bytes, obj: dict) -> bytes:
    return frame(kind, json.dumps(obj).encode())


class FrameReader:
    """Splits a byte stream into ``(kind, payload)`` frames; ValueError on a bad one."""

    def __init__(self) -> None:
        self.buf = bytearray()

    def feed(self, data: bytes) -> list:
        self.buf += data
        out = []
        while len(self.buf) >= 5:
            size = struct.unpack_from(">I", self.buf, 1)[0]
            if size > MAX_FRAME:
                raise ValueError(f"a frame of {size} bytes is over the {MAX_FRAME} limit")
            if len(self.buf) < 5 + size:
                break
            out.append((bytes(self.buf[:1]), bytes(self.buf[5:5 + size])))
            del self.buf[:5 + size]
        return out


def peer_pid(sock: socket.socket) -> tuple:
    """``(pid, uid)`` of the process at the other end of a Unix socket."""
    pid, uid, _gid = struct.unpack("3i", sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED,
                                                         12))
    return pid, uid


# -- the server ----------------------------------------------------------------------------
def bind_listener(path: str) -> socket.socket:
    """A listening socket at ``path``, mode 0600: bound under a temporary name, then
    renamed into place (whoever sees ``path`` can connect)."""
    folder = os.path.dirname(path)
    tmp = os.path.join(folder, f".{os.path.basename(path)}.{os.getpid()}")
    if not fits(tmp):
        tmp = os.path.join(folder, f".c{os.getpid()}")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    old = os.umask(0o177)
    try:
        if os.path.lexists(tmp):
            os.unlink(tmp)
        sock.bind(tmp)
    except OSError:
        sock.close()
        raise
    finally:
        os.umask(old)
    os.chmod(tmp, 0o600)
    sock.listen(8)
    sock.setblocking(False)
    os.replace(tmp, path)
    return sock


class _Client:
    def __init__(self, sock: socket.socket, pid: int) -> None:
        self.sock = sock
        self.pid = pid
        self.reader = FrameReader()
        self.out = bytearray()
        self.attached = False
        self.closing = False
        self.deadline = time.monotonic() + HANDSHAKE_TIMEOUT


class ConsoleServer:
    """Serves ``console.sock`` for one guest console (see the module docstring).

    The guest side is either a socket (``guest``: QEMU's chardev; its output is read here,
    keystrokes written back) or :meth:`feed` (the simulator's lines; keystrokes go to
    ``on_input``, called in the server thread).  ``log_fd`` >= 0 receives every byte of
    output.  :meth:`feed` and :meth:`close` may be called from any thread, also before
    :meth:`start`.
    """

    def __init__(self, path: str, *, name: str, backend: str, log_fd: int = -1,
                 guest: socket.socket | None = None, on_input=None) -> None:
        self.path = path
        self.name = name
        self.backend = backend
        self.log_fd = log_fd
        self.guest = guest
        self.on_input = on_input
        self.buffer = bytearray()
        self.total = 0
        self.client: _Client | None = None
        self._pending: list = []
        self._clients: list = []
        self._guest_out = bytearray()
        self._end: dict | None = None
        self._lock = threading.Lock()
        self._wake_r, self._wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._listener: socket.socket | None = None
        self._ino = 0
        self.bind_error = ""
        try:
            self._listener = bind_listener(path)
            self._ino = os.lstat(path).st_ino
        except OSError as exc:  # the console is still logged; only attaching is off
            self.bind_error = f"cannot serve {path}: {exc.strerror or exc}"
        self.thread: threading.Thread | None = None

    # -- any thread ------------------------------------------------------------------------
    def start(self) -> threading.Thread:
        self.thread = threading.Thread(target=self.run, name="vmctl-console", daemon=True)
        self.thread.start()
        return self.thread

    def feed(self, data: bytes) -> None:
        """Guest output from another thread (the simulator's console lines)."""
        with self._lock:
            self._pending.append(bytes(data))
        self._wake()

    def close(self, message: str = "the machine ended", reason: str = "ended") -> None:
        """End the service: the attached client gets ``X``, the socket is removed."""
        with self._lock:
            if self._end is None:
                self._end = {"reason": reason, "message": message}
        self._wake()

    def join(self, timeout: float) -> None:
        if self.thread is not None:
            self.thread.join(timeout)

    def _wake(self) -> None:
        try:
            os.write(self._wake_w, b"w")
        except OSError:
            pass  # the pipe is full (a wake-up is pending anyway) or closed

    # -- the server thread -----------------------------------------------------------------
    def run(self) -> None:
        sel = selectors.DefaultSelector()
        self._sel = sel
        if self._listener is not None:
            sel.register(self._listener, selectors.EVENT_READ, "listen")
        sel.register(self._wake_r, selectors.EVENT_READ, "wake")
        if self.guest is not None:
            self.guest.setblocking(False)
            sel.register(self.guest, selectors.EVENT_READ, "guest")
        try:
            while self._end is None or self._pending:
                self._take_pending()
                if self._end is not None:
                    break
                timeout = None
                pending = [c.deadline for c in self._clients if not c.attached or c.closing]
                if pending:
                    timeout = max(0.0, min(pending) - time.monotonic())
                for key, mask in sel.select(timeout):
                    self._event(key, mask)
                self._expire()
        finally:
            self._take_pending()
            self._shutdown()

    def _take_pending(self) -> None:
        with self._lock:
            chunks, self._pending = self._pending, []
        for data in chunks:
            self._output(data)

    def _event(self, key, mask: int) -> None:
        tag = key.data
        if tag == "wake":
            try:
                while os.read(self._wake_r, 4096):
                    pass
            except BlockingIOError:
                pass
        elif tag == "listen":
            self._accept()
        elif tag == "guest":
            self._guest_event(mask)
        elif isinstance(tag, _Client):
            if mask & selectors.EVENT_READ:
                self._client_read(tag)
            if mask & selectors.EVENT_WRITE and tag in self._clients:
                self._flush(tag)

    def _guest_event(self, mask: int) -> None:
        assert self.guest is not None
        if mask & selectors.EVENT_READ:
            try:
                data = self.guest.recv(1 << 18)
            except (BlockingIOError, InterruptedError):
                data = None
            except OSError:
                data = b""
            if data == b"":
                self.close(f"the machine's console closed ({self.backend} ended)")
                return
            if data:
                self._output(data)
        if mask & selectors.EVENT_WRITE:
            self._guest_flush()

    def _guest_flush(self) -> None:
        if self.guest is None:
            return
        try:
            sent = self.guest.send(self._guest_out) if self._guest_out else 0
            del self._guest_out[:sent]
        except (BlockingIOError, InterruptedError):
            pass
        except OSError:
            self._guest_out.clear()
        self._interest(self.guest, "guest", bool(self._guest_out))

    def _interest(self, sock, data, write: bool) -> None:
        events = selectors.EVENT_READ | (selectors.EVENT_WRITE if write else 0)
        try:
            if self._sel.get_key(sock).events != events:
                self._sel.modify(sock, events, data)
        except (KeyError, ValueError):
            pass

    def _output(self, data: bytes) -> None:
        """Guest output: the log, the replay buffer, the attached client."""
        if self.log_fd >= 0:
            self._log(data)
        self.total += len(data)
        if len(data) >= REPLAY_BYTES:
            self.buffer = bytearray(data[-REPLAY_BYTES - 4096:])
        else:
            self.buffer += data
        if len(self.buffer) > REPLAY_BYTES:
            cut = len(self.buffer) - REPLAY_BYTES
            nl = self.buffer.find(b"\n", cut, cut + 4096)
            del self.buffer[:nl + 1 if nl >= 0 else cut]
        if self.client is not None:
            self._send(self.client, frame(b"D", data))

    def _log(self, data: bytes) -> None:
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(self.log_fd, view):]
        except OSError:
            pass  # a full disk: keep serving the console, try the log again with the next bytes

    def _accept(self) -> None:
        assert self._listener is not None
        try:
            sock, _ = self._listener.accept()
        except (BlockingIOError, InterruptedError, ConnectionAbortedError):
            return
        try:
            pid, uid = peer_pid(sock)
        except OSError:
            pid, uid = 0, -1
        if uid not in (os.getuid(), 0):
            sock.close()
            return
        sock.setblocking(False)
        client = _Client(sock, pid)
        self._clients.append(client)
        self._sel.register(sock, selectors.EVENT_READ, client)

    def _client_read(self, client: _Client) -> None:
        try:
            data = client.sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self._drop(client)
            return
        try:
            frames = client.reader.feed(data)
        except ValueError as exc:
            self._bye(client, "error", f"protocol error: {exc}")
            return
        for kind, payload in frames:
            if client not in self._clients or client.closing:
                return
            if kind == b"A" and not client.attached:
                self._attach(client, payload)
            elif kind == b"K" and client.attached:
                self._input(payload)
            else:
                self._bye(client, "error", f"protocol error: unexpected frame {kind!r}")

    def _attach(self, client: _Client, payload: bytes) -> None:
        try:
            req = json.loads(payload)
            assert isinstance(req, dict)
        except (ValueError, AssertionError):
            self._bye(client, "error", "protocol error: the attach request is not a JSON object")
            return
        if req.get("version") != VERSION:
            self._bye(client, "error", f"unsupported console protocol version "
                                       f"{req.get('version')!r} (this server speaks {VERSION})")
            return
        old = self.client
        if old is not None:
            if not req.get("force"):
                self._bye(client, "busy", f"the console of {self.name!r} is in use by another "
                                          f"client (pid {old.pid})", pid=old.pid)
                return
            self._bye(old, "taken-over", f"the console of {self.name!r} was taken over by "
                                         f"pid {client.pid}", pid=client.pid)
        client.attached = True
        self.client = client
        replay = bytes(self.buffer) if req.get("replay", True) else b""
        self._send(client, jframe(b"H", {"version": VERSION, "name": self.name,
                                         "backend": self.backend, "replay": len(replay)}))
        if replay:
            self._send(client, frame(b"R", replay))

    def _input(self, data: bytes) -> None:
        if self.guest is not None:
            room = GUEST_BACKLOG - len(self._guest_out)
            self._guest_out += data[:max(0, room)]
            self._guest_flush()
        elif self.on_input is not None:
            try:
                self.on_input(data)
            except Exception:  # noqa: BLE001 - the callback's bug must not end the console
                pass

    def _send(self, client: _Client, data: bytes) -> None:
        if client.closing and data[:1] != b"X":
            return
        if not client.out:  # the usual case: straight to the socket, no copy kept
            try:
                data = data[client.sock.send(data):]
            except (BlockingIOError, InterruptedError):
                pass
            except OSError:
                self._drop(client)
                return
            if not data:
                if client.closing:
                    self._drop(client)
                return
        client.out += data
        if len(client.out) > CLIENT_BACKLOG and not client.closing:
            client.out.clear()
            self._bye(client, "error", "the client stopped reading; it was detached")
            return
        self._flush(client)

    def _flush(self, client: _Client) -> None:
        try:
            while client.out:
                sent = client.sock.send(client.out)
                del client.out[:sent]
        except (BlockingIOError, InterruptedError):
            pass
        except OSError:
            self._drop(client)
            return
        if client.closing and not client.out:
            self._drop(client)
            return
        self._interest(client.sock, client, bool(client.out))

    def _bye(self, client: _Client, reason: str, message: str, **extra) -> None:
        """Tell ``client`` why its session ends (``X``), then close it once sent."""
        if self.client is client:
            self.client = None
        self._send(client, jframe(b"X", {"reason": reason, "message": message, **extra}))
        client.closing = True
        client.deadline = time.monotonic() + 1.0
        if client in self._clients:
            self._flush(client)

    def _drop(self, client: _Client) -> None:
        if self.client is client:
            self.client = None
        if client in self._clients:
            self._clients.remove(client)
            try:
                self._sel.unregister(client.sock)
            except (KeyError, ValueError):
                pass
            client.sock.close()

    def _expire(self) -> None:
        now = time.monotonic()
        for client in list(self._clients):
            if (not client.attached or client.closing) and now >= client.deadline:
                self._drop(client)

    def _shutdown(self) -> None:
        end = self._end or {"reason": "ended", "message": "the console closed"}
        if self._listener is not None:
            try:
                if os.lstat(self.path).st_ino == self._ino:
                    os.unlink(self.path)
            except OSError:
                pass
            self._listener.close()
        for client in list(self._clients):
            if not client.closing:
                self._bye(client, end["reason"], end["message"])
            if client in self._clients:
                try:
                    client.sock.settimeout(1.0)
                    client.sock.sendall(client.out)
                except OSError:
                    pass
                self._drop(client)
        if self.guest is not None:
            self.guest.close()
        for fd in (self._wake_r, self._wake_w):
            os.close(fd)
