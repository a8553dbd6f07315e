"""QEMU's one QMP monitor, shared by any number of clients (the qemu backend's multiplexer).

QEMU serves a QMP monitor to one client at a time.  ``vmctl run --backend qemu`` gives QEMU
a private monitor socket, ``-qmp unix:INSTANCE/qemu-qmp.sock,server=on,wait=off`` (mode
0600; :func:`~vmctl.runtime.qmpwire.qemu_socket`), and the instance's supervisor runs
:class:`Mux` in a daemon thread (:func:`start`): it holds QEMU's single connection (and
removes that path) and serves the instance's public ``qmp.sock`` to any number of
clients, each of which sees QEMU::

    vmctl status ─┐                        ┌── requests, ids rewritten ──▶
    vmctl monitor ┼── qmp.sock ── Mux ─────┤       QEMU (one connection)
    socat, …    ──┘                        └◀── replies, events ──────────

* **Greeting and negotiation per client.**  Every client gets QEMU's own greeting, byte
  for byte, and negotiates for itself: ``qmp_capabilities`` and all before it are answered
  here in QEMU 7.2's words (:func:`~vmctl.runtime.qmpwire.negotiation`, on the simulator's
  exact ports of QEMU's parser and checks).  ``oob`` may be enabled when QEMU offered it.
* **Ids rewritten.**  Requests go to QEMU with ``id`` replaced by the multiplexer's own
  number; each reply goes back to its sender with the original ``id`` spliced into QEMU's
  bytes, or none when it sent none.  What QEMU would refuse, QEMU refuses; only what
  cannot be forwarded is refused here, in QEMU's words (a parse error, a message that is
  not an object, ``exec-oob`` from a client without ``oob``).
* **Order.**  A client gets its in-band replies in the order of its requests, local answers
  included.  With ``oob`` enabled its ``exec-oob`` requests (without ``execute``) are
  forwarded at once and their replies delivered as they come, as QEMU does.
* **Events** go to every negotiated client, unchanged; never to one still negotiating.
* **Fairness.**  Clients take turns (round robin) with at most :data:`IN_FLIGHT` in-band
  requests waiting in QEMU: QEMU never suspends its monitor (it does at 8), so
  out-of-band commands get through, and ``vmctl status`` never waits behind a flood.  A
  client owed :data:`MAX_OWED` replies is not read until it has half of them.
* **Hang-ups.**  A client that closes leaves the others alone: what it sent before is still
  forwarded (QEMU runs what it has read; ``echo … | socat`` works), replies to it are
  dropped once its socket is gone.  One that stops reading is dropped (see
  :mod:`vmctl.runtime.qmpio`).  When QEMU goes every client gets QEMU's last messages, then
  end of file, and ``qmp.sock`` is removed.

The link to QEMU, and each client, as state machines::

    link:    CONNECTING ──connect──▶ GREETING ──greeting──▶ NEGOTIATING ──{"return"}──▶ READY
                 (retried every few ms)       sends qmp_capabilities        forwards
             any state ──EOF from QEMU, QEMU's death, or stop()──▶ GONE

    client:  WAITING ──QEMU greets──▶ NEGOTIATING ──qmp_capabilities──▶ COMMAND
             (nothing read yet)        (answered here)                   (forwarded)
             any state ──its EOF──▶ no more reading; closed once owed nothing
             any state ──write error, backlog, link GONE──▶ CLOSED

:mod:`vmctl.runtime.qmpwire` has the wire rules (pure), :mod:`vmctl.runtime.qmpio` the
sockets; this module routes.  Standard library only: the supervisor (``python -I -S``)
loads this file by path, and it loads its siblings and :mod:`vmctl.sim`'s parser by path.
"""

from __future__ import annotations

import atexit
import collections
import json
import os
import signal
import socket
import threading
import time


