"""Native XIVE routing: sources with ESB PQ bits, EAS entries and per-(server, priority) event queues."""

from __future__ import annotations

import errno

from vmctl.api import ModelError
from .constants import (
    KVM_XIVE_EQ_ALWAYS_NOTIFY, KVMPPC_XICS_NR_IRQS, PQ_OFF, PQ_PENDING, PQ_QUEUED, PQ_RESET,
    PRIORITY_MASKED, VALID_EQ_QSHIFTS, IrqMode,
)
from .routing_base import EventQueue, Presenter, RoutingBase, prio_from_guest


class XiveSource:
    """A XIVE interrupt source (ESB PQ bits) and its routing entry (EAS)."""

    __slots__ = ("lisn", "lsi", "pq", "masked", "priority", "server", "eisn", "target", "count")

    def __init__(self, lisn: int, lsi: bool) -> None:
        self.lisn = lisn
        self.lsi = lsi
        self.pq = PQ_OFF
        self.masked = True
        self.priority = PRIORITY_MASKED
        self.server = 0
        self.eisn = 0
        self.target: Presenter | None = None
        self.count = 0

class XiveRouting(RoutingBase):
    """Native XIVE: sources with PQ bits, per-(server, priority) event queues."""

    mode = IrqMode.XIVE

    def __init__(self, nr_irqs: int = KVMPPC_XICS_NR_IRQS) -> None:
        super().__init__()
        self.nr_irqs = nr_irqs
        self.sources: dict[int, XiveSource] = {}

    def _sources(self) -> dict:
        return self.sources

    def init_source(self, lisn: int, lsi: bool = False) -> XiveSource:
        """Create (or re-initialise) a source, masked (``KVM_DEV_XIVE_GRP_SOURCE``)."""
        if not 0 <= lisn < self.nr_irqs:
            raise ModelError(errno.E2BIG, f"source {lisn:#x} out of range (max {self.nr_irqs - 1:#x})")
        src = self.sources[lisn] = XiveSource(lisn, lsi)
        return src

    def config_source(self, lisn: int, priority: int, server: int, masked: bool = False,
                      eisn: int = 0) -> None:
        """Route a source to (server, priority) with data ``eisn`` (``GRP_SOURCE_CONFIG``).

        Unknown source → ENOENT; priority 7..0xfe (7 is KVM's escalation priority) or a
        server with no connected vCPU → EINVAL. ``masked`` (or priority 0xff) masks it.
        """
        src = self.sources.get(lisn)
        if src is None:
            raise ModelError(errno.ENOENT, f"source {lisn:#x} was never initialised")
        if priority != prio_from_guest(priority):
            raise ModelError(errno.EINVAL, f"invalid priority {priority} for source {lisn:#x} "
                             "(guests may use 0..6; 7 is reserved for escalations)")
        masked = masked or priority == PRIORITY_MASKED
        target = None if masked else self._target(server)
        src.priority, src.server, src.eisn, src.masked = priority, server, eisn, masked
        src.target = target
        if masked:
            src.pq = PQ_OFF
        elif src.pq == PQ_OFF:
            src.pq = PQ_RESET

    def config_eq(self, server: int, priority: int, qshift: int, qaddr: int = 0,
                  flags: int = KVM_XIVE_EQ_ALWAYS_NOTIFY, toggle: int = 1, index: int = 0) -> None:
        """Give (server, priority) an event queue, or remove it with ``qshift=0`` (``GRP_EQ_CONFIG``).

        No vCPU with that server → ENOENT; reserved priority, flags without "always
        notify", a size other than 64 KiB, or an unaligned address → EINVAL.
        """
        presenter = self.presenters.get(server)
        if presenter is None:
            raise ModelError(errno.ENOENT, f"no vCPU with server {server}")
        if priority != prio_from_guest(priority) or priority == PRIORITY_MASKED:
            raise ModelError(errno.EINVAL, f"invalid priority {priority} for an event queue")
        if flags != KVM_XIVE_EQ_ALWAYS_NOTIFY:
            raise ModelError(errno.EINVAL, f"EQ flags {flags:#x}: only 'always notify' is supported")
        if qshift not in VALID_EQ_QSHIFTS:
            raise ModelError(errno.EINVAL, f"invalid EQ size 2^{qshift} (0 or 16 only)")
        if qshift == 0:
            presenter.eqs[priority] = None
            return
        if qaddr & ((1 << qshift) - 1):
            raise ModelError(errno.EINVAL, f"EQ page {qaddr:#x} is not aligned on 2^{qshift}")
        presenter.eqs[priority] = EventQueue(server, priority, qshift, qaddr, toggle, index)

    def reset(self) -> None:
        """``KVM_DEV_XIVE_RESET``: mask every source and drop every event queue."""
        for src in self.sources.values():
            src.pq, src.masked, src.priority, src.target, src.eisn = PQ_OFF, True, PRIORITY_MASKED, None, 0
        for presenter in self.presenters.values():
            presenter.eqs = [None] * 8
            presenter.cppr = 0

    def trigger(self, lisn: int) -> bool:
        """Raise a source once; True if an event was forwarded (PQ was 00)."""
        src = self._get(lisn)
        if src.pq != PQ_RESET:
            if src.pq != PQ_OFF:
                src.pq = PQ_QUEUED
                self.coalesced += 1
            return False
        src.pq = PQ_PENDING
        self._route(src)
        return True

    def eoi(self, lisn: int) -> bool:
        """The guest's EOI; True if a queued trigger is forwarded again (PQ was 11)."""
        src = self._get(lisn)
        if src.pq == PQ_QUEUED:
            src.pq = PQ_PENDING
            self._route(src)
            return True
        if src.pq == PQ_PENDING:
            src.pq = PQ_RESET
        return False

    def deliver(self, lisn: int) -> int | None:
        """Trigger, present and EOI one interrupt; the vCPU index it reached, or None.

        None when the source is masked, already pending (coalesced) or routed to a
        priority without an event queue (dropped).
        """
        src = self.sources.get(lisn)
        if src is None:
            raise ModelError(errno.ENOENT, f"source {lisn:#x} was never initialised")
        if src.pq:
            if src.pq != PQ_OFF:
                src.pq = PQ_QUEUED
                self.coalesced += 1
            return None
        return self._route(src)

    def ipi(self, server: int) -> int | None:
        """IPI to ``server``: its IPI source (LISN = server number) is triggered."""
        return self.deliver(server)

    def _route(self, src: XiveSource) -> int | None:
        presenter = src.target
        eq = None if presenter is None else presenter.eqs[src.priority]
        if eq is None:
            self.dropped += 1
            return None
        eq.push(src.eisn)
        src.count += 1
        presenter.count += 1
        self.delivered += 1
        return presenter.vcpu

    def _get(self, lisn: int) -> XiveSource:
        src = self.sources.get(lisn)
        if src is None:
            raise ModelError(errno.ENOENT, f"source {lisn:#x} was never initialised")
        return src


