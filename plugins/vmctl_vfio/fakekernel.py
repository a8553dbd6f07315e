"""Fake-kernel handlers: the kernel's reaction to PCI driver writes on a fake tree.

Each handler loads the bus from the tree into :class:`vmctl_vfio.pcibus.PciBus` (the pure
model of the driver core), applies the one write, and stores the difference back the way
the kernel shows it: the device's ``driver`` link and the driver's device link,
``driver_override`` (``(null)`` when cleared), and ``/dev/vfio/N`` appearing with the first
VFIO-bound device of group N and vanishing with the last.  A refused write raises the
model's :class:`~vmctl.model.ModelError`, an ``OSError`` with the kernel's errno.

Handled paths::

    /sys/bus/pci/devices/*/driver_override     (also through /sys/devices/…)
    /sys/bus/pci/drivers/*/bind   …/unbind   …/new_id   …/remove_id
    /sys/bus/pci/drivers_probe
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import PurePosixPath

from vmctl.api import FakeKernelHandler, Sysfs

from vmctl_vfio.fakesys import IDS_FILE
from vmctl_vfio.host import PCI_DRIVERS, device_kpath, read_pci_devices
from vmctl_vfio.pcibus import PciBus, PciDev, PciDriver

PLUGIN = "vfio"


def load_bus(sysfs: Sysfs) -> PciBus:
    """The driver core's state as the fake tree records it."""
    tables = json.loads(sysfs.read(IDS_FILE, "{}") or "{}")
    drivers = []
    for name in sysfs.listdir(PCI_DRIVERS):
        t = tables.get(name, {})
        drivers.append(PciDriver(name, set(t.get("ids", ())), set(t.get("dynids", ())),
                                 set(t.get("classes", ()))))
    devices = [PciDev(d.address, d.vendor, d.device, d.class_code, d.iommu_group,
                      d.driver, d.driver_override)
               for d in read_pci_devices(sysfs).values()]
    return PciBus(devices, drivers)


def _state(bus: PciBus) -> tuple[dict[str, tuple[str | None, str | None]], set[int],
                                 dict[str, frozenset[str]]]:
    return ({a: (d.driver, d.override) for a, d in bus.devices.items()}, bus.vfio_groups(),
            {n: frozenset(d.dynids) for n, d in bus.drivers.items()})


def store_bus(sysfs: Sysfs, before: tuple, bus: PciBus) -> None:
    """Write what changed since ``before`` (from :func:`_state`) back to the tree."""
    devs_before, groups_before, dynids_before = before
    for addr, dev in bus.devices.items():
        old_driver, old_override = devs_before[addr]
        kp = device_kpath(sysfs, addr)
        if dev.override != old_override:
            sysfs.raw_write(f"{kp}/driver_override", dev.override or "(null)")
        if dev.driver != old_driver:
            if old_driver is not None:
                sysfs.raw_unlink(f"{kp}/driver")
                sysfs.raw_unlink(f"{PCI_DRIVERS}/{old_driver}/{addr}")
            if dev.driver is not None:
                sysfs.raw_symlink(f"{kp}/driver", f"{PCI_DRIVERS}/{dev.driver}")
                sysfs.raw_symlink(f"{PCI_DRIVERS}/{dev.driver}/{addr}", kp)
    groups = bus.vfio_groups()
    for g in sorted(groups_before - groups):
        sysfs.raw_unlink(f"/dev/vfio/{g}")
    for g in sorted(groups - groups_before):
        sysfs.raw_write(f"/dev/vfio/{g}", "")
    if {n: frozenset(d.dynids) for n, d in bus.drivers.items()} != dynids_before:
        tables = json.loads(sysfs.read(IDS_FILE, "{}") or "{}")
        for name, drv in bus.drivers.items():
            tables.setdefault(name, {"ids": [], "dynids": [], "classes": []})
            tables[name]["dynids"] = sorted(drv.dynids)
        sysfs.raw_write(IDS_FILE, json.dumps(tables, indent=1, sort_keys=True))


def _apply(op: Callable[[PciBus, str, str], None]) -> Callable[[Sysfs, str, str], None]:
    def write(sysfs: Sysfs, kpath: str, value: str) -> None:
        bus = load_bus(sysfs)
        before = _state(bus)
        op(bus, kpath, value)
        store_bus(sysfs, before, bus)
    return write


def _driver_of(kpath: str) -> str:
    return PurePosixPath(kpath).parent.name


def _override(bus: PciBus, kpath: str, value: str) -> None:
    bus.set_override(PurePosixPath(kpath).parent.name, value)


def handlers() -> tuple[FakeKernelHandler, ...]:
    """The handlers to return from the ``vmctl_fake_kernel`` hook."""
    h = FakeKernelHandler
    return (
        h("/sys/bus/pci/devices/*/driver_override", _apply(_override), plugin=PLUGIN),
        h("/sys/devices/pci*/driver_override", _apply(_override), plugin=PLUGIN),
        h("/sys/bus/pci/drivers/*/bind",
          _apply(lambda b, p, v: b.bind(_driver_of(p), v)), plugin=PLUGIN),
        h("/sys/bus/pci/drivers/*/unbind",
          _apply(lambda b, p, v: b.unbind(_driver_of(p), v)), plugin=PLUGIN),
        h("/sys/bus/pci/drivers/*/new_id",
          _apply(lambda b, p, v: b.new_id(_driver_of(p), v)), plugin=PLUGIN),
        h("/sys/bus/pci/drivers/*/remove_id",
          _apply(lambda b, p, v: b.remove_id(_driver_of(p), v)), plugin=PLUGIN),
        h("/sys/bus/pci/drivers_probe",
          _apply(lambda b, p, v: b.probe(v)), plugin=PLUGIN),
    )
