"""What the host offers for VFIO, read under a sysfs root (semantics.md §2.2, §2.10), and
the ``vmctl host check`` lines (:func:`host_check`).

Everything is read through :class:`vmctl.host.sysfs.Sysfs` with kernel paths, so the same
code reads a real host (root ``/``) and a fake tree built by :mod:`vmctl_vfio.fakesys`:

* PCI functions: ``/sys/bus/pci/devices/ADDR/{vendor,device,class,driver_override}``, the
  ``driver`` and ``iommu_group`` symlinks;
* IOMMU groups: ``/sys/kernel/iommu_groups/N/devices/``; IOMMU units in ``/sys/class/iommu``;
* VFIO nodes: ``/dev/vfio/vfio``, ``/dev/vfio/N``; iommufd: ``/dev/iommu``;
* ``vfio_iommu_type1`` parameters in ``/sys/module/vfio_iommu_type1/parameters``;
* the memlock limit and CAP_IPC_LOCK of *this* process, from ``/proc/self/limits`` and
  ``/proc/self/status`` (the limit QEMU inherits when vmctl starts it).

A PCI function is read into :class:`~vmctl_vfio.model.pcibus.PciDevice`, the record the
fake kernel's driver-core model uses too.  A group is **viable** when every device in it is
bound to a VFIO driver, ``pci-stub``, ``pcieport`` (bridges, Linux 5.19+) or nothing; the
others are its *blockers*.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from vmctl.api import HostFact, Sysfs

from .model.pcibus import VFIO_PCI, PciDevice, is_vfio_driver

PCI_DEVICES = "/sys/bus/pci/devices"
PCI_DRIVERS = "/sys/bus/pci/drivers"
IOMMU_GROUPS = "/sys/kernel/iommu_groups"
TYPE1_PARAMS = "/sys/module/vfio_iommu_type1/parameters"

_ADDR = re.compile(r"^(?:([0-9a-fA-F]{4}):)?([0-9a-fA-F]{2}):([01][0-9a-fA-F])\.([0-7])$")

_UNSET = object()

MiB = 1 << 20


def parse_pci_address(text: str) -> str:
    """Canonical ``dddd:bb:dd.f`` (lower case) for ``text``; ``bb:dd.f`` gets domain 0000.

    Raises ValueError naming the expected form.
    """
    m = _ADDR.match(text.strip())
    if not m:
        raise ValueError(f"{text!r} is not a PCI address: expected DDDD:BB:DD.F, "
                         "e.g. 0000:03:00.0 (device 00-1f, function 0-7)")
    dom, bus, dev, fn = m.groups()
    return f"{(dom or '0000').lower()}:{bus.lower()}:{dev.lower()}.{fn}"


@dataclass(frozen=True)
class Viability:
    """Whether group ``group`` can be given to a VM, and what stands in the way."""

    group: int
    devices: tuple[PciDevice, ...]
    blockers: tuple[PciDevice, ...]
    vfio_node: bool

    @property
    def viable(self) -> bool:
        return not self.blockers


@dataclass(frozen=True)
class HostVfio:
    """A snapshot of the host's VFIO readiness."""

    devices: dict[str, PciDevice]
    groups: dict[int, tuple[str, ...]]
    iommu_units: tuple[str, ...]
    drivers: tuple[str, ...]
    vfio_container: bool
    vfio_nodes: frozenset[int]
    iommufd: bool
    memlock_limit: int | None          #: soft RLIMIT_MEMLOCK in bytes; None = unlimited
    memlock_known: bool
    cap_ipc_lock: bool
    kernel: str
    allow_unsafe_interrupts: bool | None = None
    dma_entry_limit: int | None = None
    group_types: dict[int, str] = field(default_factory=dict)

    @property
    def iommu(self) -> bool:
        """An IOMMU is on: units registered and groups populated."""
        return bool(self.iommu_units or self.groups)

    def viability(self, group: int) -> Viability:
        devs = tuple(self.devices[a] for a in self.groups.get(group, ()) if a in self.devices)
        return Viability(group, devs, tuple(d for d in devs if not d.dma_safe),
                         group in self.vfio_nodes)

    def group_of(self, address: str) -> int | None:
        dev = self.devices.get(address)
        return dev.iommu_group if dev else None

    def vfio_bound(self, address: str) -> bool:
        dev = self.devices.get(address)
        return bool(dev and is_vfio_driver(dev.driver))


# -- readers -----------------------------------------------------------------------------------
def _hex(sysfs: Sysfs, path: str) -> int:
    try:
        return int(sysfs.read(path, "0x0"), 16)
    except ValueError:
        return 0


