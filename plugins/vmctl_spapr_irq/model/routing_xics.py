"""XICS routing: an ICS of sources (server, priority, status) and one ICP per vCPU."""

from __future__ import annotations

import errno

from vmctl.api import ModelError
from .constants import (
    KVMPPC_XICS_FIRST_IRQ, KVMPPC_XICS_NR_IRQS, PRIORITY_MASKED, XICS_IPI, XICS_IPI_PRIORITY,
    XICS_STATUS_MASKED_PENDING, XICS_STATUS_REJECTED, IrqMode,
)
from .routing_base import Presenter, RoutingBase, prio_from_guest


class XicsSource:
    """A XICS interrupt source (ICS entry)."""

    __slots__ = ("irq", "lsi", "priority", "server", "status", "target", "count")

    def __init__(self, irq: int, lsi: bool) -> None:
        self.irq = irq
        self.lsi = lsi
        self.priority = PRIORITY_MASKED
        self.server = 0
        self.status = 0
        self.target: Presenter | None = None
        self.count = 0

class XicsRouting(RoutingBase):
    """XICS: an ICS of sources with a server and priority, one ICP per vCPU."""

    mode = IrqMode.XICS

    def __init__(self, first_irq: int = KVMPPC_XICS_FIRST_IRQ, nr_irqs: int = KVMPPC_XICS_NR_IRQS,
                 clamp_priorities: bool = False) -> None:
        super().__init__()
        self.first_irq = first_irq
        self.nr_irqs = nr_irqs
        self.clamp_priorities = clamp_priorities
        self.sources: dict[int, XicsSource] = {}
        self.ipis = 0

    def _sources(self) -> dict:
        return self.sources

    def init_source(self, irq: int, lsi: bool = False) -> XicsSource:
        """Claim an interrupt number (masked until the guest sets a priority)."""
        if not self.first_irq <= irq < self.nr_irqs:
            raise ModelError(errno.E2BIG, f"XICS source {irq:#x} outside {self.first_irq:#x}.."
                             f"{self.nr_irqs - 1:#x}")
        src = self.sources[irq] = XicsSource(irq, lsi)
        return src

    def set_source(self, irq: int, server: int, priority: int) -> None:
        """The guest's ``ibm,set-xive``: route ``irq`` to ``server`` at ``priority`` (0xff masks).

        On XICS-on-XIVE the kernel maps priorities 6..0xfe to 6 instead of refusing them.
        """
        src = self.sources.get(irq)
        if src is None:
            raise ModelError(errno.ENOENT, f"XICS source {irq:#x} was never claimed")
        if self.clamp_priorities:
            priority = prio_from_guest(priority)
        target = None if priority == PRIORITY_MASKED else self._target(server)
        src.server, src.priority, src.target = server, priority, target

    def reset(self) -> None:
        """Machine reset: every source masked, every ICP closed."""
        for src in self.sources.values():
            src.priority, src.target, src.status = PRIORITY_MASKED, None, 0
        for presenter in self.presenters.values():
            presenter.cppr, presenter.mfrr, presenter.xirr_irq = 0, PRIORITY_MASKED, 0

    def deliver(self, irq: int) -> int | None:
        """Present one interrupt and let the guest accept and EOI it; the vCPU index, or None.

        None when the source is masked (it stays masked-pending) or the vCPU's CPPR does not
        let its priority through (rejected).
        """
        src = self.sources.get(irq)
        if src is None:
            raise ModelError(errno.ENOENT, f"XICS source {irq:#x} was never claimed")
        presenter = src.target
        if presenter is None:
            src.status |= XICS_STATUS_MASKED_PENDING
            self.dropped += 1
            return None
        if src.priority >= presenter.cppr:
            src.status |= XICS_STATUS_REJECTED
            self.dropped += 1
            return None
        src.count += 1
        presenter.count += 1
        self.delivered += 1
        return presenter.vcpu

    def ipi(self, server: int, priority: int = XICS_IPI_PRIORITY) -> int | None:
        """IPI through the target's MFRR (XICS has no IPI source); counted as source 2.

        None when the vCPU's CPPR does not let ``priority`` through (it stays in MFRR).
        """
        presenter = self.presenters.get(server)
        if presenter is None:
            raise ModelError(errno.EINVAL, f"server {server} is not a connected vCPU")
        presenter.mfrr = priority
        if priority >= presenter.cppr:
            self.dropped += 1
            return None
        presenter.mfrr = PRIORITY_MASKED
        presenter.count += 1
        self.ipis += 1
        self.delivered += 1
        return presenter.vcpu

    def per_source(self) -> dict[int, int]:
        out = super().per_source()
        if self.ipis:
            out = {XICS_IPI: self.ipis, **out}
        return out
