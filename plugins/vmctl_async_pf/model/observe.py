"""Reading a running :class:`~.machine.AsyncPfModel`: counters, per-vCPU state, stuck vCPUs.

Kept apart from the model so the event loop stays small; nothing here changes the model.
The model hands in its parts (the :class:`~.vcpu.Vcpu` records, the guest, the rules), so
this module needs only :mod:`.vcpu`, never :mod:`.machine`.

Per-vCPU fields follow semantics.md §3.5: host side (APF state, delivery mode, control-block
GPA, outstanding, not-present / page-ready / wake-all sent, synchronous fallbacks by
reason, ACKs) and guest side (waiter table: sleeping, halted, dummy, delayed).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .counters import ApfCounters
from .guest import GuestApf
from .kvm import HostApfState
from .protocol import ArchRules, ReadyDelivery
from .vcpu import B_HALTED, B_IDLE, B_IDLE_WAIT, B_OVERHEAD, B_SYNC, B_WORK, Vcpu, VcpuState

__all__ = ["counters", "vcpu_status", "stuck_vcpus"]


def stuck_vcpus(vcpus: Sequence[Vcpu], guest: GuestApf) -> list[int]:
    """vCPUs halted in a waiter loop whose own wake was deferred (arm64 RFCv2)."""
    out = []
    for v in vcpus:
        if v.state is VcpuState.APF_HALTED and guest.delayed_pending[v.idx]:
            table = guest.tables[v.idx]
            if any(n.delayed and n.task is v.current for n in table.values()):
                out.append(v.idx)
    return out


def vcpu_status(vcpus: Sequence[Vcpu], guest: GuestApf, rules: ArchRules,
                idx: int) -> dict[str, Any]:
    """vCPU ``idx``'s host and guest async PF state as JSON."""
    v = vcpus[idx]
    host = v.host
    delivery = None
    if host.state is HostApfState.ENABLED:
        delivery = (f"interrupt vector {host.int_vector:#x}"
                    if rules.ready_delivery is ReadyDelivery.INTERRUPT else "data abort")
    return {
        "vcpu": idx, "state": v.state.value, "apf": host.state.value, "delivery": delivery,
        "control_block": f"{host.area.gpa:#x}" if host.area is not None else None,
        "outstanding": host.outstanding, "not_present": host.not_present_sent,
        "page_ready": host.ready_sent, "wake_all": host.wake_all_sent, "acks": host.acks,
        "sync": {r.value: n for r, n in host.sync.items() if n},
        "waiters": guest.waiters(idx), "runnable": len(v.runq),
        "stuck": idx in stuck_vcpus(vcpus, guest),
    }


def counters(now: int, vcpus: Sequence[Vcpu], g: GuestApf,
             bad_vector_injections: int) -> ApfCounters:
    """Snapshot at ``now``; protocol work not yet elapsed is left out of the time split."""
    hosts = [v.host for v in vcpus]
    times = [0] * 6
    for v in vcpus:
        for i, ns in enumerate(v.times):
            times[i] += ns
        times[B_OVERHEAD] -= v.mark - now if v.mark > now else 0
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
        bad_vector_injections=bad_vector_injections,
        halts=idle_halts + halted_waits, idle_halts=idle_halts, halted_waits=halted_waits,
        outstanding=sum(h.outstanding for h in hosts),
        waiting_tasks=sum(v.waiting for v in vcpus),
        stuck_vcpus=len(stuck_vcpus(vcpus, g)),
        work_ns=times[B_WORK], overhead_ns=times[B_OVERHEAD], sync_ns=times[B_SYNC],
        halted_ns=times[B_HALTED], idle_wait_ns=times[B_IDLE_WAIT], idle_ns=times[B_IDLE])
