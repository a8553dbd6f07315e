"""QEMU's side of the interrupt controller of one pseries machine.

The flow of ``hw/ppc/spapr_irq.c`` (QEMU ≥ 5.0; 4.x behind ``qemu_version``):

* start-up checks (:func:`~vmctl_spapr_irq.model.cas.startup_check`) — failures are a
  :class:`QemuExit`, as QEMU exits;
* every **machine reset** forgets the guest's CAS answer and activates the default
  controller (XICS for ``dual`` and ``xics``, XIVE for ``xive``); an unchanged controller is
  reset in place, a changed one is swapped: the old KVM device fd is closed (released by
  the host kernel, seed 000) and the new device created, sized and every vCPU connected;
* at **CAS** QEMU checks the guest's choice and, when it differs, swaps controllers the same
  way without a reset (QEMU 4.x instead reboots the machine once, keeping the choice);
* with ``kernel-irqchip=auto`` a KVM failure falls back to the emulated controller and is
  noted; with ``on`` it is fatal.

No clock and no I/O: the simulator stamps :attr:`SpaprIrqMachine.log` entries itself.
"""

from __future__ import annotations

import errno
from dataclasses import dataclass
from enum import Enum

from vmctl.api import ModelError
from .cas import (
    MSG_NO_XIVE_CAP, KvmHost, Refusal, cas_outcome, controller_for, default_mode, platform_byte23,
    startup_check,
)
from .constants import (
    KVM_DEV_TYPE_XICS, KVM_DEV_TYPE_XIVE, SPAPR_IRQ_EPOW, SPAPR_IRQ_HOTPLUG, SPAPR_IRQ_PCI_LSI,
    SPAPR_IRQ_VIO, SPAPR_NR_IRQS, SPAPR_XIRQ_BASE, Controller, IcMode, IrqMode,
)
from .kvm import HostKvm, KvmDevice, KvmVm
from .routing import Routing, XicsRouting, XiveRouting

PLATFORM_IRQS: tuple[tuple[int, bool, str], ...] = (
    (SPAPR_IRQ_EPOW, False, "epow"),
    (SPAPR_IRQ_HOTPLUG, False, "hotplug"),
    (SPAPR_IRQ_VIO, False, "spapr-vty"),
    (SPAPR_IRQ_VIO + 1, False, "spapr-nvram"),
    *((SPAPR_IRQ_PCI_LSI + i, True, f"phb0-intx{'abcd'[i]}") for i in range(4)),
)
"""Interrupts a default pseries machine claims: (number, is LSI, owner)."""


class MachineState(str, Enum):
    OFF = "off"
    BEFORE_CAS = "before-cas"    # reset done, the firmware's default controller, no CAS yet
    NEGOTIATED = "negotiated"    # the guest's CAS choice is active
    EXITED = "exited"            # QEMU exited with an error


