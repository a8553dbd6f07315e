"""The machine's ``vfio-pci`` devices, read once with their keys and canonical addresses."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from .host import parse_pci_address

if TYPE_CHECKING:  # pragma: no cover
    from vmctl.api import Machine

KIND = "vfio-pci"

#: QEMU's ``-object iommufd`` id shared by every iommufd device of a machine.
IOMMUFD_ID = "iommufd0"


@dataclass(frozen=True)
class VfioDev:
    """One ``[[device]] kind = "vfio-pci"`` entry.

    ``address`` is the canonical ``dddd:bb:dd.f`` form, or None when ``host`` is malformed.
    """

    index: int
    host: str
    address: str | None
    iommu: str
    iopf: bool
    prefault: int
    experimental: bool
    id: str | None

    @property
    def key(self) -> str:
        return f"device[{self.index}]"


def vfio_devices(machine: Machine) -> list[VfioDev]:
    out = []
    for i, d in machine.devices_of(KIND):
        host = str(d.get("host", ""))
        try:
            addr: str | None = parse_pci_address(host)
        except ValueError:
            addr = None
        out.append(VfioDev(i, host, addr, str(d.get("iommu", "type1")), bool(d.get("iopf")),
                           int(d.get("prefault", 512)), bool(d.get("experimental")),
                           str(d["id"]) if d.get("id") else None))
    return out


def guest_memory(machine: Machine) -> int:
    """Guest RAM in bytes (``machine.memory``; 1 GiB when unparsable, like the exporter)."""
    from vmctl.api import parse_size

    return parse_size(str(machine.section("machine").get("memory", "1G"))) or (1 << 30)
