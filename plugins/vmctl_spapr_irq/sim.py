"""The spapr-irq device inside vmctl's simulator (``vmctl run --backend sim``).

One :class:`SpaprIrqDevice` per pseries machine runs the QEMU-side flow of
:mod:`~vmctl_spapr_irq.model.spapr` on the simulator's lifecycle:

* ``reset`` phase (power-on, every ``system_reset``): the default controller — XICS for
  ``dual`` — is active, KVM device created when in-kernel;
* ``kernel`` phase: the guest calls CAS as :mod:`~vmctl_spapr_irq.model.guest` says, QEMU
  switches in place, the guest configures queues and sources; the event
  ``__org.vmctl_IRQ_MODE {"mode", "controller", "cause", "previous"}`` is emitted at once;
* clock ticks: the guest's IPIs and console interrupts flow through the model (seeded from
  ``[sim] seed``), counted per source and per vCPU;
* ``info pic`` prints the active controller as QEMU 7.2 does; ``__org.vmctl_query-device
  {"plugin": "spapr-irq"}`` returns :meth:`SpaprIrqDevice.state`.

``accel = "kvm"`` (or ``auto`` on a host with KVM) simulates a POWER9 bare-metal host
(:class:`~vmctl_spapr_irq.model.kvm.HostKvm`), so the in-kernel device lifecycle of seed 000
runs; otherwise the controller is emulated, as under TCG.
"""

from __future__ import annotations

from typing import Any

from vmctl.api import SimDevice
from .host import cached_probe
from .model.cas import resolve_accel
from .model.constants import SPAPR_IRQ_VIO
from .model.guest import boot_guest
from .model.info_pic import format_info_pic
from .model.kvm import HostKvm
from .model.spapr import MachineState, QemuExit, SpaprIrqMachine
from .settings import read

EVENT = "__org.vmctl_IRQ_MODE"
IPI_RATE = 400.0        # IPIs per second per fully loaded vCPU
CONSOLE_RATE = 20.0     # hvc console interrupts per second


class SpaprIrqDevice(SimDevice):
    """The interrupt controller of a simulated pseries machine."""

    plugin = "spapr-irq"

    #: Virtual seconds from reset to the kernel: SLOF probes and boots for about a second,
    #: VOF only hands the device tree over.
    FIRMWARE_SECONDS = {"vof": 0.1, "slof": 1.0}

    def __init__(self, firmware: str = "default") -> None:
        self._firmware = firmware

    def firmware(self) -> tuple[str, float] | None:
        """SLOF or VOF, from ``[pseries] firmware``; None when the machine names neither."""
        seconds = self.FIRMWARE_SECONDS.get(self._firmware)
        return None if seconds is None else (self._firmware, seconds)

    def attach(self, vm: Any) -> None:
        self.vm = vm
        s = read(vm.machine)
        self.append = s.append
        accel = resolve_accel(s.accel, cached_probe("/").kvm_host) if s.accel == "auto" else s.accel
        self.host = HostKvm() if accel == "kvm" else None
        self.error: str | None = None
        self.cas_at: float | None = None
        self.machine: SpaprIrqMachine | None = None
        self._logged = 0
        try:
            self.machine = SpaprIrqMachine(s.config(accel), self.host, name=str(vm.machine.name or "vm"))
        except QemuExit as exc:
            self._exit(exc)

    # -- lifecycle ------------------------------------------------------------------------
    def on_phase(self, phase: str) -> None:
        m = self.machine
        if m is None or m.state is MachineState.EXITED:
            return
        try:
            if phase == "reset":
                m.power_on() if m.state is MachineState.OFF else m.system_reset()
                self.cas_at = None
            elif phase == "kernel" and m.state is MachineState.BEFORE_CAS:
                boot_guest(m, self.append, rng=self.vm.rng)
                self.cas_at = self.vm.now()
            elif phase == "shutdown":
                m.shutdown()
        except QemuExit as exc:
            self._exit(exc)
        self._flush_events()

    def tick(self, now: float, dt: float) -> None:
        m = self.machine
        if m is None or m.state is not MachineState.NEGOTIATED:
            return
        rng, routing = self.vm.rng, m.routing
        for cpu in self.vm.cpus:
            if cpu.online:
                for _ in range(int(IPI_RATE * cpu.load * dt + rng.random())):
                    routing.ipi(cpu.index)
        for _ in range(int(CONSOLE_RATE * dt + rng.random())):
            m.deliver(SPAPR_IRQ_VIO)

    # -- what clients see -----------------------------------------------------------------
    def hmp_info(self) -> dict[str, Any]:
        return {"pic": self.info_pic}

    def info_pic(self) -> str:
        m = self.machine
        if m is None or m.active is None:
            return "Interrupt controller information not available\n"
        return format_info_pic(m.routing, m.controller, m.name)

    def state(self) -> dict[str, Any]:
        """Mode, controller, CAS time, counters (and the KVM side when in-kernel)."""
        m = self.machine
        if m is None:
            return {"mode": None, "controller": None, "state": "exited", "error": self.error}
        snap = m.snapshot()
        out: dict[str, Any] = {
            "mode": snap["mode"], "controller": snap["controller"], "state": snap["state"],
            "ic_mode": snap["ic_mode"], "effective_ic_mode": snap["effective_ic_mode"],
            "before_cas": snap["before_cas"], "ov5_byte23": snap["ov5_byte23"], "cas_at": self.cas_at, "stats": snap["stats"],
            "notes": snap["notes"], "error": self.error,
        }
        counts = snap.get("interrupts")
        if isinstance(counts, dict):
            out["interrupts"] = {
                "delivered": counts["delivered"], "coalesced": counts["coalesced"], "dropped": counts["dropped"],
                "per_vcpu": [counts["per_vcpu"].get(c.index, 0) for c in self.vm.cpus],
                "per_source": {f"{irq:#x}": n for irq, n in counts["per_source"].items()},
            }
        if "kvm" in snap:
            out["kvm"] = snap["kvm"]
        return out

    # -- helpers --------------------------------------------------------------------------
    def _flush_events(self) -> None:
        m = self.machine
        if m is None:
            return
        for entry in m.log[self._logged:]:
            if entry["event"] == "irq-mode":
                self.vm.emit(EVENT, {k: entry[k] for k in ("mode", "controller", "cause", "previous")})
                self.vm.console(f"vmctl-sim: interrupt controller {str(entry['mode']).upper()} "
                                f"({entry['controller']}, {entry['cause']})")
        self._logged = len(m.log)

    def _exit(self, exc: QemuExit) -> None:
        """QEMU would print the error and exit(1): the simulated machine ends the same way."""
        self.error = exc.message
        self.vm.exit_with_error(f"qemu-system-ppc64: {exc.message}")


def sim_devices(machine: Any) -> list[SimDevice]:
    """The ``vmctl_sim_devices`` answer: one device for a pseries machine, else none."""
    s = read(machine)
    return [SpaprIrqDevice(s.firmware)] if s.pseries else []
