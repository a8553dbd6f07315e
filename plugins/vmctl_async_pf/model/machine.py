"""Async page faults on a running guest: vCPUs, tasks, one protocol, a simulated clock.

:class:`AsyncPfModel` joins the host half (:class:`~.kvm.HostApf`, one per vCPU) and the
guest half (:class:`~.guest.GuestApf`) with a small guest scheduler (its records, states and
time buckets are in :mod:`.vcpu`; :mod:`.observe` reads them).  Each vCPU runs the
tasks pinned to it; each task computes, then touches a non-resident page (its
:class:`~.workload.FaultStream` says when, where and how slow).  The host either blocks
the vCPU for the swap-in (``SYNC_STALLED``) or sends not-present; the guest then parks the task
and runs another one, goes idle when none is left (``IDLE``), or — when the fault came from a
context that cannot sleep — halts in its own wait loop (``APF_HALTED``).  Page-ready wakes
the task.  Time is a simulated clock in ns: :meth:`AsyncPfModel.run_until` processes events
up to a time the caller passes in; nothing here reads a real clock.

vCPU states and what moves them::

    RUNNING --fault, sync----------> SYNC_STALLED --swap-in done--> RUNNING
    RUNNING --fault, async, sleeps-> RUNNING (next task) | IDLE (none left)
    RUNNING --fault, async, halts--> APF_HALTED --its page-ready--> RUNNING
    IDLE    --page-ready wakes a task-------------------------------> RUNNING

Same seed, same config: same events, same counters.
"""

from __future__ import annotations

import errno
import heapq
import itertools

from vmctl.api import ModelError

from .config import CONTROL_BLOCK_BASE, ApfConfig
from .counters import ApfCounters
from . import observe
from .guest import GuestApf
from .kvm import HostApf
from .protocol import (
    ASYNC_PF_DELIVERY_AS_INT, ASYNC_PF_ENABLED, ASYNC_PF_SEND_ALWAYS, HYPERVISOR_CALLBACK_VECTOR,
    KVM_FEATURE_ASYNC_PF, KVM_FEATURE_ASYNC_PF_INT, MSR_KVM_ASYNC_PF_EN,
    MSR_KVM_ASYNC_PF_INT, SMCCC_KVM_RFC_APF, Arch, FaultContext,
)
from .vcpu import (
    B_HALTED, B_IDLE, B_IDLE_WAIT, B_OVERHEAD, B_SYNC, B_WORK, Task, TaskState, Vcpu, VcpuState,
)

__all__ = ["AsyncPfModel"]

_RUNNING, _IDLE, _SYNC, _HALTED = (VcpuState.RUNNING, VcpuState.IDLE, VcpuState.SYNC_STALLED,
                                   VcpuState.APF_HALTED)
_T_RUNNABLE, _T_RUNNING, _T_WAIT, _T_HALTED, _T_SYNC, _T_EXITED = TaskState
_EV_TIMER, _EV_PAGE, _EV_SYNC = 0, 1, 2
_heappush = heapq.heappush
_USER = FaultContext.USER


