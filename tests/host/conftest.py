"""Fixtures for the host journal tests: fake trees, the CLI in a subprocess and in-process.

``vfio_root`` is the passthrough desktop with every function on its host driver (the tree
``vmctl host apply machines/x86-passthrough.toml`` starts from: 6 steps); ``ap_root`` is an
s390 host with adapters 4–7 × domains 1, 4, 0xab all owned by the host
(``machines/s390-crypto.toml``: 7 steps).  ``vmctl_run`` runs the real CLI in this process
(fast; a traceback propagates and fails the test), ``vmctl_start`` starts it as a child
process that a test may stop and ``kill -9``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import MACHINES, ROOT

PASSTHROUGH = str(MACHINES / "x86-passthrough.toml")
CRYPTO = str(MACHINES / "s390-crypto.toml")


@pytest.fixture
def vfio_root(tmp_path: Path) -> Path:
    from vmctl_vfio.fakesys import host_scenario

    root = tmp_path / "vfio-host"
    host_scenario(root, memlock=None)
    return root


@pytest.fixture
def ap_root(tmp_path: Path) -> Path:
    from vmctl_vfio_ap.fakesys import build_host

    root = tmp_path / "ap-host"
    build_host(root, adapters=range(4, 8), domains=(1, 4, 0xAB))
    return root


@pytest.fixture
def nic_machine(tmp_path: Path) -> str:
    """A second x86 machine passing through the NIC (group 8): 3 steps, independent of the GPU's."""
    path = tmp_path / "x86-nic.toml"
    path.write_text(f'include = ["{MACHINES}/base/x86.toml"]\n\n[machine]\nname = "x86-nic"\n\n'
                    '[[device]]\nid = "nic0"\nkind = "vfio-pci"\nhost = "0000:03:00.0"\niommu = "type1"\n')
    return str(path)


def handlers() -> list:
    from vmctl.plugins import call_flat, get_plugin_manager

    return call_flat(get_plugin_manager(), "vmctl_fake_kernel")


def sysfs_of(root: Path):
    """A Sysfs on ``root`` with every plugin's fake-kernel handlers, as the CLI builds it."""
    from vmctl.host.sysfs import Sysfs

    return Sysfs(root, handlers())


@dataclass
class Ran:
    code: int
    out: str
    err: str


@pytest.fixture
def vmctl_run(capsys: pytest.CaptureFixture[str]) -> Callable[..., Ran]:
    """``vmctl_run("host", "undo", "--sysfs-root", root)``: the CLI in this process."""
    from vmctl.cli.main import main

    def run(*args: str | os.PathLike[str]) -> Ran:
        capsys.readouterr()
        try:
            main([str(a) for a in args])
            code = 0
        except SystemExit as exc:
            code = int(exc.code or 0)
        out, err = capsys.readouterr()
        return Ran(code, out, err)

    return run


def start(*args: str | os.PathLike[str], env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """``python -m vmctl ARGS`` as a child process (stdout and stderr piped)."""
    return subprocess.Popen([sys.executable, "-m", "vmctl", *map(str, args)], cwd=ROOT, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={**os.environ, **(env or {})})


@pytest.fixture
def vmctl_start() -> Callable[..., subprocess.Popen[str]]:
    procs: list[subprocess.Popen[str]] = []

    def run(*args: str | os.PathLike[str], env: dict[str, str] | None = None) -> subprocess.Popen[str]:
        procs.append(start(*args, env=env))
        return procs[-1]

    yield run
    for p in procs:
        if p.poll() is None:
            p.kill()
            p.wait()
        for f in (p.stdout, p.stderr):
            if f:
                f.close()


def wait_stopped(proc: subprocess.Popen[str], timeout: float = 20.0) -> None:
    """Until ``proc`` has stopped itself (SIGSTOP at a ``VMCTL_JOURNAL_PAUSE`` point).

    Fails when it exits instead: then the pause point was never reached.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pid, status = os.waitpid(proc.pid, os.WUNTRACED | os.WNOHANG)
        if pid == 0:
            time.sleep(0.01)
            continue
        if os.WIFSTOPPED(status):
            return
        proc.returncode = os.waitstatus_to_exitcode(status)
        out, err = proc.communicate()
        pytest.fail(f"vmctl exited ({proc.returncode}) instead of pausing:\n{out}\n{err}")
    pytest.fail(f"vmctl did not pause within {timeout} s")


def kill9(proc: subprocess.Popen[str]) -> None:
    """``kill -9`` a (stopped) child and reap it."""
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    assert proc.returncode == -signal.SIGKILL


def finish(proc: subprocess.Popen[str], timeout: float = 30.0) -> Ran:
    out, err = proc.communicate(timeout=timeout)
    return Ran(proc.returncode, out, err)
