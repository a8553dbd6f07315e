"""``vmctl console NAME`` and ``vmctl logs NAME``: the machine's console, live and logged.

``console`` attaches to the instance's ``console.sock`` (served by the supervisor on QEMU,
by the simulator itself on sim; protocol in :mod:`vmctl.runtime.consoleserver`) like
``virsh console``: the terminal in raw mode, the output kept since boot replayed, then
live; ``Ctrl-]`` detaches and leaves the machine running.  Guest bytes go to stdout as
they are (it is a terminal session); vmctl's own words go to stderr, escaped.

``logs`` prints the instance log (console output and vmctl's own lines) like
``podman logs``: ``--tail N``, ``-f`` to follow until the instance ends.  To a pipe the
bytes are unchanged; to a terminal, escape sequences are removed and other control
characters shown as escapes (:class:`TerminalText`), so a guest cannot drive the
terminal that reads its log.

Top-level imports stay to typer and the standard library (``vmctl --help`` stays light).
"""

from __future__ import annotations

import codecs
import os
import sys
import time

import typer

from vmctl.cli.common import echo
from vmctl.errors import VmctlError


# -- vmctl console ----------------------------------------------------------------------
def _not_running(name: str, state: str, reason: str) -> VmctlError:
    why = f" ({reason})" if reason else ""
    return VmctlError(f"instance {name!r} is {state}{why}: its console is gone",
                      hint=f"vmctl logs {name} shows what it printed; vmctl stop {name} cleans "
                           f"it up, vmctl run starts it again")


def _attach(name: str, force: bool, replay: bool, wait: float = 5.0):
    """Attach to ``name``'s console: ``(inst, socket, hello, reader, frames)``."""
    from vmctl.errors import describe_oserror
    from vmctl.runtime import consolemux
    from vmctl.runtime.control import find
    from vmctl.runtime.inspect import State, inspect

    inst = find(name)
    deadline = time.monotonic() + wait
    while True:
        insp = inspect(inst, tail=0)
        if insp.state not in (State.RUNNING, State.STARTING):
            raise _not_running(name, insp.state.value, insp.reason)
        path = consolemux.client_socket(str(inst.dir))
        try:
            return (inst, *consolemux.attach(path, force=force, replay=replay))
        except consolemux.Refused as exc:
            if exc.reason == "busy":
                raise VmctlError(str(exc), hint=f"detach that client (Ctrl-] in its terminal), "
                                                f"or take the console over: vmctl console {name} "
                                                f"--force") from None
            raise VmctlError(f"the console of {name!r} refused to attach: {exc}",
                             hint=f"vmctl logs {name} shows the console output") from None
        except (FileNotFoundError, ConnectionRefusedError) as exc:
            if time.monotonic() < deadline:  # run returns at the QMP greeting; the console
                time.sleep(0.05)             # server may still be binding its socket
                continue
            raise VmctlError(f"the console of {name!r} does not answer at {path}: "
                             f"{describe_oserror(exc)}",
                             hint=f"vmctl logs {name} shows the console output; an instance "
                                  f"started by an older vmctl has no console (vmctl stop "
                                  f"{name}, then run it again)") from None
        except OSError as exc:
            raise VmctlError(f"cannot attach to the console of {name!r} at {path}: "
                             f"{describe_oserror(exc)}",
                             hint=f"vmctl status {name}; vmctl logs {name}") from None


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


class _Session:
    """One attached session: stdin to the guest, the guest to stdout (see :func:`console`)."""

    def __init__(self, sock, reader, name: str, idle: float) -> None:
        self.sock = sock
        self.reader = reader
        self.name = name
        self.idle = idle
        self.end: tuple[int, str] | None = None
        self.last_output = time.monotonic()

    def frames(self, frames: list) -> None:
        import json

        for kind, payload in frames:
            if kind in (b"R", b"D"):
                try:
                    _write_all(1, payload)
                except BrokenPipeError:
                    self.end = (0, "")
                    return
                self.last_output = time.monotonic()
            elif kind == b"X":
                info = json.loads(payload)
                code = 0 if info.get("reason") == "ended" else 1
                self.end = (code, f"{self.name}: {info.get('message', 'the console closed')}")
                return

    def keys(self, data: bytes) -> None:
        from vmctl.runtime.consolemux import ESCAPE, frame

        cut = data.find(bytes([ESCAPE]))
        if cut >= 0:
            data = data[:cut]
            self.end = (0, f"detached from {self.name} (it keeps running)")
        if data:
            try:
                self.sock.sendall(frame(b"K", data))
            except OSError:
                self.end = (1, f"{self.name}: the console connection was lost")

    def run(self, stdin: int | None) -> tuple[int, str]:
        import selectors

        sel = selectors.PollSelector()  # poll: a regular file on stdin is fine too
        sel.register(self.sock, selectors.EVENT_READ)
        if stdin is not None:
            sel.register(stdin, selectors.EVENT_READ)
        input_done = stdin is None
        while self.end is None:
            timeout = None
            if input_done:
                timeout = self.last_output + self.idle - time.monotonic()
                if timeout <= 0:
                    return (0, f"detached from {self.name} at the end of input (it keeps running)")
            for key, _ in sel.select(timeout):
                if self.end is not None:
                    break
                if key.fileobj is self.sock:
                    try:
                        data = self.sock.recv(65536)
                    except OSError:
                        data = b""
                    if not data:
                        self.end = (1, f"{self.name}: the console connection closed")
                    else:
                        self.frames(self.reader.feed(data))
                else:
                    data = os.read(stdin, 4096) if stdin is not None else b""
                    if data:
                        self.keys(data)
                    else:
                        input_done = True
                        sel.unregister(stdin)
                        self.last_output = max(self.last_output, time.monotonic())
        return self.end


