"""The QMP multiplexer (:mod:`vmctl.runtime.qmpmux`) against a fake QEMU peer.

The fake speaks QEMU 7.2's wire format (its greeting, ``", "`` separators, ``\\r\\n``, the
id last in a success reply and first in an error) and records what the multiplexer sent
it.  The real QEMU is in ``test_qmpmux_qemu.py``.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.runtime.qmpraw import RawQmp
from vmctl.runtime import qmpio, qmpmux, qmpwire

GREETING = (b'{"QMP": {"version": {"qemu": {"micro": 22, "minor": 2, "major": 7}, '
            b'"package": "fake"}, "capabilities": ["oob"]}}\r\n')


class FakeQemu:
    """One QEMU-like monitor on ``path`` (one client at a time, as QEMU).

    Commands: ``echo`` (returns its arguments), ``slow`` (answers after ``arguments.s``
    seconds, in order), ``fail``, ``emit`` (event ``arguments.name`` first), ``quit``
    (reply, ``SHUTDOWN``, hang up).  ``exec-oob`` ``ping`` answers at once.
    """

    def __init__(self, path: str, greeting: bytes = GREETING) -> None:
        self.path = path
        self.greeting = greeting
        self.received: list[dict] = []
        self.in_band_waiting = 0
        self.most_waiting = 0
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(path)
        self.listener.listen(4)
        self.conn: socket.socket | None = None
        self._lock = threading.Lock()
        self._queue: list[dict] = []
        self._cv = threading.Condition()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _send(self, obj: dict) -> None:
        with self._lock:
            if self.conn is not None:
                try:
                    self.conn.sendall(json.dumps(obj).encode() + b"\r\n")
                except OSError:
                    pass

    def reply(self, req: dict, value: object) -> None:
        self._send({"return": value, **({"id": req["id"]} if "id" in req else {})})

    def _run(self) -> None:
        self.conn, _ = self.listener.accept()
        self.conn.sendall(self.greeting)
        threading.Thread(target=self._dispatcher, daemon=True).start()
        buf = b""
        while True:
            try:
                data = self.conn.recv(65536)
            except OSError:
                return
            if not data:
                return
            buf += data
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                req = json.loads(line)
                self.received.append(req)
                if "exec-oob" in req:
                    self.reply(req, {"pong": req.get("arguments", {})})
                    continue
                with self._cv:
                    self._queue.append(req)
                    self.in_band_waiting += 1
                    self.most_waiting = max(self.most_waiting, self.in_band_waiting)
                    self._cv.notify()

    def _dispatcher(self) -> None:
        while True:
            with self._cv:
                while not self._queue:
                    self._cv.wait()
                req = self._queue.pop(0)
            cmd, args = req["execute"], req.get("arguments", {})
            if cmd == "slow":
                time.sleep(args.get("s", 0.2))
            with self._cv:
                self.in_band_waiting -= 1
            if cmd == "qmp_capabilities":
                self.reply(req, {})
            elif cmd == "fail":
                self._send({**({"id": req["id"]} if "id" in req else {}),
                            "error": {"class": "GenericError", "desc": "boom"}})
            elif cmd == "emit":
                self.event(args["name"])
                self.reply(req, {})
            elif cmd == "quit":
                self.reply(req, {})
                self.event("SHUTDOWN")
                self.conn.shutdown(socket.SHUT_RDWR)  # a close alone leaves the reader be
                return
            else:
                self.reply(req, {"cmd": cmd, "args": args})

    def event(self, name: str) -> None:
        self._send({"timestamp": {"seconds": 1, "microseconds": 2}, "event": name})

    def close(self) -> None:
        self.listener.close()
        if self.conn is not None:
            try:
                self.conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self.conn.close()


def eventually(check, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


@pytest.fixture
def mux(tmp_path):
    """``(public path, fake QEMU, Mux)`` with the loop in a thread."""
    made = []

    def make(greeting: bytes = GREETING, start_fake: bool = True):
        folder = tmp_path / f"i{len(made)}"
        folder.mkdir()
        private, public = str(folder / "qemu-qmp.sock"), str(folder / "qmp.sock")
        fake = FakeQemu(private, greeting) if start_fake else None
        m = qmpmux.Mux(public, private)
        m.bind()
        thread = threading.Thread(target=m.serve, daemon=True)
        thread.start()
        made.append((m, thread, fake))
        return public, fake, m

    yield make
    for m, thread, fake in made:
        m.stop()
        thread.join(3)
        if fake is not None:
            fake.close()


# -- greeting and negotiation ------------------------------------------------------------------
def test_each_client_gets_qemus_greeting_and_negotiates_alone(mux, tmp_path):
    public, fake, m = mux()
    a = RawQmp(public, negotiate=False)
    b = RawQmp(public)
    assert a.greeting == b.greeting == GREETING
    assert a.call('{"execute": "query-status", "id": 1}') == {
        "id": 1, "error": {"class": "CommandNotFound",
                           "desc": "Expecting capabilities negotiation with 'qmp_capabilities'"}}
    assert b.call('{"execute": "echo", "id": 1}')["return"]["cmd"] == "echo"
    # only the multiplexer's own negotiation reached QEMU, and b's command
    assert [r.get("execute") for r in fake.received] == ["qmp_capabilities", "echo"]
    assert fake.received[0]["arguments"] == {"enable": ["oob"]}
    assert oct(os.stat(public).st_mode & 0o777) == "0o600"
    assert not os.path.exists(m.private)  # QEMU serves one client: its path is gone


def test_errors_before_negotiation_are_qemus_own(mux):
    public, fake, _m = mux()
    c = RawQmp(public, negotiate=False)
    cases = {
        b'{"exec-oob": "ping", "id": 4}':
            b'{"id": 4, "error": {"class": "GenericError", "desc": "QMP input member '
            b"'exec-oob' is unexpected\"}}\r\n",
        b'{"execute": "qmp_capabilities", "arguments": {"enable": ["foo"]}}':
            b'{"error": {"class": "GenericError", "desc": "Parameter \'null\' does not accept '
            b"value 'foo'\"}}\r\n",
        b'{"execute": "qmp_capabilities", "arguments": {"enable": "oob"}, "id": "x"}':
            b'{"id": "x", "error": {"class": "GenericError", "desc": "Invalid parameter type '
            b"for 'enable', expected: array\"}}\r\n",
        b'{"execute": "qmp_capabilities", "arguments": {"x": 1}}':
            b'{"error": {"class": "GenericError", "desc": "Parameter \'x\' is unexpected"}}\r\n',
        b"[1]": b'{"error": {"class": "GenericError", "desc": "QMP input must be a JSON '
                b'object"}}\r\n',
        b"xx ": b'{"error": {"class": "GenericError", "desc": "JSON parse error, invalid '
                b"keyword 'xx'\"}}\r\n",
        b'{"execute": "stop"}': b'{"error": {"class": "CommandNotFound", "desc": "Expecting '
                                b"capabilities negotiation with 'qmp_capabilities'\"}}\r\n",
    }
    for request, reply in cases.items():
        c.send(request)
        assert c.line() == reply, request
    c.send(b"{'execute': 'qmp_capabilities', 'id': 2}")  # QEMU's single quotes, parsed
    assert c.line() == b'{"return": {}, "id": 2}\r\n'
    assert eventually(lambda: len(fake.received) == 1)  # the mux's own; the rest answered here
    c.send(b'{"execute": "qmp_capabilities"}')  # again: forwarded, QEMU says it is done
    c.line()
    assert [r["execute"] for r in fake.received] == ["qmp_capabilities"] * 2


def test_oob_is_refused_when_qemu_did_not_offer_it(mux):
    public, fake, _m = mux(greeting=GREETING.replace(b'["oob"]', b"[]"))
    c = RawQmp(public, negotiate=False)
    assert c.call('{"execute": "qmp_capabilities", "arguments": {"enable": ["oob"]}}') == {
        "error": {"class": "GenericError", "desc": "Capability oob not available"}}
    assert c.call('{"execute": "qmp_capabilities"}') == {"return": {}}
    assert eventually(lambda: fake.received == [
        {"execute": "qmp_capabilities", "arguments": {}, "id": 0}])


# -- ids ----------------------------------------------------------------------------------------
def test_ids_are_rewritten_and_come_back_as_sent(mux):
    public, fake, _m = mux()
    a, b = RawQmp(public), RawQmp(public)
    a.send('{"execute": "slow", "arguments": {"s": 0.2}, "id": "same"}')
    b.send('{"execute": "echo", "arguments": {"who": "b"}, "id": "same"}')
    assert b.msg() == {"return": {"cmd": "echo", "args": {"who": "b"}}, "id": "same"}
    assert a.msg()["id"] == "same"
    sent = [r["id"] for r in fake.received[1:]]
    assert len(set(sent)) == 2 and all(isinstance(i, int) for i in sent)
    # no id: none back; odd ids: written back as QEMU writes them (QDict order, %.17g,
    # upper-case escapes)
    a.send('{"execute": "echo"}')
    assert a.line() == b'{"return": {"cmd": "echo", "args": {}}}\r\n'
    a.send('{"execute": "echo", "id": {"b": 1, "a": [1.0, 1e2, "\\u00e9\\u007f"]}}')
    assert a.line().endswith(b', "id": {"a": [1, 100, "\\u00E9\\u007F"], "b": 1}}\r\n')
    a.send('{"execute": "fail", "id": [7]}')
    assert a.line() == b'{"id": [7], "error": {"class": "GenericError", "desc": "boom"}}\r\n'
    a.send('{"execute": "fail"}')
    assert a.line() == b'{"error": {"class": "GenericError", "desc": "boom"}}\r\n'


def test_replies_keep_each_clients_order_local_answers_included(mux):
    public, _fake, _m = mux()
    c = RawQmp(public)
    c.send('{"execute": "slow", "arguments": {"s": 0.3}, "id": 1} [2] '
           '{"execute": "echo", "id": 3} }')
    assert c.msg()["id"] == 1
    assert c.msg() == {"error": {"class": "GenericError",
                                 "desc": "QMP input must be a JSON object"}}
    assert c.msg()["id"] == 3
    assert c.msg()["error"]["desc"].startswith("JSON parse error")


# -- events -------------------------------------------------------------------------------------
def test_events_reach_every_negotiated_client_only(mux):
    public, _fake, _m = mux()
    a, b = RawQmp(public), RawQmp(public)
    raw = RawQmp(public, negotiate=False)
    a.send('{"execute": "emit", "arguments": {"name": "STOP"}, "id": 1}')
    assert a.msg()["event"] == "STOP"
    assert a.msg() == {"return": {}, "id": 1}
    assert b.line() == b'{"timestamp": {"seconds": 1, "microseconds": 2}, "event": "STOP"}\r\n'
    assert raw.quiet()


# -- hang-ups -----------------------------------------------------------------------------------
def test_a_client_gone_mid_command_disturbs_nobody(mux):
    public, fake, m = mux()
    a, b = RawQmp(public), RawQmp(public)
    a.send('{"execute": "slow", "arguments": {"s": 0.3}, "id": "a1"}')
    time.sleep(0.05)
    a.close()
    assert b.call('{"execute": "echo", "id": "b1"}')["id"] == "b1"  # queued behind a's
    time.sleep(0.4)  # a's late reply arrives and goes nowhere
    assert b.call('{"execute": "echo", "id": "b2"}')["id"] == "b2"
    assert not m.pending and m.in_flight == 0 and len(m.clients) == 1


def test_a_half_closed_client_gets_its_replies_then_eof(mux):
    """``printf '…' | socat - UNIX-CONNECT:qmp.sock``: send, shut the write side, read."""
    public, _fake, _m = mux()
    c = RawQmp(public, negotiate=False)
    c.send(b'{"execute": "qmp_capabilities"}\n{"execute": "slow", "arguments": {"s": 0.2}}\n'
           b'{"execute": "echo", "id": 9}\n')
    c.sock.shutdown(socket.SHUT_WR)
    assert c.msg() == {"return": {}}
    assert c.msg()["return"]["cmd"] == "slow"
    assert c.msg()["id"] == 9
    with pytest.raises(EOFError):
        c.line()


def test_a_client_that_stops_reading_is_dropped(mux, monkeypatch):
    monkeypatch.setattr(qmpio, "MAX_BACKLOG", 64 << 10)
    public, _fake, m = mux()
    stuck = RawQmp(public)
    stuck.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    big = "x" * 60000
    try:
        for i in range(40):
            stuck.send('{"execute": "echo", "arguments": {"pad": "%s"}, "id": %d}' % (big, i))
    except OSError:
        pass  # dropped already
    ok = RawQmp(public)
    assert ok.call('{"execute": "echo", "id": 1}')["id"] == 1
    deadline = time.monotonic() + 5
    while len(m.clients) > 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(m.clients) == 1


def test_qemu_quitting_ends_every_client_after_its_last_words(mux):
    public, _fake, m = mux()
    a, b = RawQmp(public), RawQmp(public)
    a.send('{"execute": "quit", "id": 1}')
    assert a.msg() == {"return": {}, "id": 1}
    assert a.msg()["event"] == "SHUTDOWN" and b.msg()["event"] == "SHUTDOWN"
    for c in (a, b):
        with pytest.raises(EOFError):
            c.line()
    assert m.done.wait(3) and not os.path.exists(public)


# -- out of band, fairness ------------------------------------------------------------------------
def test_exec_oob_passes_an_in_band_command_for_clients_that_enabled_it(mux):
    public, fake, _m = mux()
    oob = RawQmp(public, oob=True)
    plain = RawQmp(public)
    oob.send('{"execute": "slow", "arguments": {"s": 0.3}, "id": "slow"}'
             '{"exec-oob": "ping", "id": "p"}')
    assert oob.msg() == {"return": {"pong": {}}, "id": "p"}  # overtakes the slow one
    assert oob.msg()["id"] == "slow"
    plain.send('{"execute": "slow", "arguments": {"s": 0.2}, "id": 1}{"exec-oob": "ping", "id": 2}')
    assert plain.msg()["id"] == 1  # refused here, in order, in QEMU's words
    assert plain.msg() == {"id": 2, "error": {"class": "GenericError",
                                              "desc": "QMP input member 'exec-oob' is unexpected"}}
    assert sum("exec-oob" in r for r in fake.received) == 1


def test_clients_take_turns_and_qemu_never_queues_more_than_in_flight(mux):
    public, fake, _m = mux()
    flood, other = RawQmp(public), RawQmp(public)
    for i in range(30):
        flood.send('{"execute": "slow", "arguments": {"s": 0.01}, "id": %d}' % i)
    time.sleep(0.03)
    t0 = time.monotonic()
    assert other.call('{"execute": "echo", "id": "me"}')["id"] == "me"
    assert time.monotonic() - t0 < 0.15  # not behind the 30 (0.3 s)
    assert [flood.msg()["id"] for _ in range(30)] == list(range(30))
    assert fake.most_waiting <= qmpmux.IN_FLIGHT


def test_many_clients_at_once(mux):
    public, _fake, _m = mux()
    errors: list[str] = []

    def one(i: int) -> None:
        try:
            c = RawQmp(public)
            for j in range(25):
                reply = c.call('{"execute": "echo", "arguments": {"c": %d}, "id": %d}' % (i, j))
                assert reply == {"return": {"cmd": "echo", "args": {"c": i}}, "id": j}
            c.close()
        except Exception as exc:  # noqa: BLE001 - collected for the assertion
            errors.append(repr(exc))

    threads = [threading.Thread(target=one, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert errors == []


# -- start-up ---------------------------------------------------------------------------------
def test_clients_wait_for_qemus_greeting(mux, tmp_path):
    public, _none, m = mux(start_fake=False)
    c = socket.socket(socket.AF_UNIX)
    c.connect(public)
    c.settimeout(0.2)
    with pytest.raises((TimeoutError, socket.timeout)):
        c.recv(100)
    fake = FakeQemu(m.private)
    try:
        c.settimeout(5)
        assert c.recv(4096) == GREETING
    finally:
        c.close()
        fake.close()


def test_private_socket_paths(tmp_path):
    assert qmpwire.qemu_socket("/s/vm", "/s/vm/qmp.sock") == "/s/vm/qemu-qmp.sock"
    deep = "/s/" + "d" * 92  # qmp.sock still fits in it, qemu-qmp.sock not
    assert qmpwire.qemu_socket(deep, f"{deep}/qmp.sock") == f"{deep}/qmp.qmon"
    assert qmpwire.qemu_socket("/" + "x" * 120, "/st/.s/0123abcd.sock") == "/st/.s/0123abcd.qmon"
    cmd = ["qemu-system-ppc64", "-qmp", "unix:/a/qemu-qmp.sock,server=on,wait=off", "-S"]
    assert qmpwire.qemu_monitor_path(cmd) == "/a/qemu-qmp.sock"
    assert qmpmux.start(str(tmp_path), 0, [sys.executable, "-m", "vmctl.sim", "x"]) is None


def test_managed_args_give_qemu_the_private_socket(tmp_path):
    from vmctl.qemu.process import managed_args

    args = managed_args(["qemu-system-ppc64", "-M", "pseries"], socket=tmp_path / "qmp.sock",
                        log=tmp_path / "log", paused=False)
    assert args[args.index("-qmp") + 1] == f"unix:{tmp_path}/qemu-qmp.sock,server=on,wait=off"


def test_the_supervisor_loads_it_by_path_with_the_standard_library_only(tmp_path):
    """As ``python -I -S``: no vmctl package on the path, the parser loaded by path."""
    private, public = tmp_path / "q.sock", tmp_path / "qmp.sock"
    (tmp_path / "instance.json").write_text(json.dumps({"socket": str(public)}))
    fake = FakeQemu(str(private))
    code = ("import importlib.util, sys, time\n"
            f"spec = importlib.util.spec_from_file_location('m', {str(Path(qmpmux.__file__))!r})\n"
            "m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)\n"
            f"t = m.start({str(tmp_path)!r}, 0, ['qemu', '-qmp', 'unix:{private},server=on'])\n"
            "t.join(30)\n"
            "assert 'vmctl' not in sys.modules, sorted(sys.modules)\n")
    proc = subprocess.Popen([sys.executable, "-I", "-S", "-c", code], stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 10
        while not public.exists():
            assert time.monotonic() < deadline and proc.poll() is None, proc.stderr.read()
            time.sleep(0.01)
        c = RawQmp(str(public), negotiate=False)
        c.send(b"{'execute': 'qmp_capabilities'}")  # needs the parser
        assert c.line() == b'{"return": {}}\r\n'
        assert c.call('{"execute": "quit", "id": 1}') == {"return": {}, "id": 1}
        assert proc.wait(10) == 0, proc.stderr.read()
        assert not private.exists()  # unlinked once connected
    finally:
        if proc.poll() is None:
            proc.kill()
        fake.close()


# -- the wire rules (pure) ------------------------------------------------------------------------
def test_ids_are_written_back_as_qemu_writes_them():
    qmpwire.protocol()
    assert qmpwire.id_text(7) == b"7"
    assert qmpwire.id_text("a\"b\\c") == b'"a\\"b\\\\c"'
    assert qmpwire.id_text("\u00e9\x7f\n") == b'"\\u00E9\\u007F\\n"'
    assert qmpwire.id_text(1.0) == b"1" and qmpwire.id_text(0.1) == b"0.10000000000000001"
    assert qmpwire.id_text({"b": 1, "a": [None, True]}) == b'{"a": [null, true], "b": 1}'


def test_requests_reach_qemu_with_the_multiplexers_id():
    qmpwire.protocol()
    assert qmpwire.wire(b"query-status", 5) == b'{"execute": "query-status", "id": 5}\n'
    assert qmpwire.wire({"id": "x", "execute": "e", "arguments": {"n": 1.5}}, 6) == \
        b'{"id": 6, "execute": "e", "arguments": {"n": 1.5}}\n'
    # QEMU reads 1e400 as infinity: so does it the 1e999 sent in its place
    assert qmpwire.wire({"execute": "e", "arguments": {"n": float("inf"), "m": -float("inf")}},
                        1) == b'{"execute": "e", "arguments": {"n": 1e999, "m": -1e999}, "id": 1}\n'
    deep: object = 1
    for _ in range(1100):
        deep = [deep]
    line = qmpwire.wire({"execute": "e", "arguments": {"d": deep}}, 2)
    assert line.count(b"[") == 1100 and line.endswith(b', "id": 2}\n')


def test_replies_get_the_senders_id_back():
    entries = {3: ("c", None, b'"mine"'), 4: ("c", None, None)}
    ok = qmpwire.reply_for(b'{"return": {"x": ", \\"id\\": 9}"}, "id": 3}\r\n', entries)
    assert ok[1] == b'{"return": {"x": ", \\"id\\": 9}"}, "id": "mine"}\r\n'
    err = qmpwire.reply_for(b'{"id": 4, "error": {"class": "GenericError", "desc": "d"}}\r\n',
                            entries)
    assert err[1] == b'{"error": {"class": "GenericError", "desc": "d"}}\r\n'
    assert qmpwire.reply_for(b'{"return": {}, "id": 99}\r\n', entries) is None


def test_the_simple_shape_is_only_what_needs_no_parser():
    simple = qmpwire.SIMPLE
    for text in (b'{"execute":"query-status"}', b' {"execute": "x-y.z_1", "id": 12}\r\n',
                 b'{"execute":"q","id":"__qmp#00001"}'):
        assert simple.fullmatch(text), text
    for text in (b'{"execute":"q","id":007}', b'{"execute":"q","id":1.5}',
                 b'{"execute":"q","id":"a\\"b"}', b'{"execute":"q","arguments":{}}',
                 b"{'execute':'q'}", b'{"execute":"q"\x0c}', b'{"id":1,"execute":"q"}'):
        assert not simple.fullmatch(text), text
    assert simple.match(b'{"execute":"q"}5').end() == len(b'{"execute":"q"}')
