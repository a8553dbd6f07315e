"""The instance console: who serves ``console.sock``, and ``vmctl console``'s side of it.

Standard library only: the supervisor loads this file by path (it runs as
``python -I -S supervisor.py``), and this file loads :mod:`~vmctl.runtime.consoleserver`
(the server and its protocol) the same way; the simulator, ``vmctl run`` and
``vmctl console`` import both as part of vmctl.

* **qemu**: QEMU's console is a socket chardev, ``-chardev socket,id=vmctl-console,
  path=INSTANCE/console-qemu.sock,server=on,wait=off -serial chardev:vmctl-console``
  (:func:`chardev_args`; on pseries ``-serial`` is the spapr-vty behind ``hvc0``).  The
  supervisor owns the one connection to it (:func:`start`, a daemon thread): everything
  the guest prints is appended to the instance log, kept in a replay buffer and sent to the
  attached client; the client's keystrokes go to QEMU.  Nothing printed at boot is lost,
  and QEMU never waits: ``vmctl run``'s forked child connects while QEMU is still building
  the machine (:func:`connect_early`, before the guest runs) and the connection is
  inherited across the exec into the supervisor, which finds it by its peer address.  A
  console nobody is attached to is still read and logged, so the guest never stalls.
* **sim**: the simulator process serves the same socket with its console lines
  (a :class:`ConsoleServer` fed by :func:`vmctl.sim.main.serve_instance`).
"""

from __future__ import annotations

import atexit
import json
import os
import socket
import stat
import threading
import time

if __package__:
    from vmctl.runtime.consoleserver import (MAX_SOCKET_PATH, REPLAY_BYTES, VERSION,
                                             ConsoleServer, FrameReader, fits, frame, jframe)
    from vmctl.runtime.procinfo import is_alive