def _stdin_fd() -> int | None:
    try:
        fd = sys.stdin.fileno() if sys.stdin is not None else -1
        os.fstat(fd)
        return fd
    except (OSError, ValueError, AttributeError):
        return None


def _on_signal(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)  # unwinds through the finally that restores the terminal


def console(
    name: str = typer.Argument(..., help="Instance name (vmctl ps lists them).",
                               show_default=False),
    force: bool = typer.Option(False, "--force", help="Take the console over from the client "
                               "attached now (it is told and detached), like virsh console "
                               "--force."),
    replay: bool = typer.Option(True, "--replay/--no-replay", help="Print the output kept "
                                "since boot (at most 64 KiB) before the live output."),
    idle: float = typer.Option(1.0, "--idle", metavar="SECONDS", min=0.0, max=3600.0,
                               help="When input is not a terminal: after its end, detach once "
                                    "the console has been quiet this long."),
) -> None:
    """Attach to the machine's console; Ctrl-] detaches and leaves it running.

    On a terminal: raw mode, every key (Ctrl-C too) goes to the guest.  Input that is
    not a terminal (a pipe, a file) is sent as it comes; then vmctl console detaches once
    the output has been quiet for --idle seconds.  One client at a time: a second attach
    is refused unless --force.  Guest bytes go to stdout unchanged; vmctl's own messages
    go to stderr.
    """
    import signal

    inst, sock, hello, reader, frames = _attach(name, force, replay)
    stdin = _stdin_fd()
    raw = stdin is not None and os.isatty(stdin)
    backend = hello.get("backend", "?")
    echo(f"Connected to {name} ({backend}); escape character is ^] (Ctrl-])", err=True)
    session = _Session(sock, reader, name, idle)
    saved = None
    old_handlers = {s: signal.signal(s, _on_signal) for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        if raw:
            import termios
            import tty

            assert stdin is not None
            saved = termios.tcgetattr(stdin)
            tty.setraw(stdin, termios.TCSADRAIN)
        session.frames(frames)
        code, message = session.end or session.run(stdin)
    finally:
        if saved is not None:
            import termios

            termios.tcsetattr(stdin, termios.TCSADRAIN, saved)
        for s, handler in old_handlers.items():
            signal.signal(s, handler)
        sock.close()
    if message:
        echo(("\n" if raw else "") + message, err=True)
    if code:
        raise typer.Exit(code)


# -- vmctl logs ---------------------------------------------------------------------------
class TerminalText:
    """Guest bytes as text a terminal may show: escape sequences (CSI such as colours and
    cursor moves, OSC such as titles, DCS and the like, two-byte ``ESC x``) are removed;
    ``CR LF`` becomes ``LF``; every other control character is shown as an escape
    (``\\x07``, ``\\r``) by :func:`vmctl.textfmt.safe`.  Fed in chunks (``-f``): a sequence
    cut between two chunks is still recognised."""

    _MAX_STRING = 4096

    def __init__(self) -> None:
        self._decode = codecs.getincrementaldecoder("utf-8")("replace").decode
        self._state = "text"
        self._cr = False
        self._len = 0

    def feed(self, data: bytes, final: bool = False) -> str:
        from vmctl.textfmt import first_unsafe, safe

        text = self._decode(data, final)
        if self._state == "text" and not self._cr and first_unsafe(text.replace("\n", "")) < 0:
            return text
        out: list[str] = []
        for ch in text:
            self._char(ch, out, safe)
        if final:
            if self._cr:
                out.append("\\r")
            self._cr, self._state = False, "text"
        return "".join(out)

    def _char(self, ch: str, out: list[str], safe) -> None:
        state, o = self._state, ord(ch)
        if state == "text":
            if self._cr:
                self._cr = False
                if ch == "\n":
                    out.append("\n")
                    return
                out.append("\\r")
            if ch == "\x1b":
                self._state = "esc"
            elif ch == "\r":
                self._cr = True
            elif ch in "\n\t":
                out.append(ch)
            else:
                out.append(safe(ch))
        elif state == "esc":
            if ch == "[":
                self._state, self._len = "csi", 0
            elif ch in "]PX^_":
                self._state, self._len = "string", 0
            elif 0x20 <= o <= 0x2F:
                self._state = "esc-int"
            elif 0x30 <= o <= 0x7E:
                self._state = "text"
            else:
                self._state = "text"
                out.append("\\x1b")
                self._char(ch, out, safe)
        elif state == "esc-int":
            if not 0x20 <= o <= 0x2F:
                self._state = "text"
                if not 0x30 <= o <= 0x7E:
                    self._char(ch, out, safe)
        elif state == "csi":
            self._len += 1
            if 0x40 <= o <= 0x7E:
                self._state = "text"
            elif not 0x20 <= o <= 0x3F or self._len > 64:
                self._state = "text"
                self._char(ch, out, safe)
        else:  # "string" (OSC, DCS …) and "string-esc": up to BEL or ESC \
            self._len += 1
            if ch == "\x07" or (state == "string-esc" and ch == "\\") or self._len > self._MAX_STRING:
                self._state = "text"
            else:
                self._state = "string-esc" if ch == "\x1b" else "string"


def tail_offset(f, lines: int) -> int:
    """Where the last ``lines`` lines of the open binary file ``f`` start (a final line
    without a newline counts; ``0`` lines: the end)."""
    f.seek(0, os.SEEK_END)
    size = f.tell()
    if lines <= 0:
        return size
    pos, buf = size, b""
    while pos > 0:
        step = min(65536, pos)
        pos -= step
        f.seek(pos)
        buf = f.read(step) + buf
        if buf[:-1].count(b"\n") >= lines:
            break
    idx = len(buf) - 1 if buf.endswith(b"\n") else len(buf)
    for _ in range(lines):
        idx = buf.rfind(b"\n", 0, idx)
        if idx < 0:
            return pos
    return pos + idx + 1


class _Out:
    """stdout for ``logs``: bytes as they are to a pipe, :class:`TerminalText` to a tty."""

    def __init__(self) -> None:
        self.tty = sys.stdout.isatty()
        self.text = TerminalText() if self.tty else None
        self.encoding = getattr(sys.stdout, "encoding", None) or "utf-8"

    def write(self, data: bytes, final: bool = False) -> None:
        if self.text is not None:
            shown = self.text.feed(data, final)
            data = shown.encode(self.encoding, "backslashreplace")
        if data:
            sys.stdout.flush()
            sys.stdout.buffer.write(data)
            sys.stdout.buffer.flush()


def _ended(inst) -> bool:
    """The instance and its supervisor are gone (every byte of the log is written)."""
    from vmctl.runtime.inspect import inspect
    from vmctl.runtime.procinfo import is_alive

    if not inst.exists():
        return True
    if inspect(inst, tail=0).state.alive:
        return False
    proc = inst.proc() or {}
    return not is_alive(proc.get("supervisor_pid"), proc.get("supervisor_start"))


def logs(
    name: str = typer.Argument(..., help="Instance name (vmctl ps lists them; crashed ones "
                               "too, until vmctl stop).", show_default=False),
    follow: bool = typer.Option(False, "--follow", "-f", help="Keep printing what is "
                                "appended until the instance ends (then exit 0), or Ctrl-C."),
    tail: int | None = typer.Option(None, "--tail", metavar="N", min=0, help="Only the last "
                                    "N lines (then follow with -f)."),
) -> None:
    """Print the instance log: the console output and vmctl's own lines.

    To a pipe or a file the bytes are unchanged; to a terminal, escape sequences are
    removed and other control characters shown as escapes (\\x07, \\r).
    """
    from vmctl.runtime.control import find

    inst = find(name)
    out = _Out()
    f = None
    while f is None:
        try:
            f = open(inst.log_path, "rb")
        except FileNotFoundError:
            if not follow or _ended(inst):
                return
            time.sleep(0.1)
        except OSError as exc:
            from vmctl.errors import describe_oserror

            raise VmctlError(f"cannot read the log of {name!r} at {inst.log_path}: "
                             f"{describe_oserror(exc)}", hint=f"vmctl status {name}") from None
    with f:
        f.seek(tail_offset(f, tail) if tail is not None else 0)
        while True:
            data = f.read(65536)
            if data:
                out.write(data)
                continue
            if not follow or _ended(inst):
                break
            time.sleep(0.1)
        out.write(f.read(), final=True)


def register(app: typer.Typer) -> None:
    app.command()(console)
    app.command()(logs)
