"""The kernel's PCI driver core as seen from sysfs: matching, bind, unbind, probe.

A pure model of what ``drivers/base/bus.c``, ``dd.c`` and ``drivers/pci/pci-driver.c`` do
when userspace writes ``driver_override``, ``drivers/*/bind``, ``drivers/*/unbind``,
``drivers/*/new_id`` or ``drivers_probe``.  The fake kernel
(:func:`vmctl_vfio.fakesys.fake_kernel`) loads it from a fake tree, applies one write and
stores the result back.

Kernel behaviour kept here:

* matching: a device with ``driver_override`` set matches *only* the driver of that name
  (and that driver always matches it); otherwise dynamic ids (``new_id``), then the
  driver's static id table.  ``vfio-pci``'s table matches nothing without an override
  (``PCI_DRIVER_OVERRIDE_DEVICE_VFIO``).
* ``bind``: unknown device or no match → ENODEV; already bound → EBUSY; a failing probe
  returns its errno (vfio-pci refuses bridges and devices without an IOMMU group: EINVAL).
* ``unbind``: device not bound to *this* driver → ENODEV.
* ``drivers_probe``: unknown device → ENODEV; a bound device is left alone; probe
  failures are silent, the write succeeds and the device stays unbound.
* ``driver_override``: truncated at the first newline; empty clears it (reads ``(null)``).
"""

from __future__ import annotations

import errno
from dataclasses import dataclass, field

from vmctl.api import ModelError

VFIO_PCI = "vfio-pci"
PCI_STUB = "pci-stub"
PCIEPORT = "pcieport"
PAGE_SIZE = 4096


def is_vfio_driver(driver: str | None) -> bool:
    """vfio-pci or a vendor variant (``mlx5_vfio_pci``, ``hisi_acc_vfio_pci``, …)."""
    return driver is not None and (driver == VFIO_PCI or driver.endswith("_vfio_pci"))


def is_dma_safe(driver: str | None) -> bool:
    """Whether a device bound to ``driver`` keeps its IOMMU group viable.

    VFIO drivers, ``pci-stub`` and no driver at all are fine (vfio.rst); so is
    ``pcieport`` on bridges, which sets ``driver_managed_dma`` since Linux 5.19.  Any other
    driver does DMA through the kernel and makes the group non-viable.
    """
    return driver is None or driver in (PCI_STUB, PCIEPORT) or is_vfio_driver(driver)


def parse_id(text: str) -> str:
    """``"8086:10d3"`` in canonical lower-case form; ValueError otherwise."""
    ven, _, dev = text.strip().lower().partition(":")
    int(ven, 16), int(dev, 16)
    return f"{int(ven, 16):04x}:{int(dev, 16):04x}"


@dataclass
class PciDevice:
    """One PCI function, as sysfs shows it and as the driver core knows it.

    The host reader (:func:`vmctl_vfio.host.read_pci_device`) fills it from
    ``/sys/bus/pci/devices/ADDR``; :class:`PciBus` changes ``driver`` and
    ``driver_override`` as the kernel would on a write.
    """

    address: str
    vendor: int
    device: int
    class_code: int
    iommu_group: int | None
    driver: str | None = None
    driver_override: str | None = None

    @property
    def id(self) -> str:
        return f"{self.vendor:04x}:{self.device:04x}"

    @property
    def is_bridge(self) -> bool:
        """PCI-PCI (0x0604, 0x0609) or CardBus (0x0607) bridge: not header type 0."""
        return self.class_code >> 8 in (0x0604, 0x0607, 0x0609)

    @property
    def dma_safe(self) -> bool:
        return is_dma_safe(self.driver)

    def describe(self) -> str:
        """``0000:01:00.1 [10de:10f0] on snd_hda_intel``."""
        return f"{self.address} [{self.id}] on {self.driver or 'no driver'}"


@dataclass
class PciDriver:
    """A registered PCI driver: its static id table, ``new_id`` additions, class matches."""

    name: str
    ids: set[str] = field(default_factory=set)
    dynids: set[str] = field(default_factory=set)
    classes: set[int] = field(default_factory=set)     #: class code >> 8, e.g. 0x0604


