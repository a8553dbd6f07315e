"""What the XICS and XIVE routing models share: presenters (with the XIVE event queues they
hold), counters, the priority mapper."""

from __future__ import annotations

import errno
from array import array

from vmctl.api import ModelError
from .constants import GUEST_MAX_PRIORITY, PRIORITY_MASKED, IrqMode


def prio_from_guest(priority: int) -> int:
    """The kernel's priority mapper: 0xff (masked) and 0..5 pass, anything else becomes 6."""
    if priority == PRIORITY_MASKED or priority < GUEST_MAX_PRIORITY:
        return priority
    return GUEST_MAX_PRIORITY


class EventQueue:
    """A XIVE event queue (END) of one (server, priority): a ring of 32-bit entries in guest memory."""

    __slots__ = ("server", "priority", "qshift", "qaddr", "index", "toggle", "mask", "page")

    def __init__(self, server: int, priority: int, qshift: int, qaddr: int, toggle: int, index: int):
        self.server = server
        self.priority = priority
        self.qshift = qshift
        self.qaddr = qaddr
        self.mask = (1 << (qshift - 2)) - 1
        self.index = index & self.mask
        self.toggle = toggle & 1
        self.page: array[int] | None = None   # allocated on the first event

    @property
    def entries(self) -> int:
        return self.mask + 1

    def push(self, eisn: int) -> None:
        """Write one event (generation bit | EISN) and advance the index."""
        page = self.page
        if page is None:
            page = self.page = array("I", bytes(4 * (self.mask + 1)))
        page[self.index] = (self.toggle << 31) | eisn
        self.index = (self.index + 1) & self.mask
        if self.index == 0:
            self.toggle ^= 1

    def window(self, width: int = 6) -> list[int]:
        """The ``width`` entries ending at the current index, as QEMU's ``info pic`` shows them."""
        start = (self.index - (width - 1)) & self.mask
        page = self.page
        return [0 if page is None else page[(start + i) & self.mask] for i in range(width)]


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


