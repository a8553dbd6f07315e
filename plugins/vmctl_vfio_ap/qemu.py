"""Lowering ``vfio-ap``: QEMU argv, libvirt ``<hostdev>``, and ``mdevctl`` JSON (§4.8).

* QEMU: ``-device vfio-ap,sysfsdev=/sys/devices/vfio_ap/matrix/UUID`` (a TOML ``id`` is kept)
  and ``ap=on,apqci=on,apft=on`` on ``-cpu``: the AP instructions, query-configuration and
  facilities test the guest's AP bus needs (QEMU accepts them only under KVM).
* libvirt (≥ 4.9): ``<hostdev mode='subsystem' type='mdev' managed='no' model='vfio-ap'>``
  with the mdev UUID, and the three CPU features as ``<feature policy='require'>``.
* mdevctl: the device definition ``mdevctl define -u UUID -p matrix --jsonfile FILE``
  accepts: the type, ``start = auto`` and the assignments as ordered attributes.

Pure functions: no I/O, nothing spawned.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from typing import TYPE_CHECKING

from vmctl.api import ArgFragment, CpuProp, ExportFormat, QemuFragment

from .model.system import MDEV_TYPE
from .settings import CPU_FEATURES, ap_devices

if TYPE_CHECKING:  # pragma: no cover
    from vmctl.api import Machine

MDEVCTL_PARENT = "matrix"
"""The parent device name mdevctl uses for vfio_ap mdevs (``/sys/class/mdev_bus/matrix``)."""


def qemu_args(machine: Machine) -> list[QemuFragment]:
    out: list[QemuFragment] = []
    for dev in ap_devices(machine)[:1]:
        props = [f"vfio-ap,sysfsdev={dev.sysfsdev}"]
        if dev.id:
            props.append(f"id={dev.id}")
        out.append(ArgFragment(("-device", ",".join(props)), key=dev.key))
        out += [CpuProp(f, "on", key=dev.key) for f in CPU_FEATURES]
    return out


def libvirt_xml(machine: Machine, domain: ET.Element) -> None:
    """``vmctl_libvirt_xml``: the ``<hostdev>`` of the mdev and the AP CPU features."""
    devs = ap_devices(machine)[:1]
    if not devs:
        return
    dev = devs[0]
    devices = domain.find("devices")
    if devices is None:
        devices = ET.SubElement(domain, "devices")
    hostdev = ET.SubElement(devices, "hostdev", mode="subsystem", type="mdev", managed="no",
                            model="vfio-ap")
    source = ET.SubElement(hostdev, "source")
    ET.SubElement(source, "address", uuid=dev.uuid)
    cpu = domain.find("cpu")
    if cpu is not None:
        for f in CPU_FEATURES:
            ET.SubElement(cpu, "feature", policy="require", name=f)


def export_formats() -> list[ExportFormat]:
    """``vmctl_export_formats``: ``mdevctl-json`` (:func:`mdevctl_json`)."""
    return [ExportFormat("mdevctl-json", "the vfio-ap mdev for `mdevctl define -u UUID -p matrix --jsonfile`",
                         "vmctl_vfio_ap.qemu:mdevctl_json")]


def mdevctl_json(machine: Machine) -> str:
    """``vmctl export --format mdevctl-json``: the mdev for ``mdevctl define --jsonfile``."""
    devs = ap_devices(machine)
    if not devs:
        from vmctl.api import VmctlError

        raise VmctlError(f"machine {machine.name!r} has no vfio-ap device",
                         'add [[device]] kind = "vfio-ap" with adapters and domains')
    dev = devs[0]
    attrs = ([{"assign_adapter": f"0x{a:02x}"} for a in sorted(set(dev.adapters))]
             + [{"assign_domain": f"0x{d:04x}"} for d in sorted(set(dev.domains))]
             + [{"assign_control_domain": f"0x{c:04x}"} for c in sorted(set(dev.control_domains))])
    doc = {"mdev_type": MDEV_TYPE, "start": "auto", "attrs": attrs}
    return json.dumps(doc, indent=2) + "\n"