class PciBus:
    """Devices and drivers of the PCI bus, with the driver core's sysfs operations."""

    def __init__(self, devices: list[PciDevice], drivers: list[PciDriver]) -> None:
        self.devices = {d.address: d for d in devices}
        self.drivers = {d.name: d for d in drivers}

    # -- matching and probing -------------------------------------------------------------
    def matches(self, drv: PciDriver, dev: PciDevice) -> bool:
        if dev.driver_override is not None:
            return dev.driver_override == drv.name
        if dev.id in drv.dynids or dev.id in drv.ids:
            return True
        return (dev.class_code >> 8) in drv.classes

    def probe_error(self, drv: PciDriver, dev: PciDevice) -> int:
        """The errno the driver's probe returns for ``dev`` (0: it binds)."""
        if is_vfio_driver(drv.name):
            if dev.is_bridge:
                return errno.EINVAL          # vfio-pci: only header type 0 (normal) devices
            if dev.iommu_group is None:
                return errno.EINVAL          # no IOMMU group and no no-IOMMU mode
        return 0

    def _device(self, address: str) -> PciDevice:
        dev = self.devices.get(address.strip())
        if dev is None:
            raise ModelError(errno.ENODEV, f"no PCI device {address.strip()!r}")
        return dev

    def _driver(self, name: str) -> PciDriver:
        drv = self.drivers.get(name)
        if drv is None:
            raise ModelError(errno.ENOENT, f"no PCI driver {name!r}")
        return drv

    # -- sysfs writes ---------------------------------------------------------------------
    def set_override(self, address: str, value: str) -> None:
        """``echo VALUE > /sys/bus/pci/devices/ADDR/driver_override``."""
        if len(value) >= PAGE_SIZE - 1:
            raise ModelError(errno.EINVAL, "driver_override too long")
        dev = self._device(address)
        name = value.split("\n", 1)[0]
        dev.driver_override = name or None

    def bind(self, driver: str, address: str) -> None:
        """``echo ADDR > /sys/bus/pci/drivers/DRIVER/bind``."""
        drv = self._driver(driver)
        dev = self.devices.get(address.strip())
        if dev is None or not self.matches(drv, dev):
            raise ModelError(errno.ENODEV, f"{driver} does not match {address.strip()}")
        if dev.driver is not None:
            raise ModelError(errno.EBUSY, f"{dev.address} is bound to {dev.driver}")
        err = self.probe_error(drv, dev)
        if err:
            raise ModelError(err, f"{driver} probe of {dev.address} failed")
        dev.driver = drv.name

    def unbind(self, driver: str, address: str) -> None:
        """``echo ADDR > /sys/bus/pci/drivers/DRIVER/unbind``."""
        dev = self.devices.get(address.strip())
        if dev is None or dev.driver != driver:
            raise ModelError(errno.ENODEV, f"{address.strip()} is not bound to {driver}")
        dev.driver = None

    def probe(self, address: str) -> str | None:
        """``echo ADDR > /sys/bus/pci/drivers_probe``; returns the driver bound, if any."""
        dev = self._device(address)
        if dev.driver is None:
            for drv in self.drivers.values():
                if self.matches(drv, dev) and not self.probe_error(drv, dev):
                    dev.driver = drv.name
                    break
        return dev.driver

    def new_id(self, driver: str, text: str) -> None:
        """``echo "VVVV DDDD" > drivers/DRIVER/new_id``: add a dynamic id, then attach."""
        drv = self._driver(driver)
        fields = text.split()
        if len(fields) < 2:
            raise ModelError(errno.EINVAL, "new_id: expected 'vendor device'")
        try:
            ident = parse_id(f"{fields[0]}:{fields[1]}")
        except ValueError:
            raise ModelError(errno.EINVAL, f"new_id: bad id {text.strip()!r}") from None
        if ident in drv.dynids:
            raise ModelError(errno.EEXIST, f"new_id: {ident} already added")
        drv.dynids.add(ident)
        for dev in self.devices.values():          # driver_attach()
            if dev.driver is None and self.matches(drv, dev) and not self.probe_error(drv, dev):
                dev.driver = drv.name

    def remove_id(self, driver: str, text: str) -> None:
        """``echo "VVVV DDDD" > drivers/DRIVER/remove_id``."""
        drv = self._driver(driver)
        fields = text.split()
        try:
            ident = parse_id(f"{fields[0]}:{fields[1]}")
        except (ValueError, IndexError):
            raise ModelError(errno.EINVAL, f"remove_id: bad id {text.strip()!r}") from None
        if ident not in drv.dynids:
            raise ModelError(errno.ENODEV, f"remove_id: {ident} was not added")
        drv.dynids.discard(ident)

    # -- derived state ---------------------------------------------------------------------
    def vfio_groups(self) -> set[int]:
        """Groups with a ``/dev/vfio/N`` node: at least one device on a VFIO driver."""
        return {d.iommu_group for d in self.devices.values()
                if d.iommu_group is not None and is_vfio_driver(d.driver)}
