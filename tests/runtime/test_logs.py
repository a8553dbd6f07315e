"""``vmctl logs NAME [-f] [--tail N]``: the instance log on the simulator and real QEMU, the
tail arithmetic, and what reaches a terminal."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time

import pytest

from vmctl.cli.console import TerminalText, tail_offset

from .conftest import MACHINES, ROOT, cli, cli_ok, instance
from .test_console import kernel_machine, ptys, wait_for  # noqa: F401 - fixtures

P9 = str(MACHINES / "p9-dual.toml")


# -- pieces -----------------------------------------------------------------------------------
@pytest.mark.parametrize("data, n, rest", [
    (b"", 3, b""),
    (b"a\nb\nc\n", 2, b"b\nc\n"),
    (b"a\nb\nc", 2, b"b\nc"),          # a last line without a newline counts
    (b"a\nb\nc\n", 5, b"a\nb\nc\n"),   # more than there are: everything
    (b"a\nb\nc\n", 0, b""),
    (b"a\n\n\nb\n", 3, b"\n\nb\n"),     # empty lines are lines
    (b"x" * 70000 + b"\n" + b"y\n" * 3, 4, b"x" * 70000 + b"\n" + b"y\n" * 3),  # across blocks
    (b"y\n" * 40000, 1, b"y\n"),
], ids=["empty", "two", "no-final-newline", "more-than-there-are", "zero", "empty-lines",
        "long-line", "many-blocks"])
def test_tail_offset(data, n, rest):
    f = io.BytesIO(data)
    assert data[tail_offset(f, n):] == rest


@pytest.mark.parametrize("chunks, shown", [
    ([b"[    1.0] ok\r\n"], "[    1.0] ok\n"),                           # CR LF -> LF
    ([b"\x1b[1;31mred\x1b[0m plain\n"], "red plain\n"),                  # colours removed
    ([b"\x1b]0;owned title\x07after\n"], "after\n"),                      # OSC title removed
    ([b"\x1b]52;c;ZXZpbA==\x1b\\x\n"], "x\n"),                            # OSC 52, ST-ended
    ([b"\x1bPq#0;2;0;0;0\x1b\\dcs gone\n"], "dcs gone\n"),                # DCS removed
    ([b"\x1bcreset\n"], "reset\n"),                                        # ESC c removed
    ([b"bell\x07 cr\rover\n"], "bell\\x07 cr\\rover\n"),                  # controls shown
    ([b"tab\tkept\n"], "tab\tkept\n"),
    ([b"c1 \xc2\x9b31m\n"], "c1 \\x9b31m\n"),                             # C1 CSI shown
    ([b"\x1b[3", b"1mred\x1b", b"[0m\r", b"\n"], "red\n"),                # cut between chunks
    ([b"caf\xc3", b"\xa9\n"], "caf\u00e9\n"),                             # UTF-8 across chunks
    ([b"bad \xff\n"], "bad \ufffd\n"),
    ([b"ends in CR\r"], "ends in CR\\r"),
], ids=lambda v: repr(v)[:40] if isinstance(v, list) else "")
def test_terminal_text(chunks, shown):
    t = TerminalText()
    out = "".join(t.feed(c) for c in chunks) + t.feed(b"", final=True)
    assert out == shown


# -- the simulator ----------------------------------------------------------------------------
def test_logs_tail_and_whole_log_on_the_sim():
    cli_ok("run", P9)
    inst = instance("p9-dual")
    wait_for(lambda: b"userspace up" in inst.log_path.read_bytes(), what="userspace up")
    whole = cli_ok("logs", "p9-dual").stdout
    assert whole == inst.log_path.read_text()
    assert "vmctl-sim: machine 'p9-dual' (2 vCPUs, seed 1, workload default) running" in whole
    tail = cli_ok("logs", "p9-dual", "--tail", "2").stdout
    assert tail.splitlines() == inst.log_path.read_text().splitlines()[-2:]
    assert cli_ok("logs", "p9-dual", "--tail", "0").stdout == ""
    bad = cli("logs", "p9-dual", "--tail", "-1")
    assert bad.returncode == 2 and "Invalid value for '--tail'" in bad.stderr
    unknown = cli("logs", "nope")
    assert unknown.returncode == 1 and "error: no instance named 'nope'" in unknown.stderr


def test_logs_follow_until_the_instance_stops():
    cli_ok("run", P9)
    inst = instance("p9-dual")
    follow = subprocess.Popen([sys.executable, "-m", "vmctl", "logs", "p9-dual", "-f",
                               "--tail", "1"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              cwd=ROOT)
    try:
        wait_for(lambda: b"userspace up" in inst.log_path.read_bytes(), what="userspace up")
        time.sleep(0.3)
        assert follow.poll() is None  # still following a running instance
        cli_ok("stop", "p9-dual")
        out, err = follow.communicate(timeout=10)
    finally:
        if follow.poll() is None:
            follow.kill()
            follow.wait()
    assert follow.returncode == 0, err
    assert b"vmctl-sim: userspace up\n" in out  # appended while it followed


def test_logs_after_a_crash_and_follow_ends_at_once():
    cli_ok("run", P9)
    inst = instance("p9-dual")
    wait_for(lambda: b"QMP on" in inst.log_path.read_bytes(), what="the first line")
    os.kill(int((inst.dir / "pid").read_text()), signal.SIGKILL)
    wait_for(lambda: inst.exit_path.exists(), what="exit.json")
    out = cli_ok("logs", "p9-dual").stdout
    assert "vmctl-sim: machine 'p9-dual'" in out
    t0 = time.monotonic()
    assert cli_ok("logs", "p9-dual", "-f", "--tail", "1").stdout.count("\n") == 1
    assert time.monotonic() - t0 < 5


def test_logs_to_a_terminal_cannot_drive_it(ptys):  # noqa: F811
    cli_ok("run", P9)
    inst = instance("p9-dual")
    wait_for(lambda: b"userspace up" in inst.log_path.read_bytes(), what="a quiet console")
    with open(inst.log_path, "ab") as f:  # what a hostile guest could print
        f.write(b"\x1b]0;owned\x07\x1b[2J\x1b[31mred\x1b[0m bell\x07\r\n")
    raw = subprocess.run([sys.executable, "-m", "vmctl", "logs", "p9-dual", "--tail", "1"],
                         capture_output=True, cwd=ROOT, timeout=30).stdout
    assert raw == b"\x1b]0;owned\x07\x1b[2J\x1b[31mred\x1b[0m bell\x07\r\n"  # a pipe: as is
    term = ptys("logs", "p9-dual", "--tail", "1")
    code, _ = term.wait()
    assert code == 0
    assert term.out.replace(b"\r\n", b"\n") == b"red bell\\x07\n"  # the pty adds CR itself


# -- real QEMU --------------------------------------------------------------------------------
@pytest.mark.qemu
def test_real_qemu_logs_tail_and_follow_to_the_end(kernel_machine):  # noqa: F811
    cli_ok("run", "--backend", "qemu", kernel_machine)
    inst = instance("p9-boot")
    wait_for(lambda: b"ret_from_kernel_thread" in inst.log_path.read_bytes()
             and b"OS terminated" in inst.log_path.read_bytes(), timeout=25,
             what="the panic's call trace and QEMU's own line about it")
    time.sleep(0.3)
    tail = subprocess.run([sys.executable, "-m", "vmctl", "logs", "p9-boot", "--tail", "5"],
                          capture_output=True, cwd=ROOT, timeout=30)
    assert tail.returncode == 0
    assert tail.stdout.splitlines(keepends=True) == \
        inst.log_path.read_bytes().splitlines(keepends=True)[-5:]
    assert len(tail.stdout.splitlines()) == 5
    assert b"\r\n" in tail.stdout  # the console's own line ends, as they are, to a pipe
    follow = subprocess.Popen([sys.executable, "-m", "vmctl", "logs", "p9-boot", "-f"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT)
    try:
        time.sleep(1.0)
        assert follow.poll() is None  # a panicked (paused) machine is still running
        cli_ok("stop", "p9-boot")
        out, err = follow.communicate(timeout=10)
    finally:
        if follow.poll() is None:
            follow.kill()
            follow.wait()
    assert follow.returncode == 0, err
    assert b"Kernel panic - not syncing: VFS: Unable to mount root fs" in out  # the console
    assert b"qemu-system-ppc64: OS terminated: OS panic: VFS" in out  # and QEMU's own line
    assert b"[    0.000000] " in out  # the whole log, from the kernel's first line
