"""``vmctl console``: the console server (protocol, replay, one client), the supervisor's
side with a QEMU-like fake, the simulator, and real QEMU 7.2 with Debian's kernel."""

from __future__ import annotations

import json
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from vmctl.runtime import consolemux as cm
from vmctl.runtime import consoleserver as cs
from vmctl.runtime.instance import Instance
from vmctl.runtime.lock import InstanceLock
from vmctl.runtime.procinfo import is_alive

from .conftest import MACHINES, ROOT, cli, cli_ok, instance, state_dir

P9 = str(MACHINES / "p9-dual.toml")


# -- helpers ----------------------------------------------------------------------------------
class Pty:
    """``vmctl ARGS`` on a pseudo-terminal (stdin and stdout), stderr on a pipe."""

    def __init__(self, *args: str) -> None:
        self.master, slave = os.openpty()
        self.proc = subprocess.Popen([sys.executable, "-m", "vmctl", *args], stdin=slave,
                                     stdout=slave, stderr=subprocess.PIPE, cwd=ROOT,
                                     start_new_session=True)
        os.close(slave)
        self.out = b""
        self.head = ""

    def _read(self, wait: float) -> None:
        if select.select([self.master], [], [], wait)[0]:
            try:
                self.out += os.read(self.master, 65536)
            except OSError:  # EIO: the other side is closed
                time.sleep(wait)

    def expect(self, needle: bytes, timeout: float = 15.0, since: int = 0) -> bytes:
        """The output once ``needle`` is in it (after offset ``since``)."""
        deadline = time.monotonic() + timeout
        while needle not in self.out[since:]:
            assert time.monotonic() < deadline and self.proc.poll() is None, \
                f"{needle!r} not seen; got {self.out[-800:]!r}; stderr {self._stderr()}"
            self._read(0.05)
        return self.out

    def _stderr(self) -> str:
        if self.proc.poll() is None:
            return "(running)"
        return self.proc.stderr.read().decode()

    def connected(self) -> str:
        """vmctl's first line on stderr: attached (the server has sent its hello)."""
        line = self.proc.stderr.readline().decode()
        assert line.startswith("Connected to "), line
        self.head += line
        return line

    def send(self, data: bytes) -> None:
        os.write(self.master, data)

    def wait(self, timeout: float = 10.0) -> tuple[int, str]:
        deadline = time.monotonic() + timeout
        while self.proc.poll() is None:
            assert time.monotonic() < deadline, f"still attached; got {self.out[-800:]!r}"
            self._read(0.05)
        self._read(0.0)
        return self.proc.returncode, self.head + self.proc.stderr.read().decode()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc.stderr.close()
        os.close(self.master)


@pytest.fixture
def ptys():
    made: list[Pty] = []

    def make(*args: str) -> Pty:
        made.append(Pty(*args))
        return made[-1]

    yield make
    for p in made:
        p.kill()