else:  # loaded by path in the supervisor: vmctl is not importable there
    def _sibling(name: str):
        import importlib.util

        path = os.path.join(os.path.dirname(os.path.abspath(__file__)), name + ".py")
        spec = importlib.util.spec_from_file_location(f"_vmctl_{name}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    _server = _sibling("consoleserver")
    is_alive = _sibling("procinfo").is_alive
    MAX_SOCKET_PATH, REPLAY_BYTES, VERSION = (_server.MAX_SOCKET_PATH, _server.REPLAY_BYTES,
                                              _server.VERSION)
    ConsoleServer, FrameReader, fits, frame, jframe = (
        _server.ConsoleServer, _server.FrameReader, _server.fits, _server.frame, _server.jframe)

__all__ = ["CLIENT_SOCKET", "CONSOLE_ID", "ESCAPE", "MAX_SOCKET_PATH", "QEMU_SOCKET",
           "REPLAY_BYTES", "VERSION", "ConsoleServer", "FrameReader", "Refused", "attach",
           "chardev_args", "client_socket", "connect_early", "frame", "jframe",
           "qemu_console_path", "qemu_socket", "start"]

CONSOLE_ID = "vmctl-console"
#: The socket clients attach to, and QEMU's own console socket (in the instance folder).
CLIENT_SOCKET = "console.sock"
QEMU_SOCKET = "console-qemu.sock"
#: ``Ctrl-]``: detaches ``vmctl console``.
ESCAPE = 0x1D


# -- paths ---------------------------------------------------------------------------------
def _short(folder: str, name: str, qmp_socket: str, suffix: str) -> str:
    """``FOLDER/NAME``; when too long for a Unix socket, next to the QMP socket (which
    always fits) with ``suffix`` (no longer than ``.sock``) instead of ``.sock``."""
    first = os.path.join(str(folder), name)
    if fits(first) or not qmp_socket:
        return first
    head, tail = os.path.split(str(qmp_socket))
    return os.path.join(head, tail.rsplit(".", 1)[0] + suffix)


def qemu_socket(folder: str, qmp_socket: str) -> str:
    """QEMU's console socket for an instance folder (``console-qemu.sock``)."""
    return _short(folder, QEMU_SOCKET, qmp_socket, ".qcon")


def client_socket(folder: str, qmp_socket: str = "") -> str:
    """The socket ``vmctl console`` attaches to (``console.sock``); ``qmp_socket`` is the
    instance's QMP socket (``instance.json``), read from the folder when not given."""
    if not qmp_socket:
        try:
            with open(os.path.join(str(folder), "instance.json"), encoding="utf-8") as f:
                qmp_socket = str(json.load(f).get("socket") or "")
        except (OSError, ValueError, AttributeError):
            qmp_socket = ""
    return _short(folder, CLIENT_SOCKET, qmp_socket, ".cons")


def chardev_args(path: str) -> list[str]:
    """QEMU options that make ``path`` the guest console (first serial port / hvc0)."""
    return ["-chardev", f"socket,id={CONSOLE_ID},path={path},server=on,wait=off",
            "-serial", f"chardev:{CONSOLE_ID}"]


def qemu_console_path(cmd: list) -> str | None:
    """The console socket named in a QEMU command by :func:`chardev_args`, or None."""
    for i, arg in enumerate(cmd[:-1]):
        if arg == "-chardev" and cmd[i + 1].startswith(f"socket,id={CONSOLE_ID},"):
            for part in cmd[i + 1].split(","):
                if part.startswith("path="):
                    return part[len("path="):]
    return None


# -- the supervisor's side (QEMU) ----------------------------------------------------------
def _note(log_fd: int, message: str) -> None:
    try:
        os.write(log_fd, f"vmctl: console: {message}\n".encode("utf-8", "replace"))
    except OSError:
        pass


def connect_early(cmd: list, child: int, timeout: float = 5.0) -> int:
    """Connect to QEMU's console socket as soon as QEMU has made it; the descriptor
    (inheritable, for the supervisor exec'd next), or -1 (not QEMU, or it never came).

    Called by ``vmctl run``'s forked child right after it spawned QEMU (``child``):
    QEMU makes its chardevs before it builds the machine, and it serves the connection
    from its main loop before the guest runs, so the console's first byte is kept.
    """
    path = qemu_console_path(cmd)
    if path is None:
        return -1
    deadline = time.monotonic() + timeout
    while True:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect(path)
        except (FileNotFoundError, ConnectionRefusedError):
            sock.close()
        except OSError:
            sock.close()
            return -1
        else:
            fd = sock.detach()
            os.set_inheritable(fd, True)
            return fd
        if time.monotonic() > deadline or not is_alive(child, None):
            return -1
        time.sleep(0.001)


def _inherited(path: str) -> socket.socket | None:
    """The connection to ``path`` that :func:`connect_early` left open for us, if any."""
    try:
        fds = [int(n) for n in os.listdir("/proc/self/fd")]
    except OSError:
        return None
    for fd in fds:
        try:
            if not stat.S_ISSOCK(os.fstat(fd).st_mode):
                continue
            sock = socket.socket(fileno=fd)
        except OSError:
            continue
        try:
            if sock.family == socket.AF_UNIX and sock.getpeername() == path:
                sock.set_inheritable(False)
                return sock
        except OSError:
            pass
        sock.detach()  # not ours: leave the descriptor alone
    return None


def _connect(path: str, child: int, timeout: float = 60.0) -> socket.socket | None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not (child and not is_alive(child, None)):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        try:
            sock.connect(path)
            return sock
        except OSError:
            sock.close()
        time.sleep(0.01)
    return None


def _serve_qemu(folder: str, path: str, child: int) -> None:
    log = os.open(os.path.join(folder, "log"),
                  os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
    guest = _inherited(path)
    try:
        server = ConsoleServer(client_socket(folder), name=os.path.basename(folder),
                               backend="qemu", log_fd=log)
        if server.bind_error:
            _note(log, server.bind_error)
        if guest is None:
            guest = _connect(path, child)
        if guest is None:
            _note(log, f"QEMU's console socket {path} did not answer; vmctl console is off")
            server.close("QEMU's console socket did not answer", "error")
        server.guest, guest = guest, None  # the server closes it from now on
        server.run()
    except Exception as exc:  # noqa: BLE001 - in the supervisor: note it, never end it
        _note(log, f"{type(exc).__name__}: {exc}")
    finally:
        if guest is not None:  # nobody reads it: close it, or a full socket stalls the guest
            guest.close()
        os.close(log)


def start(folder: str, child: int, cmd: list) -> threading.Thread | None:
    """The supervisor's one call: serve QEMU's console of ``cmd`` (backend pid ``child``)
    in a daemon thread; None when ``cmd`` has no vmctl console (the simulator serves its
    own).  At the supervisor's exit the thread is given a moment to log QEMU's last bytes.
    """
    path = qemu_console_path(cmd)
    if path is None:
        return None
    thread = threading.Thread(target=_serve_qemu, args=(folder, path, child),
                              name="vmctl-console", daemon=True)
    thread.start()
    atexit.register(thread.join, 2.0)
    return thread


# -- the client's side ---------------------------------------------------------------------
class Refused(Exception):
    """The server ended the session: ``reason`` and ``message`` from its ``X`` frame."""

    def __init__(self, info: dict) -> None:
        super().__init__(str(info.get("message", "")))
        self.reason = str(info.get("reason", "error"))
        self.info = info


def attach(path: str, *, force: bool = False, replay: bool = True,
           timeout: float = 5.0) -> tuple:
    """Connect and attach: ``(socket, hello, reader, frames)`` — ``frames`` are those that
    arrived with the hello (the replay, live output).  Raises :class:`Refused` on ``X``,
    OSError when nobody answers."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    try:
        sock.settimeout(timeout)
        sock.connect(path)
        sock.sendall(jframe(b"A", {"version": VERSION, "force": force, "replay": replay}))
        reader = FrameReader()
        while True:
            data = sock.recv(65536)
            if not data:
                raise ConnectionResetError(f"{path} closed the connection")
            frames = reader.feed(data)
            if not frames:
                continue
            kind, payload = frames[0]
            if kind == b"X":
                raise Refused(json.loads(payload))
            if kind != b"H":
                raise ConnectionResetError(f"{path} does not speak the console protocol")
            sock.settimeout(None)
            return sock, json.loads(payload), reader, frames[1:]
    except BaseException:
        sock.close()
        raise
