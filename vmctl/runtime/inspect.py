"""What state an instance folder is in, from its files and its processes (no QMP).

==========  =========================================================================
state       meaning
==========  =========================================================================
starting    ``run`` holds the lock and the backend has not been recorded yet
running     the backend process is alive (pid *and* start time match ``proc.json``)
stopping    the backend is gone and its supervisor is still recording the exit
exited      the backend ended with status 0 (``quit``, a guest power-off)
crashed     the backend was killed or failed (exit status and log tail kept), or
            every process is gone without a record (stale folder, e.g. after kill -9
            of the supervisor or a reboot)
==========  =========================================================================

Everything but ``starting``/``running``/``stopping`` is *dead*: ``stop`` cleans it and
``run`` of the same name replaces it.
"""

from __future__ import annotations

import enum
import signal
import time
from dataclasses import dataclass, field
from typing import Any

from vmctl.runtime.instance import Instance
from vmctl.runtime.lock import InstanceLock
from vmctl.runtime.procinfo import is_alive


class State(str, enum.Enum):
    STARTING = "starting"
    RUNNING = "running"
    STOPPING = "stopping"
    EXITED = "exited"
    CRASHED = "crashed"

    @property
    def alive(self) -> bool:
        return self in (State.STARTING, State.RUNNING, State.STOPPING)


@dataclass
class Inspection:
    """The file-and-process view of one instance (``vmctl ps`` prints these)."""

    name: str
    state: State
    backend: str = ""
    pid: int | None = None
    supervisor_pid: int | None = None
    started: float | None = None
    socket: str = ""
    exit: dict[str, Any] | None = None
    reason: str = ""
    log_tail: list[str] = field(default_factory=list)

    def uptime(self, now: float | None = None) -> float | None:
        if self.started is None or not self.state.alive:
            return None
        return max(0.0, (time.time() if now is None else now) - self.started)

    def to_json(self, now: float | None = None) -> dict[str, Any]:
        up = self.uptime(now)
        return {"name": self.name, "state": self.state.value, "backend": self.backend,
                "pid": self.pid, "started": self.started,
                "uptime": None if up is None else round(up, 3), "socket": self.socket,
                "exit": self.exit, "reason": self.reason, "log_tail": self.log_tail}


def describe_exit(exit_record: dict[str, Any] | None) -> str:
    """``"killed by SIGKILL"``, ``"exit status 1"``, or ``"exit status unknown"``."""
    if not exit_record:
        return "exit status unknown"
    if exit_record.get("error"):
        return str(exit_record["error"])
    sig = exit_record.get("signal")
    if sig:
        return f"killed by {sig}"
    return f"exit status {exit_record.get('returncode')}"


def inspect(inst: Instance, tail: int = 10) -> Inspection:
    """Classify ``inst`` (see the module docstring)."""
    meta = inst.meta() or {}
    proc = inst.proc()
    out = Inspection(inst.name, State.CRASHED, backend=str(meta.get("backend", "")),
                     socket=str(meta.get("socket", "")))
    if proc is not None:
        out.pid = proc.get("pid")
        out.supervisor_pid = proc.get("supervisor_pid")
        out.started = proc.get("started")
        if is_alive(out.pid, proc.get("start")):
            out.state = State.RUNNING
            return out
        ex = inst.exit()
        if ex is None and is_alive(out.supervisor_pid, proc.get("supervisor_start")):
            out.state = State.STOPPING
            return out
        out.exit = ex
        if ex is not None and ex.get("returncode") == 0 and not ex.get("signal"):
            out.state = State.EXITED
            out.reason = "exit status 0"
        else:
            out.reason = describe_exit(ex) if ex else (
                f"stale: process {out.pid} is gone and left no exit status")
    elif InstanceLock(inst.state, inst.name).is_held():
        out.state = State.STARTING
        return out
    else:
        ex = inst.exit()
        out.exit = ex
        out.reason = describe_exit(ex) if ex else "stale: start-up never completed"
    out.log_tail = inst.log_tail(tail)
    return out


def signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"
