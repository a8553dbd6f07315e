"""Reading a running :class:`~.model.AsyncPfModel`: counters, per-vCPU state, stuck vCPUs.

Kept apart from the model so the event loop stays small; nothing here changes the model.
Per-vCPU fields follow semantics.md §3.5: host side (APF state, delivery mode, control-block
GPA, outstanding, not-present / page-ready / wake-all sent, synchronous fallbacks by
reason, ACKs) and guest side (waiter table: sleeping, halted, dummy, delayed).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .counters import ApfCounters
from .host import HostApfState
from .model import _B_HALTED, _B_IDLE, _B_IDLE_WAIT, _B_OVERHEAD, _B_SYNC, _B_WORK, VcpuState
from .protocol import ReadyDelivery

if TYPE_CHECKING:  # pragma: no cover
    from .model import AsyncPfModel

__all__ = ["counters", "vcpu_status", "stuck_vcpus"]


def stuck_vcpus(model: AsyncPfModel) -> list[int]:
    """vCPUs halted in a waiter loop whose own wake was deferred (arm64 RFCv2)."""
    out = []
    for v in model._vcpus:
        if v.state is VcpuState.APF_HALTED and model.guest.delayed_pending[v.idx]:
            table = model.guest.tables[v.idx]
            if any(n.delayed and n.task is v.current for n in table.values()):
                out.append(v.idx)
    return out


def vcpu_status(model: AsyncPfModel, idx: int) -> dict[str, Any]:
    """One vCPU's host and guest async PF state as JSON."""
    v = model._vcpus[idx]
    host = v.host
    delivery = None
    if host.state is HostApfState.ENABLED:
        delivery = (f"interrupt vector {host.int_vector:#x}"
                    if model.rules.ready_delivery is ReadyDelivery.INTERRUPT else "data abort")
    return {
        "vcpu": idx, "state": v.state.value, "apf": host.state.value, "delivery": delivery,
        "control_block": f"{host.area.gpa:#x}" if host.area is not None else None,
        "outstanding": host.outstanding, "not_present": host.not_present_sent,
        "page_ready": host.ready_sent, "wake_all": host.wake_all_sent, "acks": host.acks,
        "sync": {r.value: n for r, n in host.sync.items() if n},
        "waiters": model.guest.waiters(idx), "runnable": len(v.runq),
        "stuck": idx in stuck_vcpus(model),
    }


def counters(model: AsyncPfModel) -> ApfCounters:
    """Snapshot at ``model.now``; protocol work not yet elapsed is left out of the time split."""
    now, vcpus, g = model.now, model._vcpus, model.guest
    hosts = [v.host for v in vcpus]
    times = [0] * 6
    for v in vcpus:
        for i, ns in enumerate(v.times):
            times[i] += ns
        times[_B_OVERHEAD] -= v.mark - now if v.mark > now else 0
    by_reason: dict[str, int] = {}
    for h in hosts:
        for reason, n in h.sync.items():
            if n:
                by_reason[reason.value] = by_reason.get(reason.value, 0) + n
    idle_halts = sum(v.idle_halts for v in vcpus)
    halted_waits = sum(v.halted_waits for v in vcpus)
    return ApfCounters(
        now_ns=now, vcpus=len(vcpus),
        async_faults=sum(h.not_present_sent for h in hosts),
        sync_stalls=sum(by_reason.values()), sync_by_reason=by_reason,
        completions=sum(h.completed for h in hosts),
        ready_events=sum(h.ready_sent for h in hosts),
        wake_alls=sum(h.wake_all_sent for h in hosts),
        acks=sum(h.acks for h in hosts),
        dummy_entries=g.dummies, dummies_consumed=g.dummies_consumed,
        delayed_wakes=g.delayed_marked, illegal_reasons=g.illegal_reasons,
        unsafe_deliveries=sum(h.unsafe_deliveries for h in hosts),
        bad_vector_injections=model.bad_vector_injections,
        halts=idle_halts + halted_waits, idle_halts=idle_halts, halted_waits=halted_waits,
        outstanding=sum(h.outstanding for h in hosts),
        waiting_tasks=sum(v.waiting for v in vcpus),
        stuck_vcpus=len(stuck_vcpus(model)),
        work_ns=times[_B_WORK], overhead_ns=times[_B_OVERHEAD], sync_ns=times[_B_SYNC],
        halted_ns=times[_B_HALTED], idle_wait_ns=times[_B_IDLE_WAIT], idle_ns=times[_B_IDLE])