class AsyncPfModel:
    """One guest under one async PF protocol; see the module docstring for the life cycle."""

    def __init__(self, config: ApfConfig, seed: int) -> None:
        self.config = config
        self.seed = seed
        self.rules = config.rules
        self.now = 0
        self.draining = False
        self.bad_vector_injections = 0
        self.boot_warnings: list[str] = []
        self._x86 = config.rules.arch is Arch.X86_64
        self._slice = config.workload.slice_ns
        self._np_cost = config.costs.not_present_ns
        self._ready_cost = config.costs.ready_ns
        self._heap: list[tuple[int, int, int, int, int]] = []
        self._seq = itertools.count()
        self.guest = GuestApf(config.rules, config.vcpus, preempt_count=config.guest.preempt_count)
        self._vcpus = [Vcpu(i, config.make_host(i)) for i in range(config.vcpus)]
        self.tasks: list[Task] = []
        for v in self._vcpus:
            self._boot_vcpu(v)
        per = config.workload.tasks_per_vcpu
        for v in self._vcpus:
            for k in range(per):
                tid = v.idx * per + k
                task = Task(tid, v.idx, config.workload.stream(seed, tid))
                self.tasks.append(task)
                v.runq.append(task)
            self._switch(v, 0)

    # ------------------------------------------------------------------ guest boot
    def _boot_vcpu(self, v: Vcpu) -> None:
        """What the guest kernel does per CPU at boot (x86 ``kvm_guest_cpu_init``; RFC enable)."""
        g, host = self.config.guest, v.host
        if not g.async_pf:
            return
        gpa = CONTROL_BLOCK_BASE + 64 * v.idx
        try:
            if not self._x86:
                if SMCCC_KVM_RFC_APF in host.smccc_funcs:
                    host.smccc_enable(gpa)
            elif g.linux_5_8:
                if KVM_FEATURE_ASYNC_PF_INT in host.cpuid:
                    writes = [(MSR_KVM_ASYNC_PF_INT, HYPERVISOR_CALLBACK_VECTOR),
                              (MSR_KVM_ASYNC_PF_EN, gpa | ASYNC_PF_ENABLED | ASYNC_PF_DELIVERY_AS_INT)]
                    for msr, value in writes if g.vector_first else writes[::-1]:
                        host.write_msr(msr, value)
                        self._deliver(v, 0)   # KVM checks its completion queue on the next entry
            elif KVM_FEATURE_ASYNC_PF in host.cpuid:
                host.write_msr(MSR_KVM_ASYNC_PF_EN, gpa | ASYNC_PF_ENABLED | ASYNC_PF_SEND_ALWAYS)
        except ModelError as exc:   # a #GP at boot: Linux warns and runs without APF
            self.boot_warnings.append(f"vCPU {v.idx}: {exc}")

    # ------------------------------------------------------------------ clock
    def run_until(self, t_end: int) -> None:
        """Process every event up to simulated time ``t_end`` (ns); time never goes back."""
        if t_end < self.now:
            raise ModelError(errno.EINVAL, f"time goes forward only: {t_end} < {self.now}")
        heap, pop = self._heap, heapq.heappop
        vcpus = self._vcpus
        on_timer, on_page, on_sync = self._on_timer, self._on_page, self._on_sync_done
        while heap and heap[0][0] <= t_end:
            t, _, kind, idx, arg = pop(heap)
            self.now = t
            if kind == _EV_TIMER:
                on_timer(vcpus[idx], t, arg)
            elif kind == _EV_PAGE:
                on_page(vcpus[idx], t, arg)
            else:
                on_sync(vcpus[idx], t)
        self.now = t_end
        for v in vcpus:
            self._account(v, t_end)

    def drain(self, limit_ns: int = 10**12) -> None:
        """Let every task exit at its next fault and run until nothing is left to happen.

        Afterwards every async fault that could be answered has been: ``async_faults ==
        ready_events`` unless the guest never handles a delivery (wrong vector, stuck vCPU).
        """
        self.draining = True
        heap = self._heap
        deadline = self.now + limit_ns
        while heap and heap[0][0] <= deadline:
            self.run_until(heap[0][0])

    def _push(self, t: int, kind: int, idx: int, arg: int) -> None:
        _heappush(self._heap, (t, next(self._seq), kind, idx, arg))

    # ------------------------------------------------------------------ accounting
    def _account(self, v: Vcpu, t: int) -> None:
        d = t - v.mark
        if d > 0:
            state = v.state
            if state is _RUNNING:
                v.times[B_WORK] += d
            elif state is _IDLE:
                v.times[B_IDLE_WAIT if v.waiting else B_IDLE] += d
            else:
                v.times[B_SYNC if state is _SYNC else B_HALTED] += d
            v.mark = t

    def _overhead(self, v: Vcpu, t: int, cost: int) -> None:
        """Charge ``cost`` ns of protocol work to ``v`` starting now (or after earlier work)."""
        if not cost:
            return
        self._account(v, t)
        v.times[B_OVERHEAD] += cost
        v.mark = (v.mark if v.mark > t else t) + cost
        if v.state is _RUNNING:
            v.debt += cost

    # ------------------------------------------------------------------ scheduling
    def _start(self, v: Vcpu, task: Task, t: int) -> None:
        """Make ``task`` the running task of ``v`` (from ``t``, after prepaid overhead)."""
        start = v.mark if v.mark > t else t
        v.state = _RUNNING
        v.current = task
        task.state = _T_RUNNING
        task.fault_at = fault_at = start + task.remaining
        v.debt = 0
        v.epoch += 1
        end = start + self._slice
        _heappush(self._heap, (fault_at if fault_at < end else end, next(self._seq), _EV_TIMER,
                               v.idx, v.epoch))
        if self.guest.delayed_pending[v.idx]:     # arm64 RFC: return to user space
            self._wake_nodes(self.guest.delayed_scan(v.idx, task), t)

    def _switch(self, v: Vcpu, t: int) -> None:
        """Run the next runnable task of ``v``, or go idle."""
        if v.runq:
            self._start(v, v.runq.popleft(), t)
            return
        v.state = _IDLE
        v.current = None
        v.debt = 0
        v.epoch += 1
        if v.waiting:
            v.idle_halts += 1
        if self.guest.delayed_pending[v.idx]:     # arm64 RFC: the idle loop scans too
            self._wake_nodes(self.guest.delayed_scan(v.idx, None), t)

    def _on_timer(self, v: Vcpu, t: int, epoch: int) -> None:
        if epoch != v.epoch:
            return
        task = v.current
        if v.debt:                       # protocol work ran meanwhile: the task is late by it
            task.fault_at += v.debt      # type: ignore[union-attr]
            self._push(t + v.debt, _EV_TIMER, v.idx, epoch)
            v.debt = 0
            return
        self._account(v, t)
        if self.draining:                # the task exits instead of going on
            task.state = _T_EXITED       # type: ignore[union-attr]
            self._switch(v, t)
            return
        if t >= task.fault_at:           # type: ignore[union-attr]
            self._fault(v, task, t)      # type: ignore[arg-type]
            return
        if v.runq:                       # slice over and someone else is runnable
            task.remaining = task.fault_at - t   # type: ignore[union-attr]
            task.state = _T_RUNNABLE     # type: ignore[union-attr]
            v.runq.append(task)          # type: ignore[arg-type]
            self._switch(v, t)
        else:
            end = t + self._slice
            fa = task.fault_at           # type: ignore[union-attr]
            self._push(fa if fa < end else end, _EV_TIMER, v.idx, epoch)

    # ------------------------------------------------------------------ faults
    def _fault(self, v: Vcpu, task: Task, t: int) -> None:
        host = v.host
        token = host.fault(task.ctx)
        if token.__class__ is not int:   # a SyncReason: the vCPU blocks in the host
            v.state = _SYNC
            task.state = _T_SYNC
            v.epoch += 1
            v.debt = 0
            self._push(t + task.lat, _EV_SYNC, v.idx, 0)
            return
        _heappush(self._heap, (t + task.lat, next(self._seq), _EV_PAGE, v.idx, token))
        guest = self.guest
        ctx = task.ctx
        halted = ctx is not _USER and guest.must_halt(ctx)
        cost = self._np_cost             # _overhead() inlined: RUNNING, accounted up to t
        v.times[B_OVERHEAD] += cost
        v.mark = (v.mark if v.mark > t else t) + cost
        v.debt += cost
        if self._x86:
            node = guest.x86_async_pf(v.idx, host.area, token, task, halted)  # type: ignore[arg-type]
        else:
            node = guest.arm64_not_present(v.idx, host.area, token, task, halted)  # type: ignore[arg-type]
        if node is None:                 # a dummy was waiting: the page is already here
            task.remaining, task.ctx, task.lat = task.stream.next()
            self._start(v, task, t)
        elif halted:
            v.state = _HALTED
            task.state = _T_HALTED
            v.epoch += 1
            v.debt = 0
            v.halted_waits += 1
        else:
            task.state = _T_WAIT
            v.waiting += 1
            self._switch(v, t)
        if host.done:                    # the control block is free again
            self._deliver(v, t)

    def _on_sync_done(self, v: Vcpu, t: int) -> None:
        self._account(v, t)
        task = v.current
        task.remaining, task.ctx, task.lat = task.stream.next()  # type: ignore[union-attr]
        self._start(v, task, t)          # type: ignore[arg-type]
        if v.host.done:                  # readies that completed during the stall
            self._deliver(v, t)

    # ------------------------------------------------------------------ page-ready
    def _on_page(self, v: Vcpu, t: int, token: int) -> None:
        if v.host.page_arrived(token):
            self._deliver(v, t)

    def _deliver(self, v: Vcpu, t: int) -> None:
        """Hand the guest every page-ready the host may deliver now, one at a time."""
        host, guest = v.host, self.guest
        while True:
            token = host.pop_ready(v.state is _SYNC)
            if token is None:
                return
            current = v.current
            if self._x86:
                if host.int_vector != HYPERVISOR_CALLBACK_VECTOR:
                    # msr.rst: vector 0 can be injected; the guest's handler never runs, the
                    # token stays in the slot and nothing more is delivered.
                    self.bad_vector_injections += 1
                    return
                self._overhead(v, t, self._ready_cost)
                woken = guest.x86_ready_interrupt(v.idx, host.area, current)  # type: ignore[arg-type]
                host.ack()                 # wrmsr(MSR_KVM_ASYNC_PF_ACK, 1)
            else:
                self._overhead(v, t, self._ready_cost)
                woken = guest.arm64_ready(v.idx, host.area, token, current)  # type: ignore[arg-type]
                if guest.delayed_pending[v.idx] and v.state is not _HALTED:
                    woken += guest.delayed_scan(v.idx, current)   # return to user / idle loop
            for node in woken:
                self._wake(node.task, t)

    def _wake_nodes(self, nodes, t: int) -> None:  # type: ignore[no-untyped-def]
        for node in nodes:
            self._wake(node.task, t)

    def _wake(self, task: Task, t: int) -> None:
        v = self._vcpus[task.vcpu]
        state = task.state
        if state is _T_WAIT:
            self._account(v, t)          # before the waiting count changes the idle bucket
            v.waiting -= 1
            task.remaining, task.ctx, task.lat = task.stream.next()
            task.state = _T_RUNNABLE
            if v.state is _IDLE:
                self._start(v, task, t)
            else:
                v.runq.append(task)
        elif state is _T_HALTED:
            self._account(v, t)
            task.remaining, task.ctx, task.lat = task.stream.next()
            self._start(v, task, t)
        else:
            raise ModelError(errno.EINVAL, f"task {task.tid} woken while {state.value}")

    # ------------------------------------------------------------------ observables
    def vcpu_state(self, idx: int) -> VcpuState:
        return self._vcpus[idx].state

    def host(self, idx: int) -> HostApf:
        return self._vcpus[idx].host

    def stuck_vcpus(self) -> list[int]:
        """vCPUs halted in a waiter loop whose own wake was deferred (arm64 RFCv2)."""
        return observe.stuck_vcpus(self._vcpus, self.guest)

    def vcpu_status(self, idx: int) -> dict[str, object]:
        """semantics.md §3.5's per-vCPU observables, host and guest side, as JSON."""
        return observe.vcpu_status(self._vcpus, self.guest, self.rules, idx)

    def counters(self) -> ApfCounters:
        """Snapshot at :attr:`now`; overhead not yet elapsed is left out of the time split."""
        return observe.counters(self.now, self._vcpus, self.guest, self.bad_vector_injections)
