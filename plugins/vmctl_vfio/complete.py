"""TAB completion of host PCI addresses (``vfio-pci``'s ``host`` key)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from vmctl.api import Completion

from .host import PCI_DEVICES, read_pci_device

if TYPE_CHECKING:  # pragma: no cover
    from vmctl.api import Sysfs

#: PCI class (base << 8 | sub) → what ``lspci`` calls it.
CLASS_NAMES = {0x0100: "SCSI", 0x0106: "SATA", 0x0108: "NVMe", 0x0200: "Ethernet",
               0x0280: "Network", 0x0300: "VGA", 0x0302: "3D", 0x0403: "Audio",
               0x0600: "Host bridge", 0x0601: "ISA bridge", 0x0604: "PCI bridge",
               0x0c03: "USB", 0x0c05: "SMBus", 0x1200: "Accelerator"}


def complete(kind: str, incomplete: str, sysfs: Sysfs) -> list[Completion] | None:
    """The ``vmctl_complete`` hook: host PCI addresses for ``pci-address``, else nothing."""
    if kind != "pci-address":
        return None
    return [Completion(value, text) for value, text in complete_pci(incomplete, sysfs)]


def complete_pci(incomplete: str, sysfs: Sysfs) -> list[tuple[str, str]]:
    """``(address, "[vvvv:dddd] Class, group N, on DRIVER")`` for devices matching the prefix."""
    text = incomplete.lower()
    out = []
    for addr in sysfs.listdir(PCI_DEVICES):
        if not (addr.startswith(text) or addr[5:].startswith(text)):
            continue
        dev = read_pci_device(sysfs, addr)
        if dev is None or dev.is_bridge or dev.class_code >> 8 == 0x0600:
            continue
        kind = CLASS_NAMES.get(dev.class_code >> 8, f"class {dev.class_code >> 8:04x}")
        group = f"group {dev.iommu_group}" if dev.iommu_group is not None else "no IOMMU group"
        out.append((addr, f"[{dev.id}] {kind}, {group}, on {dev.driver or 'no driver'}"))
    return out
