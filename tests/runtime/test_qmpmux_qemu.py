"""The QMP multiplexer on the real QEMU 7.2: many clients on one monitor.

``vmctl run --backend qemu`` gives QEMU a private monitor socket and the supervisor serves
``qmp.sock`` (:mod:`vmctl.runtime.qmpmux`).  Here: a held ``qemu.qmp`` client while
``status``, ``qmp`` and a second client run; events to every negotiated client; a client
gone mid-command; the same id from two clients; a raw client that half-closes (socat); the
protocol byte for byte against a bare QEMU with the same command line; ``quit``.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import run_vmctl
from tests.runtime.qmpraw import RawQmp

from .conftest import MACHINES, cli, cli_ok, instance, state_dir

pytestmark = pytest.mark.qemu
P9 = str(MACHINES / "p9-dual.toml")
X86 = """[machine]
name = "x86-mux"
arch = "x86_64"
type = "q35"
cpu = "qemu64"
cpus = 1
memory = "256M"
accel = "tcg"
"""


@pytest.fixture(scope="session")
def caps_cache(tmp_path_factory):
    return str(tmp_path_factory.mktemp("caps-cache"))


@pytest.fixture(autouse=True)
def _real_qemu(monkeypatch, caps_cache):
    for binary in ("qemu-system-ppc64", "qemu-system-x86_64"):
        if shutil.which(binary) is None:
            pytest.fail(f"{binary} is not installed: these tests need real QEMU (apt-get install "
                        "--no-install-recommends qemu-system-ppc qemu-system-x86; .ci/run does it)")
    monkeypatch.setenv("VMCTL_CACHE_DIR", caps_cache)


@pytest.fixture
def x86(tmp_path) -> str:
    """A q35 machine under TCG with nothing to boot: SeaBIOS waits, QEMU stays up (so
    ``cont`` and ``stop`` give RESUME and STOP).  Started paused; the socket path."""
    path = tmp_path / "x86-mux.toml"
    path.write_text(X86)
    cli_ok("run", "--backend", "qemu", str(path), "--paused")
    return str(instance("x86-mux").socket())


@pytest.fixture
def p9() -> str:
    cli_ok("run", "--backend", "qemu", P9, "--paused")
    return str(instance("p9-dual").socket())


def log_has_no_mux_trouble(name: str) -> None:
    log = (instance(name).dir / "log").read_text(errors="replace")
    trouble = [line for line in log.splitlines()
               if ("vmctl: qmp:" in line or "vmctl: qmpmux" in line)
               and "guest reset (RESET event)" not in line]   # a mark, not trouble
    assert not trouble, log[-2000:]


# -- many clients at once -------------------------------------------------------------------------
def test_a_held_qemu_qmp_client_leaves_status_qmp_and_others_working(p9):
    from qemu.qmp import QMPClient

    async def scenario() -> None:
        held = QMPClient("held")
        await held.connect(p9)
        try:
            assert (await held.execute("query-status"))["status"] == "prelaunch"
            t0 = time.monotonic()
            status = await asyncio.to_thread(cli_ok, "status", "p9-dual", "--format", "json")
            assert time.monotonic() - t0 < 10
            status = json.loads(status.stdout)
            assert status["run_state"] == "prelaunch" and status["qmp"]["qemu"]["major"] == 7
            assert "error" not in status["plugins"]["spapr-irq"], status["plugins"]
            qmp = await asyncio.to_thread(cli_ok, "qmp", "p9-dual", "query-status")
            assert json.loads(qmp.stdout)["status"] == "prelaunch"
            ps = json.loads((await asyncio.to_thread(cli_ok, "ps", "--format", "json")).stdout)
            assert [r["run_state"] for r in ps] == ["prelaunch"]
            second = RawQmp(p9)
            assert second.call('{"execute": "query-name", "id": 2}') == {
                "return": {"name": "p9-dual"}, "id": 2}
            shell = await asyncio.to_thread(  # qemu.qmp's qmp-shell, a third client
                subprocess.run, [sys.executable, "-m", "qemu.qmp.qmp_shell", p9],
                input="query-name\nquery-status\n", capture_output=True, text=True, timeout=20)
            assert '{"return": {"name": "p9-dual"}}' in shell.stdout, shell.stderr
            assert '"status": "prelaunch"' in shell.stdout
            assert (await held.execute("query-name")) == {"name": "p9-dual"}
            second.close()
        finally:
            await held.disconnect()

    asyncio.run(scenario())
    log_has_no_mux_trouble("p9-dual")


def test_events_reach_every_negotiated_client_and_no_other(x86):
    from qemu.qmp import EventListener, QMPClient

    async def scenario() -> None:
        a = QMPClient("a")
        await a.connect(x86)
        listener = EventListener()
        a.register_listener(listener)
        b = RawQmp(x86)
        shy = RawQmp(x86, negotiate=False)
        try:
            await a.execute("cont")
            assert (await asyncio.wait_for(listener.get(), 10))["event"] == "RESUME"
            assert b.msg()["event"] == "RESUME"
            b.send('{"execute": "stop", "id": "b"}')
            assert b.msg()["event"] == "STOP"  # QEMU's order: the event, then the reply
            assert b.msg() == {"return": {}, "id": "b"}
            assert (await asyncio.wait_for(listener.get(), 10))["event"] == "STOP"
            assert shy.quiet()  # not negotiated: no events, as with QEMU
            assert shy.call('{"execute": "qmp_capabilities"}') == {"return": {}}
            shy.send('{"execute": "cont"}')
            assert shy.msg()["event"] == "RESUME" and shy.msg() == {"return": {}}
            assert b.msg()["event"] == "RESUME"
        finally:
            a.remove_listener(listener)
            await a.disconnect()
            b.close()
            shy.close()

    asyncio.run(scenario())


def test_a_client_gone_mid_command_disturbs_nobody(x86):
    other = RawQmp(x86)
    for command in ('{"execute": "query-qmp-schema", "id": 1}',
                    '{"execute": "human-monitor-command", "arguments": '
                    '{"command-line": "info mtree"}, "id": 2}'):
        gone = RawQmp(x86)
        gone.send(command)  # tens of milliseconds of work for QEMU, then nobody to read it
        gone.close()
        assert other.call('{"execute": "query-status", "id": "o"}') == {
            "return": {"status": "prelaunch", "singlestep": False, "running": False}, "id": "o"}
    time.sleep(0.3)
    assert other.call('{"execute": "query-name", "id": 3}') == {"return": {"name": "x86-mux"},
                                                                  "id": 3}
    assert json.loads(cli_ok("qmp", "x86-mux", "query-status").stdout)["status"] == "prelaunch"
    log_has_no_mux_trouble("x86-mux")


def test_two_clients_may_use_the_same_id(x86):
    a, b = RawQmp(x86), RawQmp(x86)
    a.send('{"execute": "query-qmp-schema", "id": "same"}{"execute": "query-name", "id": "same"}')
    b.send('{"execute": "query-status", "id": "same"}{"execute": "query-kvm", "id": "same"}')
    schema, name = a.msg(), a.msg()
    status, kvm = b.msg(), b.msg()
    assert schema["id"] == name["id"] == status["id"] == kvm["id"] == "same"
    assert isinstance(schema["return"], list) and name["return"] == {"name": "x86-mux"}
    assert status["return"]["status"] == "prelaunch" and kvm["return"]["enabled"] is False
    a.send('{"execute": "query-name"}')  # no id: none back
    assert a.line() == b'{"return": {"name": "x86-mux"}}\r\n'


def test_a_raw_client_that_half_closes_gets_every_reply(x86):
    """``printf '…' | socat - UNIX-CONNECT:qmp.sock``: all input, end of input, replies."""
    c = RawQmp(x86, negotiate=False)
    c.send(b'{"execute": "qmp_capabilities"}\n{"execute": "query-status"}\n'
           b'{"execute": "query-name", "id": 1}\n')
    c.sock.shutdown(socket.SHUT_WR)
    assert c.msg() == {"return": {}}
    assert c.msg()["return"]["status"] == "prelaunch"
    assert c.msg() == {"return": {"name": "x86-mux"}, "id": 1}
    with pytest.raises(EOFError):
        c.line()


def test_exec_oob_passes_through_for_clients_that_enabled_it(x86):
    oob = RawQmp(x86, negotiate=False)
    assert oob.call('{"execute": "qmp_capabilities", "arguments": {"enable": ["oob"]}}') == {
        "return": {}}
    oob.send('{"execute": "query-qmp-schema", "id": "slow"}'
             '{"exec-oob": "migrate-pause", "id": "oob"}')
    first = oob.msg()
    assert first == {"id": "oob", "error": {
        "class": "GenericError",
        "desc": "migrate-pause is currently only supported during postcopy-active state"}}
    assert oob.msg()["id"] == "slow"  # QEMU answered out of band, ahead of it


# -- QEMU's protocol, byte for byte ----------------------------------------------------------------
TRANSCRIPTS = [
    [b'{"execute": "query-status"}',
     b'{"execute": "qmp_capabilities", "arguments": {"enable": ["foo"]}}',
     b'{"execute": "qmp_capabilities", "arguments": {"enable": [1]}, "id": 1}',
     b'{"execute": "qmp_capabilities", "id": {"z": 1, "a": 2}}',
     b'{"execute": "query-status", "id": 7}'],
    [b"{'execute': 'qmp_capabilities'} [1] xx {\"a\": 1, \"id\": 3} "
     b'{"exec-oob": "migrate-pause", "id": 4}'],
    [b'{"execute": "qmp_capabilities", "arguments": {"enable": ["oob"]}}',
     b'{"exec-oob": "migrate-pause", "id": "o"}{"exec-oob": 1}'
     b'{"execute": "query-name", "id": 1.5}{"execute": "qmp_capabilities", "id": [1e2]}'],
    [b'{"execute": "qmp_capabilities", "arguments": {"x": 1, "enable": 5}}'
     b'{"id": "\\u00e9\\u007f", "execute": "qmp_capabilities"}'
     b'{"execute": "query-status", "id": 1e400}'],
    [b'{"execute": "qmp_capabilities"}{"execute": "nope", "id": null}'
     b'{"execute": "query-status", "arguments": []}{"execute": "query-status", "x": 1, "id": true}'
     b'{"id": 1}{"execute": "query-name", "id": {"a": {"b": [1, 2.5, "x"]}}}',
     b'{"execute": "query-status", "arguments": {"x": 1e400}, "id": 2}'
     b'{"execute": "query-status", "id": 18446744073709551615}'
     b'{"execute": "query-status", "id": -9223372036854775809}"abc"'],
]


def transcript(path: str, chunks: list[bytes]) -> bytes:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
    s.settimeout(0.5)
    out = b""
    try:
        out += s.recv(65536)
        for chunk in chunks:
            s.sendall(chunk)
            time.sleep(0.05)
        while True:
            data = s.recv(65536)
            if not data:
                break
            out += data
    except (TimeoutError, socket.timeout):
        pass
    finally:
        s.close()
    return re.sub(rb'"seconds": \d+, "microseconds": \d+', b"T", out)


def test_every_client_sees_qemus_own_protocol_byte_for_byte(p9, tmp_path):
    """The same bytes to a bare QEMU (same command line, its own monitor socket) and
    through the multiplexer: the same bytes back, errors and ids included."""
    argv = json.loads((instance("p9-dual").dir / "instance.json").read_text())["argv"]
    direct = str(tmp_path / "direct.sock")
    argv = [re.sub(r"path=[^,]*", f"path={tmp_path}/con.sock", a) if a.startswith("socket,")
            else a for a in argv]
    argv[argv.index("-qmp") + 1] = f"unix:{direct},server=on,wait=off"
    bare = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while not os.path.exists(direct):
            assert time.monotonic() < deadline and bare.poll() is None
            time.sleep(0.02)
        for chunks in TRANSCRIPTS:
            want = transcript(direct, chunks)
            assert want.count(b"\n") >= 4, want
            assert transcript(p9, chunks) == want
    finally:
        bare.kill()
        bare.wait()


# -- the end, and odd places -----------------------------------------------------------------------
def test_quit_reaches_every_client_and_removes_the_socket(p9):
    from qemu.qmp import EventListener, QMPClient

    async def scenario() -> None:
        held = QMPClient("held")
        await held.connect(p9)
        listener = EventListener(["SHUTDOWN"])
        held.register_listener(listener)
        raw = RawQmp(p9)
        out = await asyncio.to_thread(cli_ok, "stop", "p9-dual")
        assert "p9-dual: stopped (quit; exit status 0)" in out.stdout
        assert (await asyncio.wait_for(listener.get(), 10))["data"]["reason"] == "host-qmp-quit"
        assert raw.msg()["event"] == "SHUTDOWN"
        with pytest.raises(EOFError):
            raw.line()
        with pytest.raises(EOFError):  # qemu.qmp's word for "the server hung up"
            await held.disconnect()

    asyncio.run(scenario())
    assert not os.path.exists(p9)


def test_a_deep_state_dir_puts_qemus_socket_in_the_short_folder(tmp_path, monkeypatch):
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    monkeypatch.setenv("VMCTL_STATE_DIR", str(deep))
    cli_ok("run", "--backend", "qemu", P9, "--paused")
    inst = instance("p9-dual")
    argv = json.loads((inst.dir / "instance.json").read_text())["argv"]
    private = argv[argv.index("-qmp") + 1].split(",")[0][len("unix:"):]
    assert str(deep) not in private and private.endswith(".qmon")
    assert Path(private).parent == Path(str(inst.socket())).parent
    assert not os.path.exists(private)  # held by the supervisor, its path removed
    assert json.loads(cli_ok("qmp", "p9-dual", "query-status").stdout)["status"] == "prelaunch"
    cli_ok("stop", "p9-dual")
    assert not os.path.exists(private) and not os.path.exists(str(inst.socket()))


def test_start_up_failures_are_still_qemus_own_words(tmp_path):
    big = tmp_path / "big.toml"  # pseries wants memory in 256 MiB steps
    big.write_text(f'include = ["{MACHINES}/p9-dual.toml"]\n[machine]\nname = "big"\n'
                   f'memory = "1000M"\n')
    t0 = time.monotonic()
    res = cli("run", "--backend", "qemu", str(big), "--paused")
    assert res.returncode == 1, res.stdout
    assert "qemu-system-ppc64: Memory size 0x3e800000 is not aligned to 256 MiB" in res.stderr
    assert "exited during start-up (exit status 1)" in res.stderr
    assert time.monotonic() - t0 < 10
    assert not instance("big").exists() and not list(state_dir().glob("*/*.sock"))


def test_a_guest_reset_is_marked_in_the_console_log(tmp_path):
    """The mark the spapr-irq probe reads CAS state after (the old boot's lines are older)."""
    path = tmp_path / "mark.toml"
    path.write_text('[machine]\nname = "mux-mark"\narch = "x86_64"\ntype = "q35"\ncpu = "qemu64"\n'
                    'memory = "256M"\naccel = "tcg"\n')
    run_vmctl("run", "--backend", "qemu", "--paused", str(path), check=True)
    try:
        run_vmctl("qmp", "mux-mark", "system_reset", check=True)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if "vmctl: qmp: guest reset (RESET event)" in run_vmctl("logs", "mux-mark").stdout:
                break
            time.sleep(0.1)
        else:
            raise AssertionError(run_vmctl("logs", "mux-mark").stdout)
    finally:
        run_vmctl("stop", "mux-mark", "--force")