def read_pci_device(sysfs: Sysfs, address: str) -> PciDevice | None:
    """The device at ``/sys/bus/pci/devices/ADDRESS``, or None when absent."""
    base = f"{PCI_DEVICES}/{address}"
    if not sysfs.is_dir(base):
        return None
    override = sysfs.read(f"{base}/driver_override", "(null)")
    group = sysfs.readlink_name(f"{base}/iommu_group")
    return PciDevice(address=address, vendor=_hex(sysfs, f"{base}/vendor"),
                     device=_hex(sysfs, f"{base}/device"),
                     class_code=_hex(sysfs, f"{base}/class"),
                     driver=sysfs.readlink_name(f"{base}/driver"),
                     driver_override=None if override in ("(null)", "") else override,
                     iommu_group=int(group) if group is not None and group.isdigit() else None)


def read_pci_devices(sysfs: Sysfs) -> dict[str, PciDevice]:
    out = {}
    for addr in sysfs.listdir(PCI_DEVICES):
        dev = read_pci_device(sysfs, addr)
        if dev is not None:
            out[addr] = dev
    return out


def read_groups(sysfs: Sysfs) -> dict[int, tuple[str, ...]]:
    """``{group: (device addresses...)}`` from ``/sys/kernel/iommu_groups``."""
    groups = {}
    for name in sysfs.listdir(IOMMU_GROUPS):
        if name.isdigit():
            groups[int(name)] = tuple(sysfs.listdir(f"{IOMMU_GROUPS}/{name}/devices"))
    return dict(sorted(groups.items()))


def read_memlock(sysfs: Sysfs) -> tuple[int | None, bool]:
    """Soft RLIMIT_MEMLOCK from ``/proc/self/limits``: ``(bytes or None=unlimited, known)``."""
    try:
        text = sysfs.read("/proc/self/limits")
    except (FileNotFoundError, NotADirectoryError):
        return None, False
    for line in text.splitlines():
        if line.startswith("Max locked memory"):
            soft = line[len("Max locked memory"):].split()[0]
            return (None if soft == "unlimited" else int(soft)), True
    return None, False


def read_cap_ipc_lock(sysfs: Sysfs) -> bool:
    """CAP_IPC_LOCK (bit 14) in the effective set of ``/proc/self/status``."""
    text = sysfs.read("/proc/self/status", "")
    for line in text.splitlines():
        if line.startswith("CapEff:"):
            return bool(int(line.split()[1], 16) >> 14 & 1)
    return False


def _param(sysfs: Sysfs, name: str) -> str | None:
    path = f"{TYPE1_PARAMS}/{name}"
    return sysfs.read(path) if sysfs.exists(path) else None


def read_host(sysfs: Sysfs, *, memlock_limit: object = _UNSET,
              cap_ipc_lock: bool | None = None) -> HostVfio:
    """Read the host.  ``memlock_limit`` (bytes, or None for unlimited) and
    ``cap_ipc_lock`` override what ``/proc/self`` says, for tests and what-if checks."""
    if memlock_limit is _UNSET:
        limit, known = read_memlock(sysfs)
    else:
        limit, known = memlock_limit, True          # type: ignore[assignment]
    groups = read_groups(sysfs)
    unsafe = _param(sysfs, "allow_unsafe_interrupts")
    entries = _param(sysfs, "dma_entry_limit")
    return HostVfio(
        devices=read_pci_devices(sysfs), groups=groups,
        iommu_units=tuple(sysfs.listdir("/sys/class/iommu")),
        drivers=tuple(sysfs.listdir(PCI_DRIVERS)),
        vfio_container=sysfs.exists("/dev/vfio/vfio"),
        vfio_nodes=frozenset(int(n) for n in sysfs.listdir("/dev/vfio") if n.isdigit()),
        iommufd=sysfs.exists("/dev/iommu"),
        memlock_limit=limit, memlock_known=known,
        cap_ipc_lock=read_cap_ipc_lock(sysfs) if cap_ipc_lock is None else cap_ipc_lock,
        kernel=sysfs.read("/proc/sys/kernel/osrelease", ""),
        allow_unsafe_interrupts=None if unsafe is None else unsafe in ("Y", "1"),
        dma_entry_limit=int(entries) if entries and entries.isdigit() else None,
        group_types={g: sysfs.read(f"{IOMMU_GROUPS}/{g}/type", "") for g in groups})


def device_kpath(sysfs: Sysfs, address: str) -> str:
    """The device's real kernel path (``/sys/devices/pci0000:00/…/ADDR``)."""
    real = sysfs.path(f"{PCI_DEVICES}/{address}").resolve()
    return "/" + real.relative_to(sysfs.root).as_posix()


# -- vmctl host check ------------------------------------------------------------------------
def host_check(sysfs: Sysfs) -> list[HostFact]:
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
