"""Pre-launch checks of ``vfio-pci`` devices (semantics.md §2.10), alone and across machines.

=============================  ========  =====================================================
code                           severity  when
=============================  ========  =====================================================
``vfio-bad-address``           error     ``host`` is not ``DDDD:BB:DD.F``
``vfio-duplicate-device``      error     the same host device twice in one machine
``vfio-iopf-needs-experimental`` error   ``iopf = true`` without ``experimental = true``
``vfio-iopf-type1-only``       error     ``iopf = true`` with ``iommu = "iommufd"``
``vfio-iopf-unmerged``         error     ``iopf = true`` for the qemu backend
``vfio-iopf-mixed``            error     type1 devices of one machine disagree on ``iopf``
``vfio-iopf-simulated``        note      ``iopf = true`` in the simulator: the RFC, not Linux
``vfio-prefault-unused``       warning   ``prefault`` set without ``iopf``
``vfio-no-iommu``              error     (``--host``) the IOMMU is off
``vfio-no-device``             error     (``--host``) no such PCI device
``vfio-no-group``              error     (``--host``) the device has no IOMMU group
``vfio-pci-missing``           error     (``--host``) the vfio-pci driver is not loaded
``vfio-not-bound``             error     (``--host``) the device is not on vfio-pci yet
``vfio-group-not-viable``      error     (``--host``) a companion in the group is on a host driver
``vfio-memlock``               error     (``--host``) RLIMIT_MEMLOCK below the memory VFIO pins
``vfio-memlock-unknown``       note      (``--host``) the limit could not be read
``vfio-no-iommufd``            error     (``--host``) ``iommu = "iommufd"`` and no ``/dev/iommu``
``vfio-qemu-no-iommufd``       error     (``--backend qemu``) QEMU has no ``iommufd`` object
``vfio-group-shared``          error     (fleet) one IOMMU group (or device) in two machines
=============================  ========  =====================================================
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .host import HostVfio, read_host
from .model.pcibus import VFIO_PCI, is_vfio_driver
from .settings import VfioDev, guest_memory, vfio_devices

if TYPE_CHECKING:  # pragma: no cover
    from vmctl.api import Machine
    from vmctl.api import Diagnostic, ValidationContext

MiB = 1 << 20

IOPF_UNMERGED = (
    "iopf = true asks for the VFIO_IOMMU_ENABLE_IOPF ioctl of the type1 IOPF RFC series "
    "(Shenming Lu, 2021), which was never merged: no released kernel or QEMU has it")
IOPF_REAL_PATH = (
    "the merged path is the iommufd fault queue (IOMMU_FAULT_QUEUE_ALLOC, Linux 6.11), where "
    "faults go to the VMM's vIOMMU instead of being served by pinning; QEMU does not forward "
    "them yet. Set iopf = false (pin guest memory) or run with --backend sim to study the RFC")


def host_of(ctx: ValidationContext | None) -> HostVfio | None:
    """The host as ``ctx.sysfs`` shows it, read once per validation run."""
    if ctx is None or ctx.sysfs is None:
        return None
    sysfs = ctx.sysfs
    return ctx.memo("vfio.host", lambda: read_host(sysfs))


def validate_machine(machine: Machine, ctx: ValidationContext) -> list[Diagnostic]:
    devs = vfio_devices(machine)
    if not devs:
        return []
    out = _alone(machine, devs, ctx.backend)
    host = host_of(ctx)
    if host is not None:
        out += _against_host(machine, devs, host)
    caps = ctx.qemu_caps(machine.arch) if hasattr(ctx, "qemu_caps") else None
    if caps is not None and any(d.iommu == "iommufd" for d in devs):
        has = qemu_has_iommufd(caps)
        if has is False:
            d = next(d for d in devs if d.iommu == "iommufd")
            version = getattr(caps, "version", "") or "installed"
            out.append(machine.error(
                "vfio-qemu-no-iommufd", f"{d.key}.iommu",
                f"QEMU {version} has no 'iommufd' object type: the iommufd backend "
                "(-object iommufd) needs QEMU 8.2 or newer",
                'use iommu = "type1" (the VFIO container) with this QEMU'))
    return out


def qemu_has_iommufd(caps: Any) -> bool | None:
    """Whether the probed QEMU offers ``-object iommufd`` (None: the probe cannot tell)."""
    for attr in ("objects", "object_types", "qom_types"):
        found = getattr(caps, attr, None)
        if found is not None:
            return "iommufd" in found
    has = getattr(caps, "has_object", None)
    if callable(has):
        return bool(has("iommufd"))
    ver = getattr(caps, "version_tuple", None)
    if isinstance(ver, tuple) and ver:
        return tuple(ver[:2]) >= (8, 2)
    return None


def _alone(machine: Machine, devs: list[VfioDev], backend: str) -> list[Diagnostic]:
    out: list[Diagnostic] = []
    seen: dict[str, VfioDev] = {}
    for d in devs:
        if d.address is None:
            out.append(machine.error(
                "vfio-bad-address", f"{d.key}.host",
                f"host = {d.host!r} is not a PCI address",
                "write domain:bus:device.function in hex, e.g. host = \"0000:03:00.0\" "
                "(`lspci -D` lists them)"))
        elif d.address in seen:
            out.append(machine.error(
                "vfio-duplicate-device", f"{d.key}.host",
                f"{d.address} is already passed through by {seen[d.address].key}",
                "a host device can be given to a guest once; remove one entry"))
        else:
            seen[d.address] = d
        if d.iopf:
            out += _iopf(machine, d, backend)
        elif not machine.is_default(f"{d.key}.prefault"):
            out.append(machine.warning(
                "vfio-prefault-unused", f"{d.key}.prefault",
                "prefault only matters with iopf = true: a pinned container maps all guest "
                "memory up front", "remove prefault, or set iopf = true (simulator only)"))
    type1 = [d for d in devs if d.iommu == "type1"]
    if any(d.iopf for d in type1) and not all(d.iopf for d in type1):
        d = next(d for d in type1 if d.iopf != type1[0].iopf)
        out.append(machine.error(
            "vfio-iopf-mixed", f"{d.key}.iopf",
            f"{d.key} has iopf = {str(d.iopf).lower()} but {type1[0].key} has "
            f"iopf = {str(type1[0].iopf).lower()}: type1 devices of one guest share one VFIO "
            "container, and IOPF is a property of the container",
            "set the same iopf on every type1 device of the machine"))
    return out


def _iopf(machine: Machine, d: VfioDev, backend: str) -> list[Diagnostic]:
    if not d.experimental:
        return [machine.error(
            "vfio-iopf-needs-experimental", f"{d.key}.iopf",
            "iopf = true models the unmerged VFIO_IOMMU_ENABLE_IOPF RFC and needs "
            "experimental = true on the same device",
            f"add experimental = true to {d.key} to run the RFC in the simulator")]
    if d.iommu == "iommufd":
        return [machine.error(
            "vfio-iopf-type1-only", f"{d.key}.iopf",
            "the IOPF RFC extends the type1 container; with iommufd, I/O page faults go to "
            "the iommufd fault queue (Linux 6.11) and the guest's vIOMMU",
            'set iommu = "type1" to study the RFC in the simulator')]
    if backend == "qemu":
        return [machine.error("vfio-iopf-unmerged", f"{d.key}.iopf", IOPF_UNMERGED,
                              IOPF_REAL_PATH)]
    return [machine.note(
        "vfio-iopf-simulated", f"{d.key}.iopf",
        f"the simulator maps guest memory on I/O page faults, {d.prefault} page"
        f"{'s' if d.prefault != 1 else ''} per fault, as the unmerged RFC would; "
        "Linux itself never does this",
        "expect a ramp-up: faults per second fall as the working set gets mapped")]


def _against_host(machine: Machine, devs: list[VfioDev], host: HostVfio) -> list[Diagnostic]:
    out: list[Diagnostic] = []
    mine = {d.address for d in devs if d.address}
    if not host.iommu:
        d = devs[0]
        return [machine.error(
            "vfio-no-iommu", f"{d.key}.host",
            "the host's IOMMU is off (no /sys/kernel/iommu_groups): VFIO cannot isolate "
            "the device", "enable VT-d/AMD-Vi in the firmware and boot with intel_iommu=on "
            "(or amd_iommu=on) iommu=pt")]
    if VFIO_PCI not in host.drivers:
        out.append(machine.error(
            "vfio-pci-missing", f"{devs[0].key}.kind",
            "the vfio-pci driver is not loaded (/sys/bus/pci/drivers/vfio-pci is missing)",
            "modprobe vfio-pci"))
    groups_done: set[int] = set()
    for d in devs:
        if d.address is None:
            continue
        dev = host.devices.get(d.address)
        if dev is None:
            near = ", ".join(a for a in sorted(host.devices) if a[:7] == d.address[:7]) \
                or ", ".join(sorted(host.devices)[:6])
            out.append(machine.error(
                "vfio-no-device", f"{d.key}.host", f"the host has no PCI device {d.address}",
                f"devices present: {near}" if near else "check the address with `lspci -D`"))
            continue
        if dev.iommu_group is None:
            out.append(machine.error(
                "vfio-no-group", f"{d.key}.host",
                f"{d.address} has no IOMMU group (no iommu_group link)",
                "devices without an IOMMU group cannot be assigned"))
            continue
        if not is_vfio_driver(dev.driver):
            out.append(machine.error(
                "vfio-not-bound", f"{d.key}.host",
                f"{dev.describe()}, not vfio-pci",
                f"`vmctl host apply {machine.file} --apply` binds it (journaled; "
                "`vmctl host undo` restores the driver)"))
        if dev.iommu_group in groups_done:
            continue
        groups_done.add(dev.iommu_group)
        v = host.viability(dev.iommu_group)
        companions = [b for b in v.blockers if b.address not in mine]
        if companions:
            listed = "; ".join(b.describe() for b in companions)
            out.append(machine.error(
                "vfio-group-not-viable", f"{d.key}.host",
                f"IOMMU group {v.group} of {d.address} is not viable: {listed}",
                "every device of the group must be on vfio-pci, pci-stub or no driver: "
                f"`vmctl host apply {machine.file} --apply` moves them to vfio-pci, or pass "
                "them to this guest as well"))
    out += _memlock(machine, devs, host)
    if any(d.iommu == "iommufd" for d in devs) and not host.iommufd:
        d = next(d for d in devs if d.iommu == "iommufd")
        out.append(machine.error(
            "vfio-no-iommufd", f"{d.key}.iommu", "iommu = \"iommufd\" needs /dev/iommu, "
            f"which this host (kernel {host.kernel or 'unknown'}) does not have",
            "modprobe iommufd (Linux 6.2+; VFIO device cdevs need 6.6+), or use "
            'iommu = "type1"'))
    return out


def _memlock(machine: Machine, devs: list[VfioDev], host: HostVfio) -> list[Diagnostic]:
    pinning = [d for d in devs if not d.iopf]
    if not pinning or host.cap_ipc_lock:
        return []
    key = f"{pinning[0].key}.host"
    if not host.memlock_known:
        return [machine.note("vfio-memlock-unknown", key,
                             "could not read RLIMIT_MEMLOCK (/proc/self/limits)",
                             "VFIO pins all guest memory: the limit must cover it")]
    need = guest_memory(machine)
    if host.memlock_limit is None or host.memlock_limit >= need:
        return []
    return [machine.error(
        "vfio-memlock", key,
        f"RLIMIT_MEMLOCK is {host.memlock_limit // MiB} MiB but VFIO pins all "
        f"{need // MiB} MiB of guest memory (machine.memory) when the device is attached; "
        "MAP_DMA would fail with ENOMEM",
        f"raise the limit to at least {need} bytes: `ulimit -l {need // 1024}` (KiB) in the "
        f"shell that starts the VM, or LimitMEMLOCK={need} in its systemd unit (libvirt "
        "allows about guest memory + 1 GiB)")]


def validate_fleet(machines: Sequence[Machine], ctx: ValidationContext) -> list[Diagnostic]:
    """One IOMMU group (or, without ``--host``, one device) per machine, in linear time."""
    host = host_of(ctx)
    owner: dict[tuple[str, object], tuple[Machine, VfioDev]] = {}
    out: list[Diagnostic] = []
    for m in machines:
        for d in vfio_devices(m):
            if d.address is None:
                continue
            group = host.group_of(d.address) if host is not None else None
            res: tuple[str, object] = ("group", group) if group is not None \
                else ("device", d.address)
            first = owner.setdefault(res, (m, d))
            if first[0] is m:
                continue
            om, od = first
            src = om.source(f"{od.key}.host")
            what = f"IOMMU group {group}" if group is not None else f"device {d.address}"
            out.append(m.error(
                "vfio-group-shared", f"{d.key}.host",
                f"{what} ({d.address}) is also passed through by machine {om.name!r} "
                f"({src.file}:{src.line}, {od.key}.host = {od.host!r})",
                "an IOMMU group belongs to one VM at a time: give every device of the group "
                "to one machine"))
    return out