def _sibling(name: str):
    """``vmctl.runtime.NAME``; loaded by path when no vmctl package is importable."""
    try:
        import importlib

        return importlib.import_module(f"vmctl.runtime.{name}")
    except ImportError:
        import importlib.util

        path = os.path.join(os.path.dirname(os.path.abspath(__file__)), name + ".py")
        spec = importlib.util.spec_from_file_location(f"_vmctl_{name}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module


w = _sibling("qmpwire")
io = _sibling("qmpio")
procinfo = _sibling("procinfo")

#: In-band requests waiting in QEMU at once (QEMU suspends its monitor at 8 queued, which
#: would hold up out-of-band commands too).
IN_FLIGHT = 4
#: Replies owed to one client before its input is no longer read; reading resumes at half.
MAX_OWED = 64
#: Seconds after QEMU is ready before QEMU's parser is imported (25 ms, not on the way to
#: ``vmctl run``'s first answer, which needs none: :data:`~vmctl.runtime.qmpwire.SIMPLE`).
IMPORT_DELAY = 0.2
qemu_socket = w.qemu_socket                # where QEMU's monitor goes (vmctl.qemu.process)
qemu_monitor_path = w.qemu_monitor_path
_READ, _WRITE, _HUP = io.READ, io.WRITE, io.HUP


class Mux(io.Loop):
    """Serves ``public`` for the QEMU monitor at ``private`` (see the module docstring).

    :meth:`serve` runs the loop in the calling thread until QEMU goes or :meth:`stop`;
    ``child`` (QEMU's pid), when given, ends the wait for QEMU's socket if QEMU dies first.
    ``log`` receives one line per notable event (a dropped client, a QEMU surprise).
    """

    def __init__(self, public: str, private: str, *, child: int = 0, log=None) -> None:
        super().__init__(public, log or io.log_line)
        self.private, self.child = private, child
        self.link = "connecting"
        self.greeting = b""
        self.offered_oob = False
        self.pending: dict[int, tuple] = {}      # mux id -> (client, slot or None, id or None)
        self.in_flight = 0
        self._rr: collections.deque = collections.deque()
        self._held: list = []                    # out-of-band lines waiting for READY
        self._next_id = 0
        self._qemu: socket.socket | None = None
        self._qemu_in = bytearray()
        self._qemu_out = bytearray()
        self._qemu_mask = 0
        self._delay = 0.001
        self._import_at = 0.0

    def serve(self) -> None:
        """Run until QEMU goes away or :meth:`stop` (then every socket is closed)."""
        self.run(self._step)

    def _step(self) -> float | None | bool:
        if self.link == "gone":
            return False
        if self.link != "connecting":
            if not self._import_at:
                return None
            left = self._import_at - time.monotonic()
            if left > 0:
                return left
            self._import_at = 0.0
            w.protocol()  # once vmctl run has its answer: before the first client needs it
            return None
        if self._connect():
            return 0
        self._delay = min(self._delay * 2, 0.02)
        return self._delay

    def _connect(self) -> bool:
        if self.child and not procinfo.is_alive(self.child, None):
            self.link = "gone"
            return False
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        try:
            sock.connect(self.private)
        except OSError:
            sock.close()
            return False
        sock.setblocking(False)
        self._qemu, self.link, self._qemu_mask = sock, "greeting", _READ
        self.watch(sock.fileno(), _READ, self._qemu_event)
        io.remove_socket(self.private)  # QEMU serves one client: nobody else needs the path
        return True

    def finish(self) -> None:
        self.link = "gone"
        if self._qemu is not None:
            self._qemu.close()
        else:  # QEMU never answered: its socket file is left over
            io.remove_socket(self.private)

    # -- QEMU's side -----------------------------------------------------------------------
    def _qemu_event(self, mask: int) -> None:
        if mask & _WRITE:
            self._qemu_flush()
        if not mask & (_READ | _HUP):
            return
        try:
            data = self._qemu.recv(1 << 16)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self.link = "gone"
            return
        buf = self._qemu_in
        if not buf and data.find(b"\n") == len(data) - 1:
            self._from_qemu(data)  # the common case: one whole line
            return
        buf += data
        start = 0
        while True:
            end = buf.find(b"\n", start)
            if end < 0:
                break
            self._from_qemu(bytes(buf[start:end + 1]))
            start = end + 1
        del buf[:start]

    def _from_qemu(self, line: bytes) -> None:
        if self.link == "ready":
            if line.startswith(w.EVENT):
                for c in list(self.clients):
                    if c.state == "command":
                        self.write(c, line)
                if b'"event": "RESET"' in line:
                    # a mark in the console log: what the guest printed before it is from
                    # the previous boot (the spapr-irq probe reads CAS state after it)
                    self._log("guest reset (RESET event)")
                return
            routed = w.reply_for(line, self.pending)
            if routed is None:
                self._log(f"a reply for nobody: {line[:200]!r}")
            else:
                (c, slot, _id), out = routed
                self._deliver(c, slot, out)
        elif self.link == "greeting":
            self._greeted(line)
        elif self.link == "negotiating":
            self._negotiated(line)

    def _greeted(self, line: bytes) -> None:
        try:
            caps = json.loads(line)["QMP"]["capabilities"]
        except (ValueError, KeyError, TypeError):
            self._log(f"QEMU's monitor did not greet with QMP: {line[:200]!r}")
            self.link = "gone"
            return
        self.greeting = line if line.endswith(b"\r\n") else line.rstrip(b"\n") + b"\r\n"
        self.offered_oob = "oob" in caps
        self._negotiate()
        for c in list(self.clients):
            if c.state == "waiting":
                self.greet(c)

    def _negotiate(self) -> None:
        args = {"enable": ["oob"]} if self.offered_oob else {}
        self.link = "negotiating"
        self._to_qemu(json.dumps({"execute": "qmp_capabilities", "arguments": args,
                                  "id": 0}).encode() + b"\n")

    def _negotiated(self, line: bytes) -> None:
        if line.startswith(w.EVENT):
            return
        if b'"return"' in line:
            self.link = "ready"
            self._import_at = time.monotonic() + IMPORT_DELAY
            held, self._held = self._held, []
            for data in held:
                self._to_qemu(data)
            self._pump()
        elif self.offered_oob:
            self._log(f"QEMU refused out-of-band commands, going on without: {line[:200]!r}")
            self.offered_oob = False
            self._negotiate()
        else:
            self._log(f"QEMU refused qmp_capabilities: {line[:200]!r}")
            self.link = "gone"

    def _deliver(self, c: io.Client, slot: list | None, out: bytes) -> None:
        if slot is not None:
            self.in_flight -= 1
        if c.state != "closed":
            if slot is None:
                self.write(c, out)
            elif len(c.owed) == 1 and c.owed[0] is slot and not c.eof:
                c.owed.clear()  # the common case: the one reply it waits for
                self.write(c, out)
            else:
                slot[0] = out
                self._flush_owed(c)
        if self._rr:
            self._pump()

    def _to_qemu(self, data: bytes) -> None:
        if self._qemu is None or self.link == "gone":
            return
        if self._qemu_out:
            self._qemu_out += data
            return
        try:
            sent = self._qemu.send(data)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError:
            self.link = "gone"
            return
        if sent < len(data):
            self._qemu_out += data[sent:]
            self._qemu_interest(_READ | _WRITE)

    def _qemu_flush(self) -> None:
        try:
            sent = self._qemu.send(self._qemu_out)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self.link = "gone"
            return
        del self._qemu_out[:sent]
        if not self._qemu_out:
            self._qemu_interest(_READ)

    def _qemu_interest(self, mask: int) -> None:
        if mask != self._qemu_mask:
            self._qemu_mask = mask
            self.rewatch(self._qemu.fileno(), mask)

    def _forward(self, c: io.Client, slot: list, request: dict | bytes,
                 id_text: bytes | None) -> None:
        self._next_id += 1
        self.pending[self._next_id] = (c, slot, id_text)
        self.in_flight += 1
        self._to_qemu(w.wire(request, self._next_id))

    def _pump(self) -> None:
        """Forward queued in-band requests, clients taking turns, up to IN_FLIGHT."""
        rr = self._rr
        while self.link == "ready" and self.in_flight < IN_FLIGHT and rr:
            c = rr.popleft()
            if not c.queue:
                c.queued = False
                continue
            self._forward(c, *c.queue.popleft())
            if c.queue:
                rr.append(c)
            else:
                c.queued = False

    # -- clients' side ---------------------------------------------------------------------
    def greet(self, c: io.Client) -> None:
        if not self.greeting:
            return  # WAITING until QEMU greets
        c.state = "negotiating"
        c.stream = w.JsonStream() if w.JsonStream is not None else None
        self.write(c, self.greeting)
        self.interest(c)

    def client_event(self, c: io.Client, mask: int) -> None:
        if mask & (_WRITE | _HUP) and c.out:
            self.flush(c)
        if not mask & (_READ | _HUP) or c.state == "closed" or c.eof:
            return
        try:
            data = c.sock.recv(1 << 16)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            c.eof = True
            self.interest(c)
            self.maybe_close(c)
            return
        if c.stream is None or w.clean(c.stream):
            done = self._simple(c, data)
            data = data[done:] if done else data
        if data and c.state != "closed":
            if c.stream is None:
                w.protocol()
                c.stream = w.JsonStream()
            for parsed in c.stream.feed(data):
                if c.state == "closed":
                    return
                self._request(c, parsed)
        if len(c.owed) >= MAX_OWED and c.state != "closed":
            c.paused = True
            self.interest(c)

    def _simple(self, c: io.Client, data: bytes) -> int:
        """Requests of the :data:`~vmctl.runtime.qmpwire.SIMPLE` shape at the start of
        ``data``, handled without the parser; how many bytes they took (the rest, from a
        message boundary, goes to the parser)."""
        pos, end = 0, len(data)
        match = w.SIMPLE.match
        while pos < end and c.state != "closed":
            m = match(data, pos)
            if m is None:
                break
            name, id_text = m.group(1), m.group(2)
            if c.state == "command":
                self._queue(c, name, id_text)
            else:
                reply, negotiated = w.simple_before_negotiation(name, id_text)
                if negotiated:
                    c.state = "command"
                self._answer(c, reply)
            pos = m.end()
        return pos

    def _request(self, c: io.Client, parsed) -> None:
        if parsed.error is not None:
            self._answer(c, w.parse_error(parsed.error))
            return
        obj = parsed.value
        if c.state == "negotiating":
            reply, oob = w.negotiation(obj, self.offered_oob)
            if oob is not None:
                c.state, c.oob = "command", oob
            self._answer(c, reply)
        elif isinstance(obj, dict) and ("exec-oob" not in obj or c.oob):
            id_text = w.id_text(obj["id"]) if "id" in obj else None
            if "exec-oob" in obj and "execute" not in obj:   # QEMU's qmp_is_oob()
                self._next_id += 1
                self.pending[self._next_id] = (c, None, id_text)
                line = w.wire(obj, self._next_id)
                if self.link == "ready":
                    self._to_qemu(line)
                else:
                    self._held.append(line)
            else:
                self._queue(c, obj, id_text)
        else:  # not an object, or exec-oob without oob: QEMU's words, in order
            self._answer(c, w.refusal(obj))

    def _queue(self, c: io.Client, request: dict | bytes, id_text: bytes | None) -> None:
        """An in-band request (an object, or a bare command name) for QEMU."""
        slot = [None]
        c.owed.append(slot)
        if not self._rr and self.in_flight < IN_FLIGHT and self.link == "ready":
            self._forward(c, slot, request, id_text)  # nobody waits: straight on
            return
        c.queue.append((slot, request, id_text))
        if not c.queued:
            c.queued = True
            self._rr.append(c)
        self._pump()

    def _answer(self, c: io.Client, data: bytes) -> None:
        """A reply made here, in its place among the client's in-band replies."""
        if c.owed:
            c.owed.append([data])
        else:
            self.write(c, data)

    def _flush_owed(self, c: io.Client) -> None:
        owed = c.owed
        while owed and owed[0][0] is not None and c.state != "closed":
            self.write(c, owed.popleft()[0])
        if c.paused and len(owed) <= MAX_OWED // 2:
            c.paused = False
            self.interest(c)
        self.maybe_close(c)


def start(folder: str, child: int, cmd: list) -> threading.Thread | None:
    """The supervisor's one call: serve the instance's QMP socket for the QEMU of ``cmd``
    (pid ``child``) in a daemon thread; None when ``cmd`` has no private monitor (the
    simulator serves its own socket).  At the supervisor's exit clients get QEMU's last
    words before the thread ends.
    """
    private = qemu_monitor_path(cmd)
    if private is None:
        return None
    with open(os.path.join(folder, "instance.json"), encoding="utf-8") as f:
        public = json.load(f)["socket"]
    if os.path.abspath(public) == os.path.abspath(private):
        return None  # an instance started before the multiplexer: QEMU serves it alone
    mux = Mux(public, private, child=child)
    mux.bind()
    thread = threading.Thread(target=mux.serve, name="vmctl-qmpmux", daemon=True)
    # Signals for the supervisor (SIGTERM, …) must reach its main thread, not this one.
    old = signal.pthread_sigmask(signal.SIG_BLOCK, (signal.SIGTERM, signal.SIGHUP, signal.SIGINT))
    try:
        thread.start()
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)
    atexit.register(_finish, mux, thread)
    return thread


def _finish(mux: Mux, thread: threading.Thread) -> None:
    """At the supervisor's exit: QEMU has ended, let the clients read its last words."""
    if not mux.done.wait(0.5):
        mux.stop()
    thread.join(io.LINGER + 0.5)
