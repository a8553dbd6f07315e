"""Host steps: move every device of each assigned IOMMU group onto vfio-pci, undoably.

For the groups of a machine's ``vfio-pci`` devices, the devices to move are the assigned
ones not yet on vfio-pci, and companions bound to a DMA-doing host driver (companions on
pci-stub, pcieport bridges and unbound devices already keep the group viable and are left
alone).  The steps come in three phases, each over all those devices (companions first):

1. ``driver_override`` ← ``vfio-pci`` — nothing moves yet, but no host driver can claim the
   device again from here on (a rescan or hot-plug event re-probes, and probing now only
   matches vfio-pci);
2. ``drivers/HOST/unbind`` — after this phase the group has no kernel DMA user at all;
3. ``drivers_probe`` — the driver core binds vfio-pci, honouring the override.

Undo, run in reverse: unbind from vfio-pci; restore the original ``driver_override`` and
bind the original driver (its id table matches again once the override is gone); restore
the override.  The plan is first simulated on :class:`~vmctl_vfio.model.pcibus.PciBus` loaded
from the tree, so a host that cannot end up viable is refused before anything is written.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from vmctl.api import HostStep, HostWrite, ModelError, VmctlError

from .host import PCI_DEVICES, PCI_DRIVERS, read_host
from .model.pcibus import VFIO_PCI, PciBus, PciDevice, PciDriver, is_dma_safe, is_vfio_driver
from .settings import vfio_devices

if TYPE_CHECKING:  # pragma: no cover
    from vmctl.api import Machine
    from vmctl.api import Sysfs

PROBE = "/sys/bus/pci/drivers_probe"


def _moves(machine: Machine, sysfs: Sysfs) -> list[tuple[PciDevice, str, bool]]:
    """``(device, key, assigned)`` for every device to move, companions first."""
    host = read_host(sysfs)
    devs = [d for d in vfio_devices(machine) if d.address]
    if not devs:
        return []
    where = f"under {sysfs.root}" if str(sysfs.root) != "/" else "on this host"
    if not host.iommu:
        raise VmctlError(f"the IOMMU is off {where}: VFIO cannot assign devices",
                         "boot with intel_iommu=on (or amd_iommu=on) and VT-d/AMD-Vi enabled")
    if VFIO_PCI not in host.drivers:
        raise VmctlError(f"the vfio-pci driver is not loaded {where}", "modprobe vfio-pci")
    assigned = {d.address: d.key for d in devs}
    companions: dict[str, tuple[PciDevice, str]] = {}
    targets: dict[str, tuple[PciDevice, str]] = {}
    for d in devs:
        dev = host.devices.get(d.address or "")
        if dev is None:
            raise VmctlError(f"no PCI device {d.address} {where} ({d.key}.host of {machine.file})",
                             "list devices with `lspci -D`, or complete the address with TAB")
        if dev.iommu_group is None:
            raise VmctlError(f"{d.address} has no IOMMU group {where}",
                             "devices without an IOMMU group cannot be assigned")
        if not is_vfio_driver(dev.driver):
            targets[dev.address] = (dev, d.key)
        for other in host.viability(dev.iommu_group).devices:
            if other.address in assigned or is_dma_safe(other.driver):
                continue
            if other.is_bridge:
                raise VmctlError(f"bridge {other.describe()} in IOMMU group {dev.iommu_group} "
                                 "makes the group non-viable and vfio-pci cannot take bridges",
                                 f"unbind it by hand: echo {other.address} > "
                                 f"{PCI_DRIVERS}/{other.driver}/unbind")
            companions[other.address] = (other, d.key)
    ordered = [(dev, key, False) for _, (dev, key) in sorted(companions.items())]
    ordered += [(dev, key, True) for _, (dev, key) in sorted(targets.items())]
    return ordered


def _describe(dev: PciDevice, key: str, assigned: bool) -> str:
    role = key if assigned else f"group {dev.iommu_group} companion of {key}"
    return f"{dev.address} ({role}, on {dev.driver or 'no driver'})"


def host_steps(machine: Machine, sysfs: Sysfs) -> list[HostStep]:
    """The steps ``vmctl host apply`` performs; empty when every group is ready."""
    moves = _moves(machine, sysfs)
    if not moves:
        return []
    _simulate(sysfs, moves)
    phase1, phase2, phase3 = [], [], []
    for dev, key, assigned in moves:
        who = _describe(dev, key, assigned)
        override = f"{PCI_DEVICES}/{dev.address}/driver_override"
        old = dev.driver_override or ""
        phase1.append(HostStep(f"{who}: set driver_override to vfio-pci",
                               HostWrite(override, VFIO_PCI), (HostWrite(override, old),),
                               key=f"{key}.host"))
        if dev.driver is not None:
            phase2.append(HostStep(
                f"{who}: unbind from {dev.driver}",
                HostWrite(f"{PCI_DRIVERS}/{dev.driver}/unbind", dev.address),
                (HostWrite(override, old),
                 HostWrite(f"{PCI_DRIVERS}/{dev.driver}/bind", dev.address)),
                key=f"{key}.host"))
        phase3.append(HostStep(f"{who}: probe, binding vfio-pci",
                               HostWrite(PROBE, dev.address),
                               (HostWrite(f"{PCI_DRIVERS}/{VFIO_PCI}/unbind", dev.address),),
                               key=f"{key}.host"))
    return phase1 + phase2 + phase3


def _simulate(sysfs: Sysfs, moves: list[tuple[PciDevice, str, bool]]) -> None:
    """Run the plan on the driver-core model; refuse it if a device would not end on
    vfio-pci."""
    host = read_host(sysfs)
    bus = PciBus([replace(d) for d in host.devices.values()],
                 [PciDriver(n) for n in host.drivers])
    try:
        for dev, _, _ in moves:
            bus.set_override(dev.address, VFIO_PCI)
        for dev, _, _ in moves:
            if dev.driver is not None:
                bus.unbind(dev.driver, dev.address)
        for dev, key, _ in moves:
            if bus.probe(dev.address) != VFIO_PCI:
                raise VmctlError(f"vfio-pci would not bind {dev.address} ({key}): its probe "
                                 "refuses the device (a bridge, or no IOMMU group)",
                                 "pass a different device, or check `lspci -vs "
                                 f"{dev.address}`")
    except ModelError as exc:
        raise VmctlError(f"the binding plan fails on this host: {exc}",
                         "nothing was written") from None
