"""The simulator process as a black box: a raw socket, then qemu.qmp's own client."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from qemu.qmp import ExecuteError, QMPClient

import vmctl

from .conftest import make_machine

GREETING = (b'{"QMP": {"version": {"qemu": {"micro": 0, "minor": 2, "major": 7}, "package": '
            b'"vmctl-sim ' + vmctl.__version__.encode() + b'"}, "capabilities": ["oob"]}}\r\n')


@pytest.fixture
def sim_proc(tmp_path):
    """A simulator process on a short socket path; killed at the end whatever happened."""
    folder = tmp_path / "i"
    folder.mkdir()
    sock = tmp_path / "q.sock"
    if len(str(sock)) > 100:  # the Unix limit; pytest's tmp_path can be deep
        sock = Path("/tmp") / f"vmctl-t-{os.getpid()}-{id(folder)}.sock"
    (folder / "instance.json").write_text(json.dumps({"socket": str(sock), "paused": True}))
    (folder / "machine.json").write_text(json.dumps(make_machine(name="box").to_json()))
    env = {**os.environ, "PYTHONPATH": str(Path(vmctl.__file__).parent.parent),
           "VMCTL_DISABLE_PLUGINS": "spapr-irq,vfio,async-pf,vfio-ap"}
    log = open(folder / "log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "vmctl.sim", str(folder)], stdout=log,
                            stderr=subprocess.STDOUT, env=env)
    deadline = time.monotonic() + 10
    while not sock.exists():
        assert proc.poll() is None, (folder / "log").read_text()
        assert time.monotonic() < deadline
        time.sleep(0.01)
    yield proc, sock, folder
    if proc.poll() is None:
        proc.kill()
    proc.wait()
    log.close()
    if sock.exists():
        sock.unlink()


class Raw:
    def __init__(self, path: Path) -> None:
        self.s = socket.socket(socket.AF_UNIX)
        self.s.settimeout(5)
        self.s.connect(str(path))
        self.buf = b""

    def line(self) -> bytes:
        while b"\r\n" not in self.buf:
            chunk = self.s.recv(65536)
            if not chunk:
                raise EOFError(self.buf)
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line + b"\r\n"

    def msg(self) -> dict:
        return json.loads(self.line())

    def send(self, data: bytes) -> None:
        self.s.sendall(data)

    def negotiate(self) -> None:
        self.line()
        self.send(b'{"execute": "qmp_capabilities"}\n')
        assert self.msg() == {"return": {}}


def test_exact_greeting_negotiation_and_errors_on_a_raw_socket(sim_proc):
    _, sock, _ = sim_proc
    assert stat.S_IMODE(os.stat(sock).st_mode) == 0o600
    c = Raw(sock)
    assert c.line() == GREETING
    c.send(b'{"execute": "query-status"}\n')
    assert c.line() == (b'{"error": {"class": "CommandNotFound", "desc": "Expecting capabilities '
                        b'negotiation with \'qmp_capabilities\'"}}\r\n')
    c.send(b'{"execute": "qmp_capabilities", "id": 1}\n')
    assert c.line() == b'{"return": {}, "id": 1}\r\n'
    c.send(b'garbage\n{"execute": "query-status", "id": "a"}\n')
    assert c.msg()["error"]["desc"] == "JSON parse error, invalid keyword 'garbage'"
    assert c.line() == (b'{"return": {"status": "prelaunch", "singlestep": false, '
                        b'"running": false}, "id": "a"}\r\n')


def test_events_reach_every_negotiated_client_and_survive_bad_ones(sim_proc):
    _, sock, _ = sim_proc
    a, b, shy = Raw(sock), Raw(sock), Raw(sock)
    a.negotiate()
    b.negotiate()
    # A client that vanishes mid-command, and one that leaves half a message behind.
    for junk in (b'{"execute": "query-status"}\n', b'{"execute": "qu'):
        gone = Raw(sock)
        gone.send(junk)
        gone.s.close()
    a.send(b'{"execute": "cont"}\n')
    resume = a.msg()
    assert resume["event"] == "RESUME" and set(resume["timestamp"]) == {"seconds", "microseconds"}
    assert abs(resume["timestamp"]["seconds"] - time.time()) < 5
    assert a.msg() == {"return": {}}
    assert b.msg()["event"] == "RESUME"
    shy.line()
    shy.send(b'{"execute": "qmp_capabilities"}\n')
    assert shy.msg() == {"return": {}}  # no RESUME before it: it was not negotiated then


def test_quit_sends_shutdown_then_the_reply_then_closes(sim_proc):
    proc, sock, _ = sim_proc
    c = Raw(sock)
    c.negotiate()
    c.send(b'{"execute": "quit", "id": "q"}\n')
    assert c.msg()["data"] == {"guest": False, "reason": "host-qmp-quit"}
    assert c.msg() == {"return": {}, "id": "q"}
    with pytest.raises(EOFError):
        c.line()
    assert proc.wait(5) == 0
    assert not sock.exists()


def test_sigterm_is_a_host_signal_shutdown(sim_proc):
    proc, sock, folder = sim_proc
    c = Raw(sock)
    c.negotiate()
    proc.send_signal(signal.SIGTERM)
    assert c.msg()["data"] == {"guest": False, "reason": "host-signal"}
    assert proc.wait(5) == 0
    assert "terminating on signal 15" in (folder / "log").read_text()


def test_qemu_qmp_client_drives_the_simulator(sim_proc):
    _, sock, _ = sim_proc

    async def main():
        qmp = QMPClient("test")
        await qmp.connect(str(sock))
        assert qmp.greeting.QMP.version["package"].startswith("vmctl-sim")
        with qmp.listener(("STOP", "RESUME", "RESET")) as listener:
            await qmp.execute("cont")
            assert (await listener.get())["event"] == "RESUME"
            await qmp.execute("system_reset")
            ev = await listener.get()
            assert ev["event"] == "RESET" and ev["data"]["reason"] == "host-qmp-system-reset"
        with pytest.raises(ExecuteError) as err:
            await qmp.execute("no-such-command")
        assert err.value.error_class == "CommandNotFound"
        cpus = await qmp.execute("query-cpus-fast")
        assert [c["cpu-index"] for c in cpus] == [0, 1]
        await qmp.disconnect()

    asyncio.run(main())


def test_twenty_concurrent_qemu_qmp_clients_are_all_served(sim_proc):
    _, sock, _ = sim_proc

    async def one(i: int) -> list[str]:
        qmp = QMPClient(f"c{i}")
        await qmp.connect(str(sock))
        names = [(await qmp.execute("query-name"))["name"] for _ in range(10)]
        await qmp.disconnect()
        return names

    async def main():
        return await asyncio.gather(*(one(i) for i in range(20)))

    assert asyncio.run(main()) == [["box"] * 10] * 20


def test_a_client_that_stops_reading_does_not_block_the_others(sim_proc):
    _, sock, _ = sim_proc
    stuck = Raw(sock)
    stuck.negotiate()
    stuck.s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    ok = Raw(sock)
    ok.negotiate()
    big = b'{"execute": "query-commands"}\n' * 2000
    stuck.s.setblocking(False)
    try:
        stuck.s.sendall(big)
    except BlockingIOError:
        pass
    ok.send(b'{"execute": "query-name"}\n')
    assert ok.msg() == {"return": {"name": "box"}}
