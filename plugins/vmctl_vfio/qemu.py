"""Lowering ``vfio-pci`` devices: QEMU argv fragments and libvirt ``<hostdev>`` (§2.7, §2.8).

* type1: ``-device vfio-pci,host=0000:03:00.0[,id=ID]``;
* iommufd: one ``-object iommufd,id=iommufd0`` per machine and ``iommufd=iommufd0`` on
  each such device (QEMU 8.2+);
* ``iopf`` is not lowered: QEMU has no such property, and validation refuses it for the
  qemu backend.
* libvirt: ``<hostdev mode='subsystem' type='pci' managed='yes'>`` with the source address
  and ``<driver name='vfio'/>``; a TOML ``id`` becomes the user alias ``ua-ID``.  libvirt
  9.0's schema cannot express the iommufd backend; the element then carries a comment
  saying so.

Pure functions: no I/O, nothing spawned.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from typing import TYPE_CHECKING

from vmctl.api import ArgFragment

from .settings import IOMMUFD_ID, vfio_devices

if TYPE_CHECKING:  # pragma: no cover
    from vmctl.api import Machine

_ALIAS = re.compile(r"^[A-Za-z0-9_-]+$")


def qemu_args(machine: Machine) -> list[ArgFragment]:
    devs = [d for d in vfio_devices(machine) if d.address]
    out: list[ArgFragment] = []
    iommufd = [d for d in devs if d.iommu == "iommufd"]
    if iommufd:
        out.append(ArgFragment(("-object", f"iommufd,id={IOMMUFD_ID}"),
                               key=f"{iommufd[0].key}.iommu"))
    for d in devs:
        props = [f"vfio-pci,host={d.address}"]
        if d.id:
            props.append(f"id={d.id}")
        if d.iommu == "iommufd":
            props.append(f"iommufd={IOMMUFD_ID}")
        out.append(ArgFragment(("-device", ",".join(props)), key=d.key))
    return out


def libvirt_xml(machine: Machine, domain: ET.Element) -> None:
    devices = domain.find("devices")
    if devices is None:
        devices = ET.SubElement(domain, "devices")
    for d in vfio_devices(machine):
        if not d.address:
            continue
        dom, bus, rest = d.address.split(":")
        slot, fn = rest.split(".")
        hostdev = ET.SubElement(devices, "hostdev", mode="subsystem", type="pci", managed="yes")
        ET.SubElement(hostdev, "driver", name="vfio")
        source = ET.SubElement(hostdev, "source")
        ET.SubElement(source, "address", domain=f"0x{dom}", bus=f"0x{bus}", slot=f"0x{slot}",
                      function=f"0x{fn}")
        if d.id and _ALIAS.match(d.id):
            ET.SubElement(hostdev, "alias", name=f"ua-{d.id}")
        if d.iommu == "iommufd":
            hostdev.insert(0, ET.Comment(
                " iommu = \"iommufd\": not expressible in libvirt 9.0's domain schema; "
                "libvirt uses the VFIO container "))
