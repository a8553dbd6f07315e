"""``vmctl run`` on a state dir at the socket-length limit, full, read-only or forbidden.

Seen before: the simulator bound a temporary ``.PID.sock`` beside ``qmp.sock``, which is
longer, so a state dir of about 92–94 bytes failed with "AF_UNIX path too long" depending
on the pid; a nearly full or read-only state file system failed only after the 10 s
start-up timeout, with "(the log is empty)", and left a folder behind.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import MACHINES, run_vmctl
from tests.runtime.conftest import kill_leftovers
from vmctl.runtime.instance import list_instances

MACHINE = str(MACHINES / "p9-dual.toml")


def _state_of_length(tmp_path: Path, total: int) -> Path:
    """A state dir such that ``STATE/p9-dual/qmp.sock`` is ``total`` bytes long."""
    want = total - len("/p9-dual/qmp.sock")
    base = str(tmp_path / "s")
    state = Path(base + "x" * (want - len(base)))
    assert len(str(state / "p9-dual" / "qmp.sock")) == total
    return state


@pytest.mark.parametrize("total", [105, 106, 107, 108])
def test_socket_paths_at_the_unix_limit(tmp_path: Path, total: int):
    state = _state_of_length(tmp_path, total)
    env = {"VMCTL_STATE_DIR": str(state)}
    try:
        proc = run_vmctl("run", MACHINE, "--format", "json", env=env)
        assert proc.returncode == 0, proc.stderr
        import json

        sock = json.loads(proc.stdout)["socket"]
        assert len(sock.encode()) <= 107
        assert (sock == str(state / "p9-dual" / "qmp.sock")) == (total <= 107)
        assert run_vmctl("qmp", "p9-dual", "query-status", env=env).returncode == 0
        assert run_vmctl("stop", "p9-dual", env=env).returncode == 0
        assert not Path(sock).exists()
    finally:
        kill_leftovers(state)


@pytest.fixture
def small_fs(tmp_path: Path):
    """A 256 KiB tmpfs (CI runs as root), unmounted afterwards."""
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k,mode=0700", "tmpfs", str(mnt)],
                   check=True)
    try:
        yield mnt
    finally:
        kill_leftovers(mnt / "state")
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def _fill(mnt: Path, leave_kib: int) -> None:
    filler = mnt / "filler"
    filler.unlink(missing_ok=True)
    st = os.statvfs(mnt)
    free = st.f_bavail * st.f_frsize
    with open(filler, "wb") as f:
        f.write(b"\0" * max(0, free - leave_kib * 1024))


def _run_fails_fast(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    t0 = time.monotonic()
    proc = run_vmctl("run", MACHINE, env=env, timeout=30)
    took = time.monotonic() - t0
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert took < 4, f"{took:.1f} s: the failure waited for the start-up timeout"
    assert "Traceback" not in proc.stderr
    return proc


@pytest.mark.parametrize("leave_kib", [0, 4, 8, 12, 16])
def test_a_full_state_file_system_fails_at_once_and_leaves_nothing(small_fs: Path, leave_kib: int):
    state = small_fs / "state"
    env = {"VMCTL_STATE_DIR": str(state)}
    state.mkdir(mode=0o700)
    _fill(small_fs, leave_kib)
    proc = _run_fails_fast(env)
    assert "No space left on device" in proc.stderr and "ENOSPC" in proc.stderr, proc.stderr
    assert "hint:" in proc.stderr
    assert list_instances(state) == []
    assert not (state / "p9-dual").exists()
    # nothing still holds the name: with space again, the same run works at once
    (small_fs / "filler").unlink()
    proc = run_vmctl("run", MACHINE, env=env)
    assert proc.returncode == 0, proc.stderr
    assert run_vmctl("stop", "p9-dual", env=env).returncode == 0


def test_a_read_only_state_file_system_fails_at_once(small_fs: Path):
    state = small_fs / "state"
    state.mkdir(mode=0o700)
    subprocess.run(["mount", "-o", "remount,ro", str(small_fs)], check=True)
    proc = _run_fails_fast({"VMCTL_STATE_DIR": str(state)})
    assert "Read-only file system (EROFS)" in proc.stderr
    assert "read-only" in proc.stderr.split("hint:")[1]


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run vmctl as another user")
def test_a_forbidden_state_dir_fails_at_once(tmp_path: Path):
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    nobody = shutil.which("setpriv")
    assert nobody, "setpriv (util-linux) is part of Debian's base system"
    env = {**os.environ, "VMCTL_STATE_DIR": str(state), "HOME": str(tmp_path)}
    t0 = time.monotonic()
    proc = subprocess.run([nobody, "--reuid=65534", "--regid=65534", "--clear-groups",
                           sys.executable, "-m", "vmctl", "run", MACHINE], capture_output=True,
                          text=True, env=env, cwd=Path(__file__).parents[2], timeout=30)
    assert proc.returncode == 1, proc.stderr
    assert time.monotonic() - t0 < 4
    assert "Permission denied (EACCES)" in proc.stderr
    assert list(state.iterdir()) == []
