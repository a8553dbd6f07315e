"""Fake host trees for VFIO, shaped like the kernel's sysfs, ``/dev`` and ``/proc``, and
the fake kernel's reaction to PCI driver writes on them.

:func:`build_host` lays out PCI functions under ``/sys/devices/pci0000:00/…`` with the
``/sys/bus/pci/devices`` links, drivers and their device links, IOMMU groups, IOMMU units,
the ``vfio_iommu_type1`` parameters, ``/dev/vfio/*``, ``/dev/iommu`` and ``/proc/self``
limits.  Named scenarios (:data:`SCENARIOS`) build the standard desktop used by the tests:

=============  ===============================================================================
``host``       everything on its host driver (nouveau, snd_hda_intel, e1000e): bind needed
``viable``     GPU + its audio function + NIC on vfio-pci
``non-viable`` GPU on vfio-pci, its audio function still on snd_hda_intel
``no-iommu``   IOMMU off: no groups, vfio-pci cannot bind
``iommufd``    ``viable`` plus ``/dev/iommu`` (Linux 6.8)
=============  ===============================================================================

The GPU (``0000:01:00.0``) and its HDMI audio (``0000:01:00.1``) sit behind root port
``0000:00:01.0`` without ACS, so all three share group 1; the NIC (``0000:03:00.0``) has
group 8 of its own.  Drivers' id tables live in :data:`IDS_FILE` at the tree's root (the
kernel keeps them in memory; the fake kernel needs them to match devices on probe).
:func:`fake_hosts` offers the scenarios as the ``pci`` fake host.

The fake kernel (:func:`fake_kernel`): each handler loads the bus from the tree into
:class:`~vmctl_vfio.model.pcibus.PciBus` (the pure model of the driver core), applies the
one write, and stores the difference back the way the kernel shows it: the device's
``driver`` link and the driver's device link, ``driver_override`` (``(null)`` when
cleared), and ``/dev/vfio/N`` appearing with the first VFIO-bound device of group N and
vanishing with the last.  A refused write raises the model's
:class:`~vmctl.api.ModelError`, an ``OSError`` with the kernel's errno.  Handled paths::

    /sys/bus/pci/devices/*/driver_override     (also through /sys/devices/…)
    /sys/bus/pci/drivers/*/bind   …/unbind   …/new_id   …/remove_id
    /sys/bus/pci/drivers_probe
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from vmctl.api import FakeHost, FakeKernelHandler, Sysfs, mark_fake

from .host import PCI_DRIVERS, device_kpath, read_pci_devices
from .model.pcibus import VFIO_PCI, PciBus, PciDriver, is_vfio_driver

#: Where the fake kernel keeps driver id tables (``new_id`` additions included).
IDS_FILE = "/.vmctl-fake-pci-ids.json"

#: The plugin name the fake kernel's handlers carry.
PLUGIN = "vfio"

MiB = 1 << 20


@dataclass(frozen=True)
class FakeDevice:
    """A PCI function to put in the tree.

    ``native`` is the host driver whose id table matches it (what binds on probe without
    an override); ``driver`` is what it is bound to now.  ``parent`` is the upstream
    bridge's address (None: on the root bus).
    """

    address: str
    vendor: int
    device: int
    class_code: int
    native: str | None
    driver: str | None
    group: int | None
    parent: str | None = None
    subsystem: tuple[int, int] = (0, 0)
    revision: int = 0xA1


def desktop(gpu: str | None = "nouveau", audio: str | None = "snd_hda_intel",
            nic: str | None = "e1000e", *, iommu: bool = True) -> list[FakeDevice]:
    """The standard desktop; each argument is the driver that function is bound to now."""
    g = (lambda n: n) if iommu else (lambda n: None)
    return [
        FakeDevice("0000:00:00.0", 0x8086, 0x3E30, 0x060000, None, None, g(0)),
        FakeDevice("0000:00:01.0", 0x8086, 0x1901, 0x060400, "pcieport", "pcieport", g(1)),
        FakeDevice("0000:01:00.0", 0x10DE, 0x1B80, 0x030000, "nouveau", gpu, g(1),
                   parent="0000:00:01.0", subsystem=(0x1458, 0x3702)),
        FakeDevice("0000:01:00.1", 0x10DE, 0x10F0, 0x040300, "snd_hda_intel", audio, g(1),
                   parent="0000:00:01.0", subsystem=(0x1458, 0x3702)),
        FakeDevice("0000:00:1c.0", 0x8086, 0xA290, 0x060400, "pcieport", "pcieport", g(7)),
        FakeDevice("0000:03:00.0", 0x8086, 0x10D3, 0x020000, "e1000e", nic, g(8),
                   parent="0000:00:1c.0", subsystem=(0x8086, 0xA01F)),
        FakeDevice("0000:00:1f.3", 0x8086, 0xA348, 0x040300, "snd_hda_intel",
                   "snd_hda_intel", g(9), subsystem=(0x1458, 0xA182)),
    ]


def _limits(memlock: int | None) -> str:
    rows = [("Max cpu time", "unlimited", "unlimited", "seconds"),
            ("Max file size", "unlimited", "unlimited", "bytes"),
            ("Max data size", "unlimited", "unlimited", "bytes"),
            ("Max stack size", "8388608", "unlimited", "bytes"),
            ("Max core file size", "0", "unlimited", "bytes"),
            ("Max resident set", "unlimited", "unlimited", "bytes"),
            ("Max processes", "127431", "127431", "processes"),
            ("Max open files", "1024", "524288", "files"),
            ("Max locked memory", "unlimited" if memlock is None else str(memlock),
             "unlimited" if memlock is None else str(memlock), "bytes"),
            ("Max address space", "unlimited", "unlimited", "bytes"),
            ("Max file locks", "unlimited", "unlimited", "locks"),
            ("Max pending signals", "127431", "127431", "signals"),
            ("Max msgqueue size", "819200", "819200", "bytes"),
            ("Max nice priority", "0", "0", ""),
            ("Max realtime priority", "0", "0", ""),
            ("Max realtime timeout", "unlimited", "unlimited", "us")]
    out = [f"{'Limit':<25} {'Soft Limit':<20} {'Hard Limit':<20} {'Units':<10}"]
    out += [f"{n:<25} {s:<20} {h:<20} {u:<10}" for n, s, h, u in rows]
    return "\n".join(out) + "\n"


def _device_kpath(dev: FakeDevice, by_addr: dict[str, FakeDevice]) -> str:
    chain = [dev.address]
    parent = dev.parent
    while parent is not None:
        chain.append(parent)
        parent = by_addr[parent].parent
    domain, bus = chain[-1].split(":")[:2]          # the root-bus ancestor names the host bridge
    return f"/sys/devices/pci{domain}:{bus}/" + "/".join(reversed(chain))


def build_host(root: str | os.PathLike[str], devices: Iterable[FakeDevice], *,
               iommu: bool = True, iommufd: bool = False, vfio: bool = True,
               memlock: int | None = 8 * MiB, cap_ipc_lock: bool = False,
               kernel: str = "6.8.0-45-generic", allow_unsafe_interrupts: bool = False,
               dma_entry_limit: int = 65535, description: str = "vfio fake host") -> Sysfs:
    """Build a fake host under ``root`` (marked fake) and return a :class:`Sysfs` on it.

    Pass the fake kernel's handlers to a new ``Sysfs(root, handlers=...)`` to write to it
    with the kernel's side effects (see :func:`fake_kernel`).
    """
    mark_fake(root, description)
    fs = Sysfs(root)
    devs = list(devices)
    by_addr = {d.address: d for d in devs}
    drivers = {VFIO_PCI: {"ids": [], "classes": []}, "pci-stub": {"ids": [], "classes": []}}
    if not vfio:
        drivers.pop(VFIO_PCI)
    for d in devs:
        for name in (d.native, d.driver):
            if name:
                drivers.setdefault(name, {"ids": [], "classes": []})
        if d.native == "pcieport":
            if 0x0604 not in drivers["pcieport"]["classes"]:
                drivers["pcieport"]["classes"].append(0x0604)
        elif d.native:
            ident = f"{d.vendor:04x}:{d.device:04x}"
            if ident not in drivers[d.native]["ids"]:
                drivers[d.native]["ids"].append(ident)
    for name in sorted(drivers):
        base = f"/sys/bus/pci/drivers/{name}"
        for attr in ("bind", "unbind", "new_id", "remove_id", "uevent"):
            fs.raw_write(f"{base}/{attr}", "")
    fs.raw_write(IDS_FILE, json.dumps({k: {"ids": sorted(v["ids"]), "dynids": [],
                                           "classes": sorted(v["classes"])}
                                       for k, v in sorted(drivers.items())},
                                      indent=1, sort_keys=True))
    for attr, value in (("drivers_probe", ""), ("drivers_autoprobe", "1"), ("rescan", ""),
                        ("resource_alignment", "")):
        fs.raw_write(f"/sys/bus/pci/{attr}", value)
    fs.raw_mkdir("/sys/kernel/iommu_groups")
    fs.raw_mkdir("/sys/class/iommu")
    if iommu:
        fs.raw_write("/sys/devices/virtual/iommu/dmar0/intel-iommu/version", "1:0")
        fs.raw_symlink("/sys/class/iommu/dmar0", "/sys/devices/virtual/iommu/dmar0")
    for d in devs:
        kp = _device_kpath(d, by_addr)
        for attr, value in (("vendor", f"0x{d.vendor:04x}"), ("device", f"0x{d.device:04x}"),
                            ("subsystem_vendor", f"0x{d.subsystem[0]:04x}"),
                            ("subsystem_device", f"0x{d.subsystem[1]:04x}"),
                            ("class", f"0x{d.class_code:06x}"),
                            ("revision", f"0x{d.revision:02x}"),
                            ("modalias", _modalias(d)), ("driver_override", "(null)"),
                            ("numa_node", "-1")):
            fs.raw_write(f"{kp}/{attr}", value)
        fs.raw_symlink(f"{kp}/subsystem", "/sys/bus/pci")
        fs.raw_symlink(f"/sys/bus/pci/devices/{d.address}", kp)
        if d.driver:
            fs.raw_symlink(f"{kp}/driver", f"/sys/bus/pci/drivers/{d.driver}")
            fs.raw_symlink(f"/sys/bus/pci/drivers/{d.driver}/{d.address}", kp)
        if iommu and d.group is not None:
            gdir = f"/sys/kernel/iommu_groups/{d.group}"
            fs.raw_symlink(f"{kp}/iommu_group", gdir)
            fs.raw_symlink(f"{gdir}/devices/{d.address}", kp)
            fs.raw_symlink(f"{kp}/iommu", "/sys/devices/virtual/iommu/dmar0")
            fs.raw_write(f"{gdir}/type", "DMA-FQ")
            fs.raw_write(f"{gdir}/reserved_regions",
                         "0x00000000fee00000 0x00000000feefffff msi")
    if vfio:
        fs.raw_write("/dev/vfio/vfio", "")
        params = "/sys/module/vfio_iommu_type1/parameters"
        fs.raw_write(f"{params}/allow_unsafe_interrupts", "Y" if allow_unsafe_interrupts else "N")
        fs.raw_write(f"{params}/dma_entry_limit", str(dma_entry_limit))
        fs.raw_write(f"{params}/disable_hugepages", "N")
        for group in sorted({d.group for d in devs
                             if iommu and d.group is not None and is_vfio_driver(d.driver)}):
            fs.raw_write(f"/dev/vfio/{group}", "")
    if iommufd:
        fs.raw_write("/dev/iommu", "")
        fs.raw_write("/sys/module/iommufd/parameters/allow_unsafe_interrupts", "N")
    fs.raw_write("/proc/self/limits", _limits(memlock))
    cap = (1 << 14) if cap_ipc_lock else 0
    fs.raw_write("/proc/self/status", f"Name:\tqemu-system-x86\nCapEff:\t{cap:016x}")
    fs.raw_write("/proc/sys/kernel/osrelease", kernel)
    return fs


def _modalias(d: FakeDevice) -> str:
    c = d.class_code
    return (f"pci:v{d.vendor:08X}d{d.device:08X}sv{d.subsystem[0]:08X}"
            f"sd{d.subsystem[1]:08X}bc{c >> 16:02X}sc{(c >> 8) & 0xFF:02X}i{c & 0xFF:02X}")


# -- named scenarios -----------------------------------------------------------------------------
def host_scenario(root: str | os.PathLike[str], **kw: object) -> Sysfs:
    """Everything on host drivers: the tree ``vmctl host apply`` starts from."""
    return build_host(root, desktop(), description="host drivers bound", **kw)  # type: ignore[arg-type]


def viable_scenario(root: str | os.PathLike[str], **kw: object) -> Sysfs:
    return build_host(root, desktop("vfio-pci", "vfio-pci", "vfio-pci"),
                      description="viable groups", **kw)  # type: ignore[arg-type]


def nonviable_scenario(root: str | os.PathLike[str], **kw: object) -> Sysfs:
    """GPU on vfio-pci; its audio function, a companion in group 1, on snd_hda_intel."""
    return build_host(root, desktop("vfio-pci", "snd_hda_intel", "vfio-pci"),
                      description="non-viable group 1", **kw)  # type: ignore[arg-type]


def no_iommu_scenario(root: str | os.PathLike[str], **kw: object) -> Sysfs:
    return build_host(root, desktop(iommu=False), iommu=False,
                      description="IOMMU off", **kw)  # type: ignore[arg-type]


def iommufd_scenario(root: str | os.PathLike[str], **kw: object) -> Sysfs:
    return build_host(root, desktop("vfio-pci", "vfio-pci", "vfio-pci"), iommufd=True,
                      description="iommufd present", **kw)  # type: ignore[arg-type]


SCENARIOS = {"host": host_scenario, "viable": viable_scenario,
             "non-viable": nonviable_scenario, "no-iommu": no_iommu_scenario,
             "iommufd": iommufd_scenario}


def fake_host(root: str | os.PathLike[str], scenario: str | None = "viable",
              devices: Iterable[FakeDevice] | None = None, **options: Any) -> None:
    """The ``pci`` fake host of ``vmctl_fake_hosts``: a named scenario, or ``devices``."""
    if devices is not None:
        build_host(root, devices, **options)
        return
    scenario = scenario or "viable"
    if scenario not in SCENARIOS:
        raise ValueError(f"unknown PCI scenario {scenario!r}; one of {sorted(SCENARIOS)}")
    SCENARIOS[scenario](root, **options)


def fake_hosts() -> list[FakeHost]:
    """The ``vmctl_fake_hosts`` hook: the ``pci`` fake host and its scenarios."""
    return [FakeHost("pci", "PCI functions, drivers and IOMMU groups", fake_host,
                     tuple(sorted(SCENARIOS)))]


# -- the fake kernel ------------------------------------------------------------------------------
def load_bus(sysfs: Sysfs) -> PciBus:
    """The driver core's state as the fake tree records it."""
    tables = json.loads(sysfs.read(IDS_FILE, "{}") or "{}")
    drivers = []
    for name in sysfs.listdir(PCI_DRIVERS):
        t = tables.get(name, {})
        drivers.append(PciDriver(name, set(t.get("ids", ())), set(t.get("dynids", ())),
                                 set(t.get("classes", ()))))
    return PciBus(list(read_pci_devices(sysfs).values()), drivers)


def _state(bus: PciBus) -> tuple[dict[str, tuple[str | None, str | None]], set[int],
                                 dict[str, frozenset[str]]]:
    return ({a: (d.driver, d.driver_override) for a, d in bus.devices.items()},
            bus.vfio_groups(), {n: frozenset(d.dynids) for n, d in bus.drivers.items()})


def store_bus(sysfs: Sysfs, before: tuple, bus: PciBus) -> None:
    """Write what changed since ``before`` (from :func:`_state`) back to the tree."""
    devs_before, groups_before, dynids_before = before
    for addr, dev in bus.devices.items():
        old_driver, old_override = devs_before[addr]
        kp = device_kpath(sysfs, addr)
        if dev.driver_override != old_override:
            sysfs.raw_write(f"{kp}/driver_override", dev.driver_override or "(null)")
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


def fake_kernel() -> list[FakeKernelHandler]:
    """The ``vmctl_fake_kernel`` hook: the kernel's reactions to PCI driver writes."""
    h = FakeKernelHandler
    return [
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
    ]
