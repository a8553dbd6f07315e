"""What the XICS and XIVE routing models share: presenters, counters, the priority mapper."""

from __future__ import annotations

import errno
from typing import TYPE_CHECKING

from vmctl.api import ModelError
from vmctl_spapr_irq.constants import GUEST_MAX_PRIORITY, PRIORITY_MASKED, IrqMode

if TYPE_CHECKING:
    from vmctl_spapr_irq.routing_xive import EventQueue


def prio_from_guest(priority: int) -> int:
    """The kernel's priority mapper: 0xff (masked) and 0..5 pass, anything else becomes 6."""
    if priority == PRIORITY_MASKED or priority < GUEST_MAX_PRIORITY:
        return priority
    return GUEST_MAX_PRIORITY


class Presenter:
    """One vCPU's interrupt presenter (XICS ICP or XIVE thread context)."""

    __slots__ = ("server", "vcpu", "vp_id", "cppr", "mfrr", "xirr_irq", "eqs", "count")

    def __init__(self, server: int, vcpu: int, vp_id: int) -> None:
        self.server = server
        self.vcpu = vcpu
        self.vp_id = vp_id
        self.cppr = 0           # the guest opens it (0xff) when it sets up interrupts
        self.mfrr = PRIORITY_MASKED
        self.xirr_irq = 0       # XICS: interrupt being presented, 0 = none
        self.eqs: list[EventQueue | None] = [None] * 8
        self.count = 0          # interrupts delivered to this vCPU


class RoutingBase:
    """What XICS and XIVE routing share: presenters and counters."""

    mode: IrqMode

    def __init__(self) -> None:
        self.presenters: dict[int, Presenter] = {}
        self.delivered = 0
        self.coalesced = 0
        self.dropped = 0

    def add_presenter(self, server: int, vcpu: int, vp_id: int | None = None) -> Presenter:
        presenter = Presenter(server, vcpu, server if vp_id is None else vp_id)
        self.presenters[server] = presenter
        return presenter

    def remove_presenter(self, server: int) -> None:
        self.presenters.pop(server, None)
        for src in self._sources().values():
            if src.target is not None and src.target.server == server:
                src.target = None

    def _sources(self) -> dict:
        raise NotImplementedError

    def _target(self, server: int) -> Presenter:
        presenter = self.presenters.get(server)
        if presenter is None:
            raise ModelError(errno.EINVAL, f"server {server} is not a connected vCPU")
        return presenter

    def per_source(self) -> dict[int, int]:
        """Interrupts delivered, by source number (sources never delivered are left out)."""
        return {n: s.count for n, s in sorted(self._sources().items()) if s.count}

    def ipi(self, server: int) -> int | None:
        """Send an inter-processor interrupt to ``server``; the vCPU index, or None."""
        raise NotImplementedError

    def per_vcpu(self) -> dict[int, int]:
        """Interrupts delivered, by vCPU index."""
        return {p.vcpu: p.count for p in sorted(self.presenters.values(), key=lambda p: p.vcpu)}


