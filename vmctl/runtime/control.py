"""``ps``, ``status``, ``stop`` and ``qmp`` as plain synchronous functions.

Each opens at most a few short QMP sessions (``asyncio.run`` per call) and never touches
an instance other than the one named.  Unknown names are errors that list the instances
there are.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from vmctl.errors import VmctlError
from vmctl.paths import state_dir
from vmctl.runtime.inspect import Inspection, State, describe_exit, inspect
from vmctl.runtime.instance import Instance, find_instance, list_instances
from vmctl.runtime.lock import InstanceLock
from vmctl.runtime.procinfo import is_alive
from vmctl.runtime.why import CONSOLE_BYTES, why_stopped

#: Seconds granted to each stop step: QMP quit, SIGTERM, SIGKILL.
STOP_TIMEOUTS = {"quit": 5.0, "SIGTERM": 5.0, "SIGKILL": 5.0}


def _state() -> Path:
    return state_dir()


def find(name: str) -> Instance:
    """The instance called ``name``; an error listing the known ones otherwise."""
    return find_instance(_state(), name, lambda i: f"{i.name} ({inspect(i, tail=0).state.value})")


def _run(coro: Any) -> Any:
    return asyncio.run(coro)


async def _query_states(targets: list[tuple[str, str]]) -> dict[str, str]:
    from vmctl.runtime.client import execute_once

    async def one(name: str, sock: str) -> tuple[str, str]:
        try:
            reply = await asyncio.wait_for(execute_once(sock, "query-status", label=name), 2.0)
            return name, str(reply.get("status", "?"))
        except (VmctlError, asyncio.TimeoutError):
            return name, "?"

    return dict(await asyncio.gather(*(one(n, s) for n, s in targets)))


def ps() -> list[dict[str, Any]]:
    """Every instance: its file/process state, plus the run state over QMP when alive."""
    found = [inspect(i, tail=5) for i in list_instances(_state())]
    targets = [(i.name, i.socket) for i in found if i.state is State.RUNNING]
    states = _run(_query_states(targets)) if targets else {}
    now = time.time()
    rows = []
    for insp in found:
        row = insp.to_json(now)
        row["run_state"] = states.get(insp.name)
        rows.append(row)
    return rows


def _load_machine(inst: Instance, pm: Any) -> Any:
    import json

    from vmctl.config.machine import Machine
    from vmctl.config.schema import Schema

    with open(inst.machine_path, encoding="utf-8") as f:
        return Machine.from_json(json.load(f), Schema.from_plugins(pm))


def _probes(inst: Instance, backend: str, pm: Any) -> list[Any]:
    from vmctl.plugins import call

    machine = _load_machine(inst, pm)
    probes = []
    for plugin, probe in call(pm, "vmctl_live_probe", machine=machine, backend=backend):
        if probe is not None:
            probes.append(probe)
    return probes


async def _live(insp: Inspection, probes: list[Any],
                console: Any = None) -> dict[str, Any]:
    from vmctl.runtime.client import InstanceClient, QMPCommandError

    async with InstanceClient(insp.socket, label=insp.name) as client:
        snap = await client.snapshot(probes, console)
        out: dict[str, Any] = {"run_state": snap["status"].get("status"),
                               "qmp": client.greeting.get("QMP", {}).get("version"),
                               "plugins": snap["plugins"]}
        if insp.backend == "sim":
            try:
                out["sim"] = await client.execute("__org.vmctl_query-sim")
            except QMPCommandError:
                pass
        return out


def status(name: str, pm: Any) -> dict[str, Any]:
    """One instance in full: state, backend, pid, uptime, socket, run state, plugins."""
    inst = find(name)
    insp = inspect(inst, tail=10)
    out = insp.to_json()
    out.update({"run_state": None, "plugins": {}, "dir": str(inst.dir)})
    if insp.state is State.RUNNING:
        probes = _probes(inst, insp.backend, pm)
        out.update(_run(_live(insp, probes, lambda n: inst.log_tail(n, CONSOLE_BYTES))))
        why = why_stopped(out.get("run_state"), inst.log_tail(80, CONSOLE_BYTES),
                          paused_at_start=bool((inst.meta() or {}).get("paused")))
        if why:
            out["run_reason"] = why
    return out


def qmp(name: str, command: str, arguments: dict[str, Any] | None) -> Any:
    """Send one command to instance ``name`` and return its ``return`` value."""
    from vmctl.runtime.client import execute_once

    inst = find(name)
    insp = inspect(inst)
    if insp.state is not State.RUNNING:
        raise VmctlError(f"instance {name!r} is {insp.state.value}"
                         + (f" ({insp.reason})" if insp.reason else ""),
                         hint=f"vmctl stop {name} cleans it up; vmctl run starts it again")
    return _run(execute_once(insp.socket, command, arguments, label=name))


def _wait_gone(pid: int, start: int | None, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while is_alive(pid, start):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.01)
    return True


def _signal(pid: int, signum: int) -> None:
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        pass


def _wait_started(inst: Instance, timeout: float = 10.0) -> Inspection:
    deadline = time.monotonic() + timeout
    insp = inspect(inst)
    while insp.state is State.STARTING and time.monotonic() < deadline:
        time.sleep(0.02)
        insp = inspect(inst)
    return insp


def stop(name: str, *, force: bool = False,
         progress: Callable[[str], None] = lambda msg: None) -> dict[str, Any]:
    """Stop instance ``name`` and remove its state (see ``STOP_TIMEOUTS``).

    Graceful: QMP ``quit``, then SIGTERM, then SIGKILL, each given its timeout.
    ``force``: SIGKILL at once.  A dead instance (crashed, exited) is only cleaned.
    """
    inst = find(name)
    insp = _wait_started(inst)
    was = insp.state
    steps: list[str] = []
    proc = inst.proc() or {}
    pid, start = insp.pid, proc.get("start")
    if insp.state is State.RUNNING and pid:
        plan = ["SIGKILL"] if force else ["quit", "SIGTERM", "SIGKILL"]
        for step in plan:
            progress(f"{name}: {step}")
            if step == "quit":
                try:
                    qmp(name, "quit", None)
                except VmctlError:
                    continue
            else:
                _signal(pid, getattr(signal, step))
            steps.append(step)
            if _wait_gone(pid, start, STOP_TIMEOUTS[step]):
                break
        else:
            raise VmctlError(f"process {pid} of {name!r} survived SIGKILL",
                             hint="it may be stuck in the kernel (D state); check ps -o stat")
    sup, sup_start = proc.get("supervisor_pid"), proc.get("supervisor_start")
    if sup and not _wait_gone(sup, sup_start, 3.0):
        _signal(sup, signal.SIGKILL)
        _wait_gone(sup, sup_start, 3.0)
    exit_record = inst.exit()
    lock = InstanceLock(inst.state, name)
    if not lock.acquire(wait=5.0):
        raise VmctlError(f"instance {name!r} is still in use (its lock is held)",
                         hint=f"vmctl status {name}")
    try:
        inst.remove()
    finally:
        lock.release()
    return {"name": name, "was": was.value, "steps": steps,
            "exit": describe_exit(exit_record) if exit_record or was is not State.RUNNING
            else "exit status unknown", "reason": insp.reason}
