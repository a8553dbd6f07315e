"""The guest scheduler's records: a vCPU, a task, their states, and the vCPU time buckets.

Shared by the event loop (:mod:`.machine`, which moves them) and its read-only views
(:mod:`.observe`).  ``Vcpu.times`` splits each vCPU's time into the :data:`B_WORK` …
:data:`B_OVERHEAD` buckets, the six parts :class:`~.counters.ApfCounters` reports.
"""

from __future__ import annotations

import enum
from collections import deque

from .kvm import HostApf
from .workload import FaultStream

__all__ = ["VcpuState", "TaskState", "Task", "Vcpu", "B_WORK", "B_SYNC", "B_HALTED", "B_IDLE",
           "B_IDLE_WAIT", "B_OVERHEAD"]


class VcpuState(enum.Enum):
    RUNNING = "running"
    IDLE = "idle"
    SYNC_STALLED = "sync-stalled"
    APF_HALTED = "apf-halted"


class TaskState(enum.Enum):
    RUNNABLE = "runnable"
    RUNNING = "running"
    APF_WAIT = "apf-wait"          # parked on a token, another task may run
    APF_HALTED = "apf-halted"      # waiting in the halted loop; still its vCPU's current task
    SYNC_BLOCKED = "sync-blocked"
    EXITED = "exited"


#: Indices of ``Vcpu.times``: running tasks, blocked in the host, halted in the guest's wait
#: loop, idle with nothing waiting, idle while tasks wait for pages, protocol work.
B_WORK, B_SYNC, B_HALTED, B_IDLE, B_IDLE_WAIT, B_OVERHEAD = range(6)


class Task:
    """A guest task pinned to vCPU ``vcpu``; ``remaining`` is compute left before its fault."""

    __slots__ = ("tid", "vcpu", "state", "stream", "remaining", "ctx", "lat", "fault_at")

    def __init__(self, tid: int, vcpu: int, stream: FaultStream) -> None:
        self.tid = tid
        self.vcpu = vcpu
        self.state = TaskState.RUNNABLE
        self.stream = stream
        self.remaining, self.ctx, self.lat = stream.next()
        self.fault_at = 0

    def __repr__(self) -> str:
        return f"Task({self.tid}, vcpu={self.vcpu}, {self.state.value})"


class Vcpu:
    """One vCPU of the model: its host half, its run queue and its time split."""

    __slots__ = ("idx", "state", "current", "runq", "epoch", "mark", "debt", "host", "waiting",
                 "times", "idle_halts", "halted_waits")

    def __init__(self, idx: int, host: HostApf) -> None:
        self.idx = idx
        self.state = VcpuState.IDLE
        self.current: Task | None = None
        self.runq: deque[Task] = deque()
        self.epoch = 0
        self.mark = 0           # accounted up to here; beyond now = protocol overhead prepaid
        self.debt = 0           # overhead the running task's timer has not yet been pushed by
        self.host = host
        self.waiting = 0        # tasks of this vCPU parked on a token
        self.times = [0] * 6    # indexed by the B_* buckets
        self.idle_halts = 0
        self.halted_waits = 0
