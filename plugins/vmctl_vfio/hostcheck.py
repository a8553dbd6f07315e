"""``vmctl host check`` lines and TAB completion of host PCI addresses."""

from __future__ import annotations

from typing import TYPE_CHECKING

from vmctl.api import HostFact

from vmctl_vfio.host import PCI_DEVICES, read_host, read_pci_device
from vmctl_vfio.pcibus import VFIO_PCI

if TYPE_CHECKING:  # pragma: no cover
    from vmctl.api import Sysfs

MiB = 1 << 20

#: PCI class (base << 8 | sub) → what ``lspci`` calls it.
CLASS_NAMES = {0x0100: "SCSI", 0x0106: "SATA", 0x0108: "NVMe", 0x0200: "Ethernet",
               0x0280: "Network", 0x0300: "VGA", 0x0302: "3D", 0x0403: "Audio",
               0x0600: "Host bridge", 0x0601: "ISA bridge", 0x0604: "PCI bridge",
               0x0c03: "USB", 0x0c05: "SMBus", 0x1200: "Accelerator"}


def host_facts(sysfs: Sysfs) -> list[HostFact]:
    h = read_host(sysfs)
    facts = [HostFact("IOMMU", h.iommu,
                      f"{', '.join(h.iommu_units) or 'no unit'}; {len(h.groups)} IOMMU groups"
                      if h.iommu else "off: no IOMMU groups",
                      "enable VT-d/AMD-Vi and boot with intel_iommu=on (or amd_iommu=on)"),
             HostFact("vfio-pci driver", VFIO_PCI in h.drivers,
                      "loaded" if VFIO_PCI in h.drivers else "not loaded", "modprobe vfio-pci"),
             HostFact("VFIO container (/dev/vfio/vfio)", h.vfio_container,
                      "present" if h.vfio_container else "missing", "modprobe vfio"),
             HostFact("iommufd (/dev/iommu)", h.iommufd,
                      f"present (kernel {h.kernel})" if h.iommufd else
                      f"missing (kernel {h.kernel or 'unknown'})",
                      "modprobe iommufd (Linux 6.2+); the type1 container works without it")]
    if h.memlock_known:
        unlimited = h.memlock_limit is None
        detail = "unlimited" if unlimited else f"{h.memlock_limit // MiB} MiB"
        if h.cap_ipc_lock:
            detail += " (CAP_IPC_LOCK: not enforced)"
        facts.append(HostFact(
            "memlock limit for VFIO pinning", unlimited or h.cap_ipc_lock, detail,
            "a type1/iommufd VM pins all its memory: raise RLIMIT_MEMLOCK (ulimit -l, "
            "LimitMEMLOCK=) to at least the guest memory size"))
    if h.allow_unsafe_interrupts:
        facts.append(HostFact("interrupt isolation", False,
                              "vfio_iommu_type1.allow_unsafe_interrupts=Y",
                              "only needed without interrupt remapping; guests can then "
                              "spoof MSIs"))
    if h.vfio_nodes:
        facts.append(HostFact("groups ready for VFIO", True,
                              ", ".join(f"/dev/vfio/{g}" for g in sorted(h.vfio_nodes))))
    return facts


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
