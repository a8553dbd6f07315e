"""Lowering to QEMU: properties of the single ``-machine pseries,…`` option. Pure.

* ``ic-mode=`` always, so the machine does not depend on the default of a QEMU version;
* ``kernel-irqchip=on|off`` when set (``auto`` is QEMU's default: in-kernel when KVM can);
* ``max-cpu-compat=`` from ``[pseries]``;
* ``x-vof=on`` for ``[pseries] firmware = "vof"`` (or the deprecated ``[boot] firmware``) (QEMU's fast Virtual Open Firmware; the
  guest reaches CAS in about 0.1 s under TCG instead of several seconds with SLOF).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from vmctl.api import MachineProp
from .settings import read

if TYPE_CHECKING:  # pragma: no cover
    from vmctl.api import Machine


def qemu_args(machine: Machine) -> list[MachineProp]:
    """The ``-machine`` properties for ``machine`` (none when it is not a pseries)."""
    s = read(machine)
    if not s.pseries:
        return []
    props = [MachineProp("ic-mode", s.ic_mode, key="irq.ic-mode")]
    if s.kernel_irqchip in ("on", "off"):
        props.append(MachineProp("kernel-irqchip", s.kernel_irqchip, key="irq.kernel-irqchip"))
    if s.max_cpu_compat:
        props.append(MachineProp("max-cpu-compat", s.max_cpu_compat, key="pseries.max-cpu-compat"))
    if s.firmware == "vof":
        props.append(MachineProp("x-vof", "on", key=s.firmware_key))
    return props


QEMU_NS = "http://libvirt.org/schemas/domain/qemu/1.0"


def libvirt_xml(machine: Machine, domain) -> None:
    """Carry the interrupt settings into libvirt, which has no element for them.

    libvirt passes ``<qemu:commandline>`` arguments through; QEMU merges a second
    ``-machine`` option into the first, so ``-machine ic-mode=…`` keeps the machine type
    libvirt chose and adds the properties (checked against QEMU 7.2: ``qom-get
    /machine ic-mode`` reads back the value).
    """
    import xml.etree.ElementTree as ET

    props = qemu_args(machine)
    if not props:
        return
    ET.register_namespace("qemu", QEMU_NS)
    cmdline = ET.SubElement(domain, f"{{{QEMU_NS}}}commandline")
    ET.SubElement(cmdline, f"{{{QEMU_NS}}}arg", value="-machine")
    ET.SubElement(cmdline, f"{{{QEMU_NS}}}arg", value=",".join(f"{p.name}={p.value}" for p in props))
