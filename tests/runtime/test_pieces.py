"""The runtime's parts on their own: socket paths, process identity, lock, supervisor, states."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from vmctl.errors import VmctlError
from vmctl.runtime.inspect import State, inspect
from vmctl.runtime.instance import Instance, check_name, ensure_state_dir
from vmctl.runtime.launch import SUPERVISOR
from vmctl.runtime.lock import InstanceLock
from vmctl.runtime.procinfo import is_alive, start_time
from vmctl.runtime.sockpath import MAX_SOCKET_PATH, choose_socket


# -- socket paths ----------------------------------------------------------------------------
def test_socket_in_the_instance_folder_when_it_fits(tmp_path):
    short = Path(tempfile.mkdtemp(prefix="v", dir="/tmp"))
    try:
        assert choose_socket(short / "p9", short) == short / "p9" / "qmp.sock"
    finally:
        os.rmdir(short)


def test_deep_state_dir_falls_back_to_short_paths(tmp_path):
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    sock = choose_socket(deep / "p9-dual", deep, tmp=tmp_path)
    assert len(os.fsencode(str(sock))) <= MAX_SOCKET_PATH
    assert sock.name.endswith(".sock")


def test_private_tmp_folder_must_really_be_private(tmp_path):
    base = Path(tempfile.mkdtemp(prefix="v", dir="/tmp"))
    try:
        deep = tmp_path / ("x" * 120)
        folder = base / f"vmctl-{os.getuid()}"
        folder.mkdir(mode=0o755)
        os.chmod(folder, 0o755)
        with pytest.raises(VmctlError, match="not a private directory"):
            choose_socket(deep / "n", deep, tmp=base)
        os.chmod(folder, 0o700)
        sock = choose_socket(deep / "n", deep, tmp=base)
        assert sock.parent == folder
    finally:
        for p in sorted(base.rglob("*"), reverse=True):
            p.rmdir()
        base.rmdir()


def test_no_short_path_at_all_is_a_clear_error(tmp_path):
    deep = tmp_path / ("y" * 120)
    with pytest.raises(VmctlError) as err:
        choose_socket(deep / "n", deep, tmp=deep)
    assert "VMCTL_STATE_DIR" in err.value.hint


# -- names and the state dir -----------------------------------------------------------------
@pytest.mark.parametrize("bad", ["", "P9", "-x", "a" * 64, "a/b", "a b"])
def test_bad_instance_names(bad):
    with pytest.raises(VmctlError):
        check_name(bad)


def test_unusable_state_dir(tmp_path):
    afile = tmp_path / "file"
    afile.write_text("")
    with pytest.raises(VmctlError) as err:
        ensure_state_dir(afile / "state")
    assert "not usable" in err.value.message and "VMCTL_STATE_DIR" in err.value.hint


# -- process identity ------------------------------------------------------------------------
def test_pid_with_another_start_time_is_not_ours():
    me = os.getpid()
    assert is_alive(me, start_time(me))
    assert not is_alive(me, (start_time(me) or 0) + 1)


def test_dead_and_zombie_processes_are_not_alive():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    deadline = time.monotonic() + 10
    while is_alive(child.pid, None) and time.monotonic() < deadline:
        time.sleep(0.01)  # exited but not reaped: a zombie
    assert not is_alive(child.pid, None)
    child.wait()
    assert not is_alive(child.pid, None)


# -- lock ------------------------------------------------------------------------------------
def test_lock_has_one_holder_and_children_keep_it(tmp_path):
    a, b = InstanceLock(tmp_path, "x"), InstanceLock(tmp_path, "x")
    assert a.acquire()
    assert not b.acquire(wait=0.05)
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"],
                             pass_fds=(a.fd,))
    try:
        a.release()
        assert b.is_held() and not b.acquire()
    finally:
        child.kill()
        child.wait()
    assert b.acquire()


# -- supervisor ------------------------------------------------------------------------------
def supervise(folder: Path, *cmd: str, detach: bool = False) -> subprocess.CompletedProcess:
    lock = InstanceLock(folder, "s")
    assert lock.acquire()
    try:
        args = [sys.executable, "-I", "-S", str(SUPERVISOR)] + (["--detach"] if detach else [])
        return subprocess.run([*args, str(folder), str(lock.fd), "--", *cmd],
                              pass_fds=(lock.fd,), capture_output=True, timeout=30)
    finally:
        lock.release()


def test_supervisor_records_exit_status_pid_and_log(tmp_path):
    res = supervise(tmp_path, sys.executable, "-c",
                    "import sys; print('hello'); sys.exit(3)")
    assert res.returncode == 3
    ex = json.loads((tmp_path / "exit.json").read_text())
    assert ex["returncode"] == 3 and ex["signal"] is None
    proc = json.loads((tmp_path / "proc.json").read_text())
    assert int((tmp_path / "pid").read_text()) == proc["pid"] == ex["pid"]
    assert "hello" in (tmp_path / "log").read_text()


def test_supervisor_records_the_killing_signal(tmp_path):
    res = supervise(tmp_path, sys.executable, "-c",
                    "import os, signal; os.kill(os.getpid(), signal.SIGKILL)")
    assert res.returncode == 128 + signal.SIGKILL
    assert json.loads((tmp_path / "exit.json").read_text())["signal"] == "SIGKILL"


def test_supervisor_reports_a_missing_binary(tmp_path):
    res = supervise(tmp_path, "qemu-system-nonexistent")
    assert res.returncode == 127
    ex = json.loads((tmp_path / "exit.json").read_text())
    assert ex["error"] == "cannot execute qemu-system-nonexistent: No such file or directory"


# -- instance states -------------------------------------------------------------------------
def fake_instance(state: Path, name: str, proc: dict | None, exit_: dict | None) -> Instance:
    inst = Instance(state, name)
    inst.dir.mkdir(parents=True)
    (inst.dir / "instance.json").write_text(json.dumps({"name": name, "backend": "sim"}))
    (inst.dir / "log").write_text("booting\nvmctl-sim: error: it broke\n")
    if proc is not None:
        (inst.dir / "proc.json").write_text(json.dumps(proc))
    if exit_ is not None:
        (inst.dir / "exit.json").write_text(json.dumps(exit_))
    return inst


def dead_pid() -> tuple[int, int]:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    start = start_time(p.pid)
    p.wait()
    return p.pid, start or 0


@pytest.mark.parametrize("exit_,state,reason", [
    ({"returncode": None, "signal": "SIGKILL"}, State.CRASHED, "killed by SIGKILL"),
    ({"returncode": 1, "signal": None}, State.CRASHED, "exit status 1"),
    ({"returncode": 0, "signal": None}, State.EXITED, "exit status 0"),
    (None, State.CRASHED, "stale: process"),
])
def test_dead_instances_are_classified_with_their_log(tmp_path, exit_, state, reason):
    pid, start = dead_pid()
    inst = fake_instance(tmp_path, "x", {"pid": pid, "start": start}, exit_)
    insp = inspect(inst)
    assert insp.state is state and insp.reason.startswith(reason)
    assert insp.log_tail[-1] == "vmctl-sim: error: it broke"


def test_live_instance_and_reused_pid(tmp_path):
    me = os.getpid()
    inst = fake_instance(tmp_path, "x", {"pid": me, "start": start_time(me)}, None)
    assert inspect(inst).state is State.RUNNING
    other = fake_instance(tmp_path, "y", {"pid": me, "start": (start_time(me) or 0) - 1}, None)
    assert inspect(other).state is State.CRASHED  # same pid, another process: stale


def test_starting_while_run_holds_the_lock(tmp_path):
    inst = fake_instance(tmp_path, "x", None, None)
    lock = InstanceLock(tmp_path, "x")
    assert lock.acquire()
    assert inspect(inst).state is State.STARTING
    lock.release()
    insp = inspect(inst)
    assert insp.state is State.CRASHED and "start-up never completed" in insp.reason
