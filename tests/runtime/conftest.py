"""Runtime test helpers: the CLI in a subprocess, and no process left behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from vmctl.runtime.instance import Instance, list_instances
from vmctl.runtime.procinfo import is_alive

ROOT = Path(__file__).resolve().parents[2]
MACHINES = ROOT / "machines"

# Until vmctl.cli.main lists "run" itself, register it the way main.py will.
_SHIM = ("import sys; from vmctl.cli import main as M; "
         "M.COMMAND_MODULES = tuple(dict.fromkeys(M.COMMAND_MODULES + ('run',))); "
         "M.main(sys.argv[1:])")


def cli(*args: str, env: dict[str, str] | None = None,
        timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """``vmctl ARGS`` as a user runs it."""
    from vmctl.cli import main as M

    head = ["-m", "vmctl"] if "run" in M.COMMAND_MODULES else ["-c", _SHIM]
    return subprocess.run([sys.executable, *head, *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, cwd=ROOT, timeout=timeout)


def cli_ok(*args: str, **kw) -> subprocess.CompletedProcess[str]:
    proc = cli(*args, **kw)
    assert proc.returncode == 0, f"vmctl {' '.join(args)}: {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc


def state_dir() -> Path:
    return Path(os.environ["VMCTL_STATE_DIR"])


def kill_leftovers(state: Path) -> None:
    for inst in list_instances(state):
        proc = inst.proc() or {}
        for pid_key, start_key in (("pid", "start"), ("supervisor_pid", "supervisor_start")):
            pid = proc.get(pid_key)
            if pid and is_alive(pid, proc.get(start_key)):
                os.kill(pid, signal.SIGKILL)
        inst.remove()


@pytest.fixture(autouse=True)
def _no_leftovers():
    yield
    kill_leftovers(state_dir())


def instance(name: str) -> Instance:
    return Instance(state_dir(), name)


def read(path: Path) -> dict:
    return json.loads(path.read_text())
