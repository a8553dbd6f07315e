"""Counters a user reads from a model run, and the with/without-async-PF comparison.

Event counters only grow; gauges (``outstanding``, ``waiting_tasks``, ``stuck_vcpus``) are
the state at ``now_ns``.  vCPU time is split, for every vCPU, into exactly one of:

* ``work_ns`` — running guest tasks;
* ``overhead_ns`` — running the APF protocol itself (not-present exceptions, page-ready
  deliveries);
* ``sync_ns`` — blocked in the host on a synchronous fault;
* ``halted_ns`` — halted in the guest's own wait loop (a waiter that could not sleep);
* ``idle_wait_ns`` — idle with nothing to run while tasks wait for pages;
* ``idle_ns`` — idle with nothing waiting.

so the six always add up to ``vcpus * now_ns``.  ``stalled_ns = sync + halted + idle_wait``
is time a vCPU could not work because of page faults; ``lost_ns`` adds the overhead.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

__all__ = ["ApfCounters", "ApfComparison"]


@dataclass(frozen=True)
class ApfCounters:
    """A snapshot of one model run (one world: with or without async PF)."""

    now_ns: int
    vcpus: int
    async_faults: int            # not-present events sent (faults that went async)
    sync_stalls: int             # faults that blocked the vCPU
    sync_by_reason: dict[str, int]
    completions: int             # async swap-ins finished by the host worker
    ready_events: int            # page-ready events delivered for real tokens
    wake_alls: int               # page-ready events with token ~0 delivered
    acks: int                    # x86 MSR_KVM_ASYNC_PF_ACK writes
    dummy_entries: int           # page-ready arrived before its not-present was handled
    dummies_consumed: int
    delayed_wakes: int           # arm64 RFC: wakes deferred because the waker was the sleeper
    illegal_reasons: int         # arm64 RFC: control block reason other than 0/1/2
    unsafe_deliveries: int       # arm64 RFC: not-present sent into non-reentrant code
    bad_vector_injections: int   # x86: page-ready injected on a vector the guest never set up
    halts: int                   # idle_halts + halted_waits
    idle_halts: int              # vCPU went idle because every task waited for a page
    halted_waits: int            # a waiter could not sleep and halted its vCPU
    outstanding: int             # gauge: host-queued APFs, all vCPUs (<= 64 each)
    waiting_tasks: int           # gauge: tasks parked on a token
    stuck_vcpus: int             # gauge: halted waiters whose wake was deferred for good
    work_ns: int
    overhead_ns: int
    sync_ns: int
    halted_ns: int
    idle_wait_ns: int
    idle_ns: int

    @property
    def faults(self) -> int:
        return self.async_faults + self.sync_stalls

    @property
    def events(self) -> int:
        """Page-fault events, modelled on KVM's async PF tracepoints.

        The fault itself (async or synchronous), and for an async one also its
        ``kvm_async_pf_not_present``, ``kvm_async_pf_completed`` and ``kvm_async_pf_ready``
        (wake-alls included): four for an async fault, one for a synchronous one.
        """
        return (self.faults + self.async_faults + self.completions + self.ready_events
                + self.wake_alls)

    @property
    def stalled_ns(self) -> int:
        return self.sync_ns + self.halted_ns + self.idle_wait_ns

    @property
    def lost_ns(self) -> int:
        return self.stalled_ns + self.overhead_ns

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = asdict(self)
        out.update(faults=self.faults, events=self.events, stalled_ns=self.stalled_ns,
                   lost_ns=self.lost_ns)
        return out


@dataclass(frozen=True)
class ApfComparison:
    """The machine's run and its ``no-kvmapf`` shadow, on the same fault stream and clock."""

    with_apf: ApfCounters
    without_apf: ApfCounters

    @property
    def lost_ns_saved(self) -> int:
        """vCPU time async PF saved (negative: it cost time)."""
        return self.without_apf.lost_ns - self.with_apf.lost_ns

    @property
    def verdict(self) -> str:
        """``helps``, ``hurts`` or ``neutral`` for this workload so far."""
        saved = self.lost_ns_saved
        return "helps" if saved > 0 else "hurts" if saved < 0 else "neutral"

    def to_json(self) -> dict[str, object]:
        return {"with_apf": self.with_apf.to_json(), "without_apf": self.without_apf.to_json(),
                "lost_ns_saved": self.lost_ns_saved, "verdict": self.verdict}
