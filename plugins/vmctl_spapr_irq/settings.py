"""The machine keys the interrupt controller depends on, read once from a resolved machine."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from .model.spapr import IrqConfig

if TYPE_CHECKING:  # pragma: no cover
    from vmctl.api import Machine

#: Logical PVR QEMU prints for ``max-cpu-compat`` ("Compatibility PVR 0x0f000005 …").
COMPAT_PVR = {"power7": 0x0F000003, "power8": 0x0F000004, "power9": 0x0F000005, "power10": 0x0F000006}


@dataclass(frozen=True)
class IrqSettings:
    """``[machine]``, ``[boot]``, ``[irq]`` and ``[pseries]`` values, defaults applied.

    ``firmware`` is ``[pseries] firmware``, else the deprecated ``[boot] firmware``, else
    ``"default"`` (QEMU's: SLOF); ``firmware_key`` says which key, for provenance.
    """

    arch: str
    type: str
    cpu: str
    cpus: int
    max_cpus: int | None
    accel: str
    ic_mode: str
    kernel_irqchip: str
    max_cpu_compat: str | None
    append: str
    firmware: str
    #: Where ``firmware`` was written: ``pseries.firmware``, or the deprecated ``boot.firmware``.
    firmware_key: str = "pseries.firmware"

    @property
    def pseries(self) -> bool:
        """``pseries`` or a versioned ``pseries-X.Y``."""
        return self.arch == "ppc64" and (self.type == "pseries" or self.type.startswith("pseries-"))

    def config(self, accel: str) -> IrqConfig:
        """The model's configuration, with ``accel`` resolved to ``tcg`` or ``kvm``."""
        return IrqConfig(self.ic_mode, self.cpu, self.max_cpu_compat, accel, self.kernel_irqchip,
                         self.cpus, self.max_cpus)


def read(machine: Machine) -> IrqSettings:
    """The settings of ``machine``."""
    mach = machine.section("machine")
    irq = machine.section("irq")
    boot = machine.section("boot")
    pseries = machine.section("pseries")
    firmware, firmware_key = pseries.get("firmware"), "pseries.firmware"
    if not firmware:  # the key's home before vmctl 0.2; read for one more release
        firmware, firmware_key = boot.get("firmware"), "boot.firmware"
    return IrqSettings(
        arch=str(mach.get("arch", "")), type=str(mach.get("type", "")), cpu=str(mach.get("cpu", "")),
        cpus=int(mach.get("cpus") or 1), max_cpus=mach.get("max-cpus"), accel=str(mach.get("accel", "auto")),
        ic_mode=str(irq.get("ic-mode") or "dual"), kernel_irqchip=str(irq.get("kernel-irqchip") or "auto"),
        max_cpu_compat=machine.get("pseries.max-cpu-compat"), append=str(boot.get("append") or ""),
        firmware=str(firmware or "default"), firmware_key=firmware_key,
    )
