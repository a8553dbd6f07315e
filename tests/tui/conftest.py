"""TUI test helpers: sim instances started in tmp_path, in-process feeds, screen text."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from vmctl.runtime.instance import Instance, list_instances
from vmctl.runtime.procinfo import is_alive

ROOT = Path(__file__).resolve().parents[2]
MACHINES = ROOT / "machines"


def state_dir() -> Path:
    return Path(os.environ["VMCTL_STATE_DIR"])


@pytest.fixture(scope="session")
def pm():
    """One plugin manager for the session (the CLI builds one per run the same way)."""
    from vmctl.plugins import get_plugin_manager

    return get_plugin_manager()


@pytest.fixture
def start(pm) -> Iterator[Callable[..., Instance]]:
    """``start("p9-dual.toml", name="a", paused=False, backend="sim")`` → the Instance.

    A relative machine file is looked up in ``machines/``; an absolute one is used as is.

    Every process started is killed and its folder removed after the test.
    """
    from vmctl.config import load_machine
    from vmctl.runtime.launch import Launch

    def _start(machine: str = "p9-dual.toml", *, name: str | None = None, paused: bool = False,
               backend: str = "sim") -> Instance:
        m = load_machine(MACHINES / machine)
        started = Launch(m, pm, backend=backend, name=name, paused=paused).start()
        return Instance(state_dir(), started.name)

    yield _start
    for inst in list_instances(state_dir()):
        kill(inst)
        inst.remove()


def kill(inst: Instance, sig: int = signal.SIGKILL, supervisor: bool = True) -> None:
    """Send ``sig`` to the backend (and its supervisor) of ``inst`` if they live."""
    proc = inst.proc() or {}
    keys = [("pid", "start")] + ([("supervisor_pid", "supervisor_start")] if supervisor else [])
    for pid_key, start_key in keys:
        pid = proc.get(pid_key)
        if pid and is_alive(pid, proc.get(start_key)):
            os.kill(pid, sig)


def screen_text(app) -> str:
    """The screen as plain text, one line per terminal row."""
    return "\n".join("".join(seg.text for seg in strip)
                     for strip in app.screen._compositor.render_strips())


async def wait_for(pilot, predicate: Callable[[], bool], timeout: float = 10.0,
                   what: str = "condition") -> None:
    """Let the app run until ``predicate()`` holds; fail after ``timeout`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            text = screen_text(pilot.app)
            raise AssertionError(f"timed out waiting for {what}; screen:\n{text}")
        await pilot.pause(0.05)