class QemuExit(Exception):
    """QEMU stops with ``message`` (``qemu-system-ppc64: <message>``), exit status 1."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


@dataclass(frozen=True)
class IrqConfig:
    """The machine settings the interrupt controller depends on (accel already resolved)."""

    ic_mode: str = "dual"
    cpu: str = "power9"
    max_cpu_compat: str | None = None
    accel: str = "tcg"
    kernel_irqchip: str = "auto"
    cpus: int = 1
    max_cpus: int | None = None
    qemu_version: tuple[int, int] = (7, 2)

    @property
    def nr_servers(self) -> int:
        """Servers QEMU sizes the controller for (VSMT = threads since pseries-4.2)."""
        return self.max_cpus or self.cpus


class SpaprIrqMachine:
    """The interrupt controller of one pseries machine, from power-on to CAS and resets."""

    def __init__(self, config: IrqConfig, host: HostKvm | None = None, name: str = "vm") -> None:
        self.config = config
        self.name = name
        self.state = MachineState.OFF
        self.log: list[dict[str, object]] = []
        self.notes: list[str] = []
        self.stats = {"resets": 0, "cas": 0, "switches": 0, "cas_reboots": 0, "fallbacks": 0}
        if config.accel == "kvm" and host is None:
            self._exit("failed to initialize kvm: No such file or directory",
                       "accel=kvm needs /dev/kvm; use accel=tcg")
        self.host = host
        self.kvm_host = KvmHost(host is not None, bool(host and host.xive_native),
                                bool(host and host.release_op))
        try:
            self.mode, self.notes = startup_check(config.ic_mode, config.cpu, config.max_cpu_compat,
                                                  config.accel, config.kernel_irqchip, self.kvm_host)
        except Refusal as exc:
            self._exit(exc.message, exc.hint)
        self.vm = KvmVm(host, name) if config.accel == "kvm" and host else None
        if self.vm is not None:
            for i in range(config.cpus):
                self.vm.create_vcpu(i)
        self.emulated: dict[IrqMode, Routing] = {}
        if self.mode in (IcMode.XICS, IcMode.DUAL):
            self.emulated[IrqMode.XICS] = XicsRouting(SPAPR_XIRQ_BASE, SPAPR_NR_IRQS)
        if self.mode in (IcMode.XIVE, IcMode.DUAL):
            self.emulated[IrqMode.XIVE] = XiveRouting(SPAPR_NR_IRQS)
        for routing in self.emulated.values():
            self._populate(routing)
        self.active: IrqMode | None = None
        self.controller: Controller | None = None
        self.kvm_dev: KvmDevice | None = None
        self.ov5_cas: int | None = None

    # -- transitions ----------------------------------------------------------------------
    def power_on(self) -> None:
        """Start the machine: the first reset. Only from OFF."""
        if self.state is not MachineState.OFF:
            raise RuntimeError(f"power_on in state {self.state.value}")
        self._reset("power-on")

    def system_reset(self) -> None:
        """``system_reset``: forget the CAS answer, back to the default controller."""
        self._require(MachineState.BEFORE_CAS, MachineState.NEGOTIATED)
        self.ov5_cas = None
        self._reset("reset")

    def cas(self, guest_byte23: int) -> IrqMode:
        """The guest's CAS answer (OV5 byte 23); the mode now active.

        QEMU exits (:class:`QemuExit`) when the guest asks for a mode ``ic-mode`` does not
        offer. On QEMU 4.x a change triggers one machine reset and the state stays BEFORE_CAS:
        the guest runs CAS again.
        """
        self._require(MachineState.BEFORE_CAS)
        self.stats["cas"] += 1
        try:
            chosen = cas_outcome(self.mode, guest_byte23)
        except Refusal as exc:
            self._exit(exc.message, exc.hint)
        self.ov5_cas = guest_byte23
        if chosen is not self.active and self.config.qemu_version < (5, 0):
            self.stats["cas_reboots"] += 1
            self._reset("cas-reboot")
            return chosen
        self._set_active(chosen, "cas")
        self.state = MachineState.NEGOTIATED
        return chosen

    def shutdown(self) -> None:
        """QEMU quits: the KVM VM is destroyed with its slots."""
        if self.vm is not None:
            self.vm.destroy()
        self.kvm_dev = None
        self.state = MachineState.OFF if self.state is not MachineState.EXITED else self.state

    # -- what the guest sees ----------------------------------------------------------------
    @property
    def routing(self) -> Routing:
        """The active controller's routing (the KVM device's when in-kernel)."""
        if self.active is None:
            raise ModelError(errno.ENODEV, "no interrupt controller is active")
        if self.kvm_dev is not None:
            return self.kvm_dev.routing
        return self.emulated[self.active]

    @property
    def platform_byte23(self) -> int:
        return platform_byte23(self.mode)

    def deliver(self, irq: int) -> int | None:
        """Deliver one interrupt through the active controller; the vCPU index or None."""
        return self.routing.deliver(irq)

    # -- internals --------------------------------------------------------------------------
    def _reset(self, cause: str) -> None:
        self.stats["resets"] += 1
        target = default_mode(self.mode)
        if self.ov5_cas is not None:          # QEMU 4.x CAS reboot keeps the answer
            target = cas_outcome(self.mode, self.ov5_cas)
        self._set_active(target, cause)
        self.routing.reset()
        self.state = MachineState.BEFORE_CAS

    def _set_active(self, new: IrqMode, cause: str) -> None:
        if new is self.active:
            return
        old = self.active
        if self.kvm_dev is not None:
            self.kvm_dev.close()
            self.kvm_dev = None
        try:
            controller, why = controller_for(new, self.config.accel, self.config.kernel_irqchip,
                                             self.kvm_host)
        except Refusal as exc:
            self._exit(exc.message, exc.hint)
        if controller is Controller.KVM:
            controller = self._activate_kvm(new)
        self.active, self.controller = new, controller
        if old is not None:
            self.stats["switches"] += 1
        self.log.append({"event": "irq-mode", "mode": new.value, "controller": controller.value,
                         "cause": cause, "previous": None if old is None else old.value})

    def _activate_kvm(self, mode: IrqMode) -> Controller:
        assert self.vm is not None
        dev_type = KVM_DEV_TYPE_XIVE if mode is IrqMode.XIVE else KVM_DEV_TYPE_XICS
        dev = None
        try:
            dev = self.vm.create_device(dev_type)
            dev.set_nr_servers(self.config.nr_servers)
            for vcpu in self.vm.vcpus:
                self.vm.connect(vcpu.index, dev, vcpu.vcpu_id)
            self._populate(dev.routing, presenters=False)
        except ModelError as exc:
            if dev is not None:
                dev.close()
            what = "XIVE" if mode is IrqMode.XIVE else "XICS"
            if self.config.kernel_irqchip == "on":
                msg = MSG_NO_XIVE_CAP if exc.errno == errno.ENODEV else \
                    f"kernel_irqchip requested but unavailable: Unable to create KVM {what} device: {exc}"
                self._exit(msg, "try kernel-irqchip=auto or off")
            self.stats["fallbacks"] += 1
            self.notes.append(f"KVM {what} device unavailable ({exc}): falling back to emulation")
            return Controller.EMULATED
        self.kvm_dev = dev
        return Controller.KVM

    def _populate(self, routing: Routing, presenters: bool = True) -> None:
        """Claim the machine's interrupts (and, for QEMU's own controllers, one presenter per vCPU)."""
        if presenters:
            for i in range(self.config.cpus):
                routing.add_presenter(i, i)
        if routing.mode is IrqMode.XIVE:
            for server in range(self.config.nr_servers):
                routing.init_source(server)                       # the vCPU IPIs
        for irq, lsi, _owner in PLATFORM_IRQS:
            routing.init_source(irq, lsi)

    def _require(self, *states: MachineState) -> None:
        if self.state not in states:
            raise RuntimeError(f"machine {self.name} is {self.state.value}, "
                               f"needs {' or '.join(s.value for s in states)}")

    def _exit(self, message: str, hint: str = ""):
        self.state = MachineState.EXITED
        self.log.append({"event": "qemu-exit", "message": message})
        raise QemuExit(message, hint)

    def snapshot(self) -> dict[str, object]:
        """JSON-ready live state for ``vmctl status``: mode, controller, counters."""
        out: dict[str, object] = {
            "state": self.state.value, "ic_mode": self.config.ic_mode, "effective_ic_mode": self.mode.value,
            "mode": None if self.active is None else self.active.value,
            "before_cas": default_mode(self.mode).value,
            "controller": None if self.controller is None else self.controller.value,
            "ov5_byte23": self.ov5_cas, "stats": dict(self.stats), "notes": list(self.notes),
        }
        if self.active is not None:
            r = self.routing
            out["interrupts"] = {"delivered": r.delivered, "coalesced": r.coalesced, "dropped": r.dropped,
                                 "per_vcpu": r.per_vcpu(), "per_source": r.per_source()}
        if self.vm is not None:
            out["kvm"] = self.vm.snapshot()
        return out
