"""What a Linux pseries guest does with the interrupt controller while it boots.

:func:`boot_guest` answers CAS as :func:`~vmctl_spapr_irq.model.cas.guest_answer` says, then sets
the negotiated controller up the way Linux 6.1 does (seen in ``info pic`` under QEMU 7.2):

* XIVE: one 64 KiB event queue per vCPU at priority 6, CPPR opened to 0xff, each vCPU's IPI
  (LISN = server) routed to itself with EISN 0x10, then the EPOW, hotplug and console
  interrupts spread round-robin over the vCPUs;
* XICS: CPPR 0xff on every presenter, the same three interrupts at priority 5.

The queue page addresses come from ``rng``, so a boot is reproducible from its seed.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from .cas import guest_answer
from .constants import (
    EQ_QSHIFT_64K, PRIORITY_MASKED, SPAPR_IRQ_EPOW, SPAPR_IRQ_HOTPLUG, SPAPR_IRQ_VIO,
    XICS_LINUX_PRIORITY, XIVE_LINUX_PRIORITY, IrqMode,
)
from .routing import XicsRouting, XiveRouting
from .spapr import MachineState, SpaprIrqMachine

LINUX_IPI_EISN = 0x10
LINUX_DEVICE_IRQS: tuple[tuple[int, int], ...] = (
    (SPAPR_IRQ_EPOW, 0x11),
    (SPAPR_IRQ_HOTPLUG, 0x14),
    (SPAPR_IRQ_VIO, 0x12),
)
"""(interrupt, EISN = Linux virq) in the order the guest enables them."""


@dataclass
class GuestBoot:
    """The result of one guest boot up to its interrupt setup."""

    mode: IrqMode
    answer: int
    reasons: list[str] = field(default_factory=list)
    cas_calls: int = 1


def boot_guest(machine: SpaprIrqMachine, append: str | None = None, *, guest_xive_capable: bool = True,
               rng: random.Random | None = None) -> GuestBoot:
    """Run the guest from firmware to configured interrupts on a machine in BEFORE_CAS.

    Raises :class:`~vmctl_spapr_irq.model.spapr.QemuExit` when QEMU refuses the guest's choice.
    """
    if machine.state is not MachineState.BEFORE_CAS:
        raise RuntimeError(f"the guest boots on a reset machine, not one in {machine.state.value}")
    rng = rng or random.Random(0)
    answer, reasons = guest_answer(machine.platform_byte23, append, guest_xive_capable)
    calls = 0
    while machine.state is MachineState.BEFORE_CAS:     # QEMU 4.x: a CAS reboot, then CAS again
        calls += 1
        mode = machine.cas(answer)
    routing = machine.routing
    if isinstance(routing, XiveRouting):
        _setup_xive(routing, rng)
    else:
        _setup_xics(routing)
    return GuestBoot(mode, answer, reasons, calls)


def _targets(routing: XiveRouting | XicsRouting) -> list[int]:
    return sorted(routing.presenters)


def _setup_xive(routing: XiveRouting, rng: random.Random) -> None:
    servers = _targets(routing)
    pages = rng.sample(range(0x300, 0x400), len(servers)) if len(servers) <= 0x100 \
        else [0x300 + i for i in range(len(servers))]
    for server, page_no in zip(servers, pages):
        page = page_no << 16
        routing.config_eq(server, XIVE_LINUX_PRIORITY, EQ_QSHIFT_64K, page)
        routing.presenters[server].cppr = PRIORITY_MASKED
        if server in routing.sources:
            routing.config_source(server, XIVE_LINUX_PRIORITY, server, eisn=LINUX_IPI_EISN)
    for i, (irq, eisn) in enumerate(LINUX_DEVICE_IRQS):
        if irq in routing.sources:
            routing.config_source(irq, XIVE_LINUX_PRIORITY, servers[i % len(servers)], eisn=eisn)


def _setup_xics(routing: XicsRouting) -> None:
    servers = _targets(routing)
    for server in servers:
        routing.presenters[server].cppr = PRIORITY_MASKED
    for i, (irq, _eisn) in enumerate(LINUX_DEVICE_IRQS):
        if irq in routing.sources:
            routing.set_source(irq, servers[i % len(servers)], XICS_LINUX_PRIORITY)