def wait_for(pred, timeout: float = 15.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


# -- the server, in process -----------------------------------------------------------------
def _hello(path: str, **kw):
    sock, hello, reader, frames = cm.attach(path, **kw)
    return sock, hello, reader, frames


def _frames_until(sock, reader, kind: bytes, timeout: float = 5.0) -> list:
    sock.settimeout(timeout)
    got = []
    while not any(k == kind for k, _ in got):
        data = sock.recv(65536)
        if not data:
            break
        got += reader.feed(data)
    return got


@pytest.fixture
def served(tmp_path):
    """A ConsoleServer whose guest is one end of a socket pair; the other end is QEMU."""
    guest, qemu = socket.socketpair()
    log = os.open(tmp_path / "log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    server = cm.ConsoleServer(str(tmp_path / "console.sock"), name="vm", backend="qemu",
                              log_fd=log, guest=guest)
    server.start()
    yield server, qemu, tmp_path
    server.close()
    server.join(2.0)
    qemu.close()
    os.close(log)


def test_frames_split_and_join_across_reads():
    reader = cm.FrameReader()
    data = cm.frame(b"D", b"hello") + cm.jframe(b"X", {"reason": "ended"})
    got = []
    for i in range(len(data)):
        got += reader.feed(data[i:i + 1])
    assert got == [(b"D", b"hello"), (b"X", b'{"reason": "ended"}')]
    with pytest.raises(ValueError, match="over the"):
        cm.FrameReader().feed(b"D" + (cs.MAX_FRAME + 1).to_bytes(4, "big"))


def test_socket_is_private_and_output_reaches_log_replay_and_client(served):
    server, qemu, folder = served
    path = str(folder / "console.sock")
    assert oct(os.stat(path).st_mode & 0o777) == "0o600"
    qemu.sendall(b"early line\r\n")
    wait_for(lambda: b"early" in (folder / "log").read_bytes(), what="the log")
    sock, hello, reader, frames = _hello(path)
    assert hello == {"version": 1, "name": "vm", "backend": "qemu", "replay": 12}
    frames += _frames_until(sock, reader, b"R") if not frames else []
    assert (b"R", b"early line\r\n") in frames
    sock.sendall(cm.frame(b"K", b"ls\r"))
    qemu.settimeout(5)
    assert qemu.recv(100) == b"ls\r"
    qemu.sendall(b"live\r\n")
    assert (b"D", b"live\r\n") in _frames_until(sock, reader, b"D")
    assert (folder / "log").read_bytes() == b"early line\r\nlive\r\n"
    sock.close()


def test_second_client_is_refused_unless_force(served):
    server, qemu, folder = served
    path = str(folder / "console.sock")
    first, *_rest = _hello(path)
    first_reader = _rest[1]
    with pytest.raises(cm.Refused) as exc:
        _hello(path)
    assert exc.value.reason == "busy"
    assert f"in use by another client (pid {os.getpid()})" in str(exc.value)
    second, hello, reader, _ = _hello(path, force=True, replay=False)
    assert hello["replay"] == 0
    told = _frames_until(first, first_reader, b"X")
    info = json.loads(dict(told)[b"X"])
    assert info["reason"] == "taken-over" and info["pid"] == os.getpid()
    first.close()
    qemu.sendall(b"to the second\r\n")
    assert (b"D", b"to the second\r\n") in _frames_until(second, reader, b"D")
    second.close()


def test_replay_is_bounded_and_starts_at_a_line(served):
    server, qemu, folder = served
    line = b"x" * 99 + b"\n"
    qemu.sendall(line * 2000)  # 200 KB
    wait_for(lambda: server.total == 200_000, what="all output read")
    assert len(server.buffer) <= cm.REPLAY_BYTES and server.buffer.startswith(b"x" * 99 + b"\n")
    sock, hello, reader, frames = _hello(str(folder / "console.sock"))
    assert hello["replay"] == len(server.buffer)
    assert os.path.getsize(folder / "log") == 200_000  # the log keeps everything
    sock.close()


def test_bad_peers_do_not_disturb_the_console(served):
    server, qemu, folder = served
    path = str(folder / "console.sock")
    junk = socket.socket(socket.AF_UNIX)
    junk.connect(path)
    junk.sendall(b"\xffGET / HTTP/1.0\r\n\r\n")  # a huge frame length: dropped
    old = socket.socket(socket.AF_UNIX)
    old.connect(path)
    old.sendall(cm.jframe(b"A", {"version": 99}))
    reader = cm.FrameReader()
    assert "unsupported console protocol version 99" in json.loads(
        dict(_frames_until(old, reader, b"X"))[b"X"])["message"]
    sock, *_ = _hello(path)  # still serving, and nobody holds the console
    sock.close()
    junk.close()
    old.close()


def test_guest_end_tells_the_client_and_removes_the_socket(served):
    server, qemu, folder = served
    sock, hello, reader, _ = _hello(str(folder / "console.sock"))
    qemu.sendall(b"reboot: Power down\r\n")
    qemu.close()  # QEMU exits
    frames = _frames_until(sock, reader, b"X")
    assert (b"D", b"reboot: Power down\r\n") in frames
    assert json.loads(dict(frames)[b"X"]) == {"reason": "ended", "message":
                                              "the machine's console closed (qemu ended)"}
    server.join(2.0)
    assert not (folder / "console.sock").exists()


def test_paths_fall_back_next_to_the_qmp_socket_when_too_long(tmp_path):
    short = str(tmp_path / "vm")
    assert cm.client_socket(short, "/x/qmp.sock") == f"{short}/console.sock"
    assert cm.qemu_socket(short, "/x/qmp.sock") == f"{short}/console-qemu.sock"
    deep = "/s/" + "d" * 95  # qmp.sock would still fit in it, console-qemu.sock not
    assert cm.qemu_socket(deep, f"{deep}/qmp.sock") == f"{deep}/qmp.qcon"
    assert cm.client_socket(deep, "/s/.s/0123456789abcdef.sock") == "/s/.s/0123456789abcdef.cons"
    argv = cm.chardev_args("/r/vm/console-qemu.sock")
    assert argv == ["-chardev", "socket,id=vmctl-console,path=/r/vm/console-qemu.sock,"
                    "server=on,wait=off", "-serial", "chardev:vmctl-console"]
    assert cm.qemu_console_path(["qemu", "-m", "1G", *argv]) == "/r/vm/console-qemu.sock"
    assert cm.qemu_console_path([sys.executable, "-m", "vmctl.sim", short]) is None


def test_managed_qemu_argv_serves_the_console_on_a_socket(tmp_path):
    from vmctl.qemu.process import managed_args

    args = managed_args(["qemu-system-ppc64", "-M", "pseries", "-nodefaults"],
                        socket=tmp_path / "vm" / "qmp.sock", log=tmp_path / "vm" / "log",
                        paused=False)
    i = args.index("-chardev")
    assert args[i:i + 4] == cm.chardev_args(str(tmp_path / "vm" / "console-qemu.sock"))
    assert "file," not in " ".join(args)


# -- the supervisor's side, with a QEMU-like backend ------------------------------------------
FAKE_QEMU = r'''
import os, socket, sys, time
spec = sys.argv[sys.argv.index("-chardev") + 1]
path = [p[5:] for p in spec.split(",") if p.startswith("path=")][0]
srv = socket.socket(socket.AF_UNIX)
srv.bind(path)
srv.listen(1)
srv.setblocking(False)
time.sleep(0.05)  # like QEMU: the guest prints once the machine is built ...
try:
    conn, _ = srv.accept()  # ... and output with no client connected is dropped
except BlockingIOError:
    print("fake-qemu: LOST the boot line: nobody was connected", flush=True)
    conn, _ = srv.accept()  # (blocking now)
conn.setblocking(True)
conn.sendall(b"fake firmware: boot line\r\n")
buf = b""
while True:
    data = conn.recv(4096)
    if not data:
        time.sleep(60)
        sys.exit(1)
    buf += data
    while b"\r" in buf:
        line, buf = buf.split(b"\r", 1)
        if line == b"quit":
            conn.sendall(b"fake: power down\r\n")
            sys.exit(0)
        conn.sendall(line.upper() + b"\r\n")
'''


@pytest.fixture
def fake_qemu(tmp_path):
    """An instance whose backend serves a console socket as QEMU does, started the way
    ``vmctl run`` starts QEMU (the forked child, then the supervisor by exec)."""
    from vmctl.runtime import spawn
    from vmctl.runtime.launch import _child_env

    script = tmp_path / "fake_qemu.py"
    script.write_text(FAKE_QEMU)
    state = state_dir()
    state.mkdir(mode=0o700, exist_ok=True)
    inst = Instance(state, "fake")
    cmd = [sys.executable, str(script), *cm.chardev_args(str(inst.dir / cm.QEMU_SOCKET))]
    inst.create({"name": "fake", "backend": "qemu", "socket": str(inst.dir / "qmp.sock"),
                 "argv": cmd}, {})
    lock = InstanceLock(state, "fake")
    assert lock.acquire()
    try:
        spawn.spawn_backend(str(inst.dir), lock.fd, cmd, _child_env(), foreground=False)
    finally:
        lock.release()
    wait_for(lambda: Path(cm.client_socket(str(inst.dir))).exists(), what="console.sock")
    return inst


def test_supervisor_keeps_the_first_byte_and_forwards_keys(fake_qemu, ptys):
    inst = fake_qemu
    wait_for(lambda: b"boot line" in inst.log_path.read_bytes(), what="the boot line in the log")
    assert b"LOST" not in inst.log_path.read_bytes()  # connected before the supervisor's exec
    assert oct(os.stat(inst.dir / "console.sock").st_mode & 0o777) == "0o600"
    con = ptys("console", "fake")
    con.expect(b"fake firmware: boot line\r\n")  # the replay
    con.send(b"hello\r")
    con.expect(b"HELLO\r\n")  # keystrokes reach the backend, its answer comes live
    con.send(b"\x1d")
    code, err = con.wait()
    assert code == 0 and "detached from fake (it keeps running)" in err
    pid = json.loads((inst.dir / "proc.json").read_text())["pid"]
    assert is_alive(pid, None)
    again = ptys("console", "fake")
    again.expect(b"HELLO\r\n")  # a second attach replays what the first saw
    again.send(b"quit\r")
    code, err = again.wait()
    assert code == 0 and "fake: the machine's console closed (qemu ended)" in err
    log = inst.log_path.read_bytes()
    assert log.endswith(b"fake firmware: boot line\r\nHELLO\r\nfake: power down\r\n")
    wait_for(lambda: not (inst.dir / "console.sock").exists(), what="console.sock removed")


# -- the simulator ----------------------------------------------------------------------------
def test_sim_console_replays_echoes_detaches_and_attaches_again(ptys):
    cli_ok("run", P9)
    con = ptys("console", "p9-dual")
    out = con.expect(b"vmctl-sim: machine 'p9-dual'")
    assert b"vmctl-sim: vof started on CPU 0\r\n" in out  # replayed since boot, CRLF lines
    con.expect(b"vmctl-sim: userspace up\r\n", timeout=20)  # live, as the boot goes on
    con.send(b"uname -a\r")
    con.expect(b"vmctl-sim: console input 'uname -a' (no shell in the simulated guest)")
    con.send(b"\x1d")
    code, err = con.wait()
    assert code == 0
    assert err.splitlines() == ["Connected to p9-dual (sim); escape character is ^] (Ctrl-])",
                                "", "detached from p9-dual (it keeps running)"]
    assert json.loads(cli_ok("status", "p9-dual", "--format", "json").stdout)["state"] == "running"
    again = ptys("console", "p9-dual")
    again.expect(b"console input 'uname -a'")
    again.send(b"\x1d")
    assert again.wait()[0] == 0
    assert "console input 'uname -a'" in cli_ok("logs", "p9-dual").stdout


def test_sim_console_is_one_client_at_a_time(ptys):
    cli_ok("run", P9)
    first = ptys("console", "p9-dual")
    first.expect(b"vmctl-sim: machine")
    busy = cli("console", "p9-dual")
    assert busy.returncode == 1
    assert "error: the console of 'p9-dual' is in use by another client (pid " in busy.stderr
    assert "hint: detach that client (Ctrl-] in its terminal), or take the console over: " \
           "vmctl console p9-dual --force" in busy.stderr
    second = ptys("console", "p9-dual", "--force")
    second.expect(b"vmctl-sim: machine")
    code, err = first.wait()
    assert code == 1 and "p9-dual: the console of 'p9-dual' was taken over by pid " in err
    second.send(b"\x1d")
    assert second.wait()[0] == 0


def test_sim_console_in_pipe_mode_for_scripts():
    cli_ok("run", P9)
    res = subprocess.run([sys.executable, "-m", "vmctl", "console", "p9-dual", "--idle", "0.5"],
                         input=b"echo hi\r", capture_output=True, cwd=ROOT, timeout=30)
    assert res.returncode == 0, res.stderr
    assert b"vmctl-sim: machine 'p9-dual'" in res.stdout  # the replay, on stdout
    assert b"console input 'echo hi'" in res.stdout
    assert b"Connected to p9-dual" not in res.stdout  # vmctl's words go to stderr
    assert b"detached from p9-dual at the end of input (it keeps running)" in res.stderr
    quiet = subprocess.run([sys.executable, "-m", "vmctl", "console", "p9-dual", "--no-replay",
                            "--idle", "0.2"], stdin=subprocess.DEVNULL, capture_output=True,
                           cwd=ROOT, timeout=30)
    assert quiet.returncode == 0 and b"vmctl-sim: machine" not in quiet.stdout


def test_console_of_a_crashed_or_unknown_instance_is_one_clear_message():
    cli_ok("run", P9)
    inst = instance("p9-dual")
    os.kill(int((inst.dir / "pid").read_text()), signal.SIGKILL)
    wait_for(lambda: inst.exit_path.exists(), what="exit.json")
    res = cli("console", "p9-dual")
    assert res.returncode == 1 and "Traceback" not in res.stderr
    assert res.stderr.splitlines() == [
        "error: instance 'p9-dual' is crashed (killed by SIGKILL): its console is gone",
        "hint: vmctl logs p9-dual shows what it printed; vmctl stop p9-dual cleans it up, "
        "vmctl run starts it again"]
    unknown = cli("console", "nope")
    assert unknown.returncode == 1 and "error: no instance named 'nope'" in unknown.stderr
    bad = cli("console", "../etc")
    assert bad.returncode == 2 and "invalid instance name" in bad.stderr


def test_sim_ending_while_attached_ends_the_session(ptys):
    cli_ok("run", P9)
    con = ptys("console", "p9-dual")
    con.expect(b"vmctl-sim: machine")
    cli_ok("qmp", "p9-dual", "quit")
    code, err = con.wait()
    assert code == 0 and "p9-dual: the simulated machine ended" in err


# -- real QEMU --------------------------------------------------------------------------------
@pytest.fixture
def kernel_machine(tmp_path, tmp_path_factory, monkeypatch):
    """p9-dual with Debian's ppc64le kernel: it prints its boot log on hvc0, then panics
    at root mount (no initrd), and -action panic=pause keeps it there."""
    from tests.conftest import guest_kernel

    if shutil.which("qemu-system-ppc64") is None:
        pytest.fail("qemu-system-ppc64 is not installed: these tests need real QEMU "
                    "(apt-get install --no-install-recommends qemu-system-ppc)")
    monkeypatch.setenv("VMCTL_CACHE_DIR", str(tmp_path_factory.mktemp("caps")))
    kernel = guest_kernel("ppc64le", tmp_path_factory)
    path = tmp_path / "p9-boot.toml"
    path.write_text(f'include = ["{MACHINES}/p9-dual.toml"]\n[machine]\nname = "p9-boot"\n'
                    f'[pseries]\nfirmware = "vof"\n'
                    f'[boot]\nkernel = "{kernel}"\nappend = "console=hvc0"\n')
    return str(path)


@pytest.mark.qemu
def test_real_qemu_console_live_replay_detach_and_attach_again(kernel_machine, ptys):
    cli_ok("run", "--backend", "qemu", kernel_machine, "--paused")
    inst = instance("p9-boot")
    argv = json.loads((inst.dir / "instance.json").read_text())["argv"]
    qemu_sock = cm.qemu_socket(str(inst.dir), str(inst.socket()))
    assert argv[argv.index("-chardev") + 1] == \
        f"socket,id=vmctl-console,path={qemu_sock},server=on,wait=off"
    con = ptys("console", "p9-boot")
    con.connected()  # nothing printed yet: paused before the firmware
    cli_ok("qmp", "p9-boot", "cont")
    out = con.expect(b"Kernel panic - not syncing", timeout=25)  # live
    assert b"radix-mmu" in out
    con.send(b"\x1d")
    code, err = con.wait()
    assert code == 0 and "detached from p9-boot (it keeps running)" in err
    status = json.loads(cli_ok("status", "p9-boot", "--format", "json").stdout)
    assert status["state"] == "running" and status["run_state"] == "guest-panicked"
    again = ptys("console", "p9-boot")
    replay = again.expect(b"Kernel panic - not syncing")
    assert replay.count(b"radix-mmu: Page sizes from device-tree") == 1
    again.send(b"\x1d")
    assert again.wait()[0] == 0
    log = inst.log_path.read_bytes()
    console = b"".join(ln for ln in log.splitlines(keepends=True)
                       if not ln.startswith(b"qemu-system-ppc64: "))
    assert console.startswith(b"[    0.000000] ")  # nothing lost before the supervisor came
    assert b"Kernel panic - not syncing" in console


@pytest.mark.qemu
def test_real_qemu_p9_shell_through_vmctl_console(ptys, session_cache):
    """The shipped p9-shell machine to its prompt, then a command typed through the console."""
    from tests.guest.test_real_qemu import provide
    from vmctl.initramfs import PROMPT

    provide("ppc64le", session_cache)
    cli_ok("run", "--backend", "qemu", str(MACHINES / "p9-shell.toml"))
    con = ptys("console", "p9-shell")
    con.expect(PROMPT.encode(), timeout=25)
    seen = len(con.out)
    con.send(b"cat /proc/interrupts\r")
    con.expect(PROMPT.encode(), since=seen)  # the command ran, the shell asks again
    answer = con.out[seen:]
    assert b"cat /proc/interrupts\r\n" in answer  # the guest's tty echoed what we typed
    assert re.search(rb"XIVE-IPI .*IPI-0\r\n", answer)  # dual + POWER9: XIVE at CAS
    assert re.search(rb"XIVE-IRQ .*hvc_console\r\n", answer) and b"XICS" not in answer
    con.send(b"\x1d")
    code, err = con.wait()
    assert code == 0 and "detached from p9-shell (it keeps running)" in err
    assert json.loads(cli_ok("status", "p9-shell", "--format", "json").stdout)["state"] == "running"
