"""The VFIO device inside the simulator (``vmctl run --backend sim``).

:class:`VfioSimDevice` sets VFIO up the way QEMU does when the machine is created: one
type1 container for every type1 device of the guest (they share its address space), one
more for the iommufd devices, ``SET_IOMMU``, ``ENABLE_IOPF`` when ``iopf = true`` (the
unmerged RFC), and ``MAP_DMA`` of guest RAM at its guest-physical addresses (q35 layout on
x86_64, RAM from 1 GiB on aarch64 ``virt``).  Pinning devices lock all guest memory at that
moment; IOPF devices lock nothing and map pages as the device faults on them.

Once the guest reaches userspace each device runs a seeded DMA workload
(:mod:`vmctl_vfio.model.workload`) on the simulated clock; ``[sim] workload`` picks its
default (``idle``: 1,000 transfers/s, ``default``: 20,000/s, ``busy``: 100,000/s, all on a
hot set of 5 % of RAM).  A reset resets the devices (``VFIO_DEVICE_RESET``) and pauses DMA until the
guest is back; mappings stay, as they do in QEMU.  Deterministic under ``[sim] seed``.

QMP (vendor prefix):

``__org.vmctl_query-vfio``  the live state (same as ``query-device {"plugin": "vfio"}``)
``__org.vmctl_vfio-dma {"device": ID, "pattern"?, "rate"?, "transfer-pages"?}``
    change a device's DMA workload (``sequential`` / ``random`` / ``hotset``; rate ≤ 200,000)
``__org.vmctl_vfio-host-unmap {"offset": BYTES, "size": BYTES}``
    the host takes back guest RAM at that offset (balloon, KSM, migration): the MMU
    notifier unmaps it from IOPF containers; pinned containers keep their pages
``__org.vmctl_VFIO_IOPF`` (event, once per simulated second per IOPF device)
    faults and faults/s of that second, pages mapped and prefaulted, locked pages

and ``info vfio`` through ``human-monitor-command``.
"""

from __future__ import annotations

from collections import deque
from dataclasses import replace
from typing import Any

from vmctl.api import QMPError, SimDevice

from .model import uapi as u
from .model.container import Container, DeviceFd, Group, GroupDevice, VfioHost
from .model.mm import Process
from .model.workload import (GUEST_RAM_VADDR, DmaWorkload, Pattern, WorkloadSpec,
                              q35_ram_layout)
from .settings import VfioDev, guest_memory, vfio_devices

COMMAND = "__org.vmctl_query-vfio"
DMA_COMMAND = "__org.vmctl_vfio-dma"
UNMAP_COMMAND = "__org.vmctl_vfio-host-unmap"
EVENT = "__org.vmctl_VFIO_IOPF"
MAX_RATE = 200_000
RATES = {"idle": 1_000.0, "default": 20_000.0, "busy": 100_000.0, "panic": 20_000.0}


def ram_layout(arch: str, ram: int) -> list[tuple[int, int]] | None:
    """Guest RAM as (IOVA, size) ranges, or None where type1 does not apply (ppc64)."""
    if arch == "x86_64":
        return q35_ram_layout(ram)
    if arch == "aarch64":
        return [(1 << 30, ram)]
    return None


class _Dev:
    """One passed-through device: its fd, workload and per-second accounting."""

    def __init__(self, spec: VfioDev, group: int, fd: DeviceFd, work: DmaWorkload,
                 history: int) -> None:
        self.spec, self.group, self.fd, self.work = spec, group, fd, work
        self.history: deque[dict[str, Any]] = deque(maxlen=history)
        self.faults = self.transfers = self.aborted = 0
        self.sec_faults = self.sec_transfers = 0

    @property
    def name(self) -> str:
        return self.spec.id or self.spec.key


class VfioSimDevice(SimDevice):
    """Every vfio-pci device of the machine, on the simulator's clock and phases."""

    plugin = "vfio"

    def __init__(self, machine: Any, *, max_transfers_per_tick: int = 20_000,
                 history: int = 120) -> None:
        self.machine = machine
        self.specs = [d for d in vfio_devices(machine) if d.address]
        self.ram = guest_memory(machine)
        self.layout = ram_layout(str(machine.arch), self.ram)
        self.max_per_tick = max_transfers_per_tick
        self.history_len = history
        self.devs: list[_Dev] = []
        self.containers: list[Container] = []
        self.dma_active = False
        self.next_sample = 1.0

    # -- set-up -----------------------------------------------------------------------------
    def attach(self, vm: Any) -> None:
        self.vm = vm
        if self.layout is None:
            return
        self.process = Process(None)
        self.process.mmap(GUEST_RAM_VADDR, self.ram)
        groups = [Group(i + 1, [GroupDevice(s.address or "")]) for i, s in enumerate(self.specs)]
        self.host = VfioHost(groups, self.process)
        _, sim_workload = _sim_section(vm)
        base = WorkloadSpec(pattern=Pattern.HOTSET, rate=RATES.get(sim_workload, 20_000.0))
        for backend in ("type1", "iommufd"):
            members = [(s, g) for s, g in zip(self.specs, groups) if s.iommu == backend]
            if not members:
                continue
            c = self.host.open_container()
            for _, g in members:
                self.host.open_group(g.id).set_container(c)
            c.set_iommu(u.VFIO_TYPE1v2_IOMMU)
            if any(s.iopf for s, _ in members):
                c.enable_iopf(members[0][0].prefault)
            vaddr = GUEST_RAM_VADDR
            for iova, size in self.layout:
                c.map_dma(iova, size, vaddr)
                vaddr += size
            self.containers.append(c)
            for s, g in members:
                fd = g.get_device_fd(s.address or "")
                work = DmaWorkload(fd, self.layout, base, seed=vm.rng.randrange(1 << 32),
                                   record=False)
                self.devs.append(_Dev(s, g.id, fd, work, self.history_len))
        self.devs.sort(key=lambda d: d.spec.index)

    def on_phase(self, phase: str) -> None:
        if phase == "reset":
            for d in self.devs:
                d.fd.pci.reset()
            self.dma_active = False
        elif phase == "running":
            self.dma_active = True
        elif phase in ("shutdown", "powerdown"):
            self.dma_active = False

    # -- clock ----------------------------------------------------------------------------
    def tick(self, now: float, dt: float) -> None:
        if not self.devs:
            return
        for d in self.devs if self.dma_active else ():
            s = d.work.step(now, dt, self.max_per_tick)   # drop, rather than stall QMP
            d.faults += s.faults
            d.transfers += s.transfers
            d.aborted += s.aborted
            d.sec_faults += s.faults
            d.sec_transfers += s.transfers
        while round(now, 6) >= self.next_sample:
            self._sample(self.next_sample)
            self.next_sample += 1.0

    def _sample(self, t: float) -> None:
        for d in self.devs:
            dma = d.fd.group.container.dma if d.fd.group.container else None
            point = {"t_s": round(t, 3), "faults": d.sec_faults,
                     "faults_per_s": d.sec_faults, "transfers": d.sec_transfers,
                     "mapped_pages": dma.iommu_mapped_pages if dma else 0,
                     "locked_pages": dma.locked_pages if dma else 0}
            d.history.append(point)
            d.sec_faults = d.sec_transfers = 0
            if d.spec.iopf:
                self.vm.emit(EVENT, {"device": d.name, **point})

    # -- queries --------------------------------------------------------------------------
    def _device_state(self, d: _Dev) -> dict[str, Any]:
        c = d.fd.group.container
        dma = c.dma if c else None
        last = d.history[-1] if d.history else None
        spec = d.work.spec
        out: dict[str, Any] = {
            "key": d.spec.key, "id": d.spec.id, "host": d.spec.address, "group": d.group,
            "driver": d.fd.dev.driver, "iommu": d.spec.iommu,
            "memory": "on-demand (IOPF RFC)" if d.spec.iopf else "pinned",
            "guest_pages": self.ram // u.PAGE_SIZE,
            "mapped_pages": dma.iommu_mapped_pages if dma else 0,
            "locked_pages": dma.locked_pages if dma else 0,
            "faults": d.faults, "fault_rate": last["faults_per_s"] if last else 0,
            "transfers": d.transfers, "aborted": d.aborted,
            "dma": {"pattern": spec.pattern.value, "rate": spec.rate,
                    "transfer_pages": spec.transfer_pages, "active": self.dma_active},
            "resets": d.fd.pci.resets, "history": list(d.history)}
        if c is not None and c.iopf is not None:
            out["iopf"] = c.iopf.counters()
        return out

    def state(self) -> dict[str, Any]:
        if self.layout is None:
            return {"status": "not-modelled", "arch": str(self.machine.arch),
                    "reason": "ppc64 uses the sPAPR TCE IOMMU, not type1",
                    "devices": []}
        locked = self.process.locked_vm * u.PAGE_SIZE
        return {"status": "ok", "guest_bytes": self.ram, "locked_bytes": locked,
                "dropped_transfers": sum(d.work.dropped for d in self.devs),
                "containers": [c.to_json() for c in self.containers],
                "devices": [self._device_state(d) for d in self.devs]}

    def qmp_commands(self) -> dict[str, Any]:
        return {COMMAND: lambda args: self.state(), DMA_COMMAND: self._set_dma,
                UNMAP_COMMAND: self._host_unmap}

    def hmp_info(self) -> dict[str, Any]:
        return {"vfio": self.info_text}

    def _find(self, name: Any) -> _Dev:
        for d in self.devs:
            if name in (d.spec.id, d.spec.key, d.spec.address):
                return d
        known = ", ".join(d.name for d in self.devs) or "none"
        raise QMPError("DeviceNotFound", f"no vfio-pci device {name!r} (devices: {known})")

    def _set_dma(self, args: dict[str, Any]) -> dict[str, Any]:
        d = self._find(args.get("device"))
        spec = d.work.spec
        try:
            if "pattern" in args:
                spec = replace(spec, pattern=Pattern(args["pattern"]))
            if "rate" in args:
                rate = float(args["rate"])
                if not 0 <= rate <= MAX_RATE:
                    raise ValueError(f"rate must be 0..{MAX_RATE}")
                spec = replace(spec, rate=rate)
            if "transfer-pages" in args:
                n = int(args["transfer-pages"])
                if not 1 <= n <= 512:
                    raise ValueError("transfer-pages must be 1..512")
                spec = replace(spec, transfer_pages=n)
        except (ValueError, TypeError) as exc:
            raise QMPError.generic(f"{DMA_COMMAND}: {exc}") from None
        d.work.spec = spec
        return {"device": d.name, "pattern": spec.pattern.value, "rate": spec.rate,
                "transfer_pages": spec.transfer_pages}

    def _host_unmap(self, args: dict[str, Any]) -> dict[str, Any]:
        try:
            offset, size = int(args["offset"]), int(args["size"])
        except (KeyError, ValueError, TypeError):
            raise QMPError.generic(f"{UNMAP_COMMAND}: needs integer offset and size") from None
        if offset < 0 or size <= 0 or offset + size > self.ram or offset % u.PAGE_SIZE:
            raise QMPError.generic(f"{UNMAP_COMMAND}: [offset, offset+size) must be "
                                   "page-aligned and inside guest RAM")
        before = {id(c): (c.iopf.pages_invalidated if c.iopf else 0) for c in self.containers}
        self.process.munmap(GUEST_RAM_VADDR + offset, size)
        self.process.mmap(GUEST_RAM_VADDR + offset, -(-size // u.PAGE_SIZE) * u.PAGE_SIZE)
        return {"invalidated_pages": sum((c.iopf.pages_invalidated if c.iopf else 0)
                                         - before[id(c)] for c in self.containers)}

    def info_text(self) -> str:
        st = self.state()
        if st["status"] != "ok":
            return f"vfio: {st['reason']}\n"
        lines = [f"vfio: {st['guest_bytes'] >> 20} MiB guest RAM, "
                 f"{st['locked_bytes'] >> 20} MiB locked"]
        for d in st["devices"]:
            lines.append(f"  {d['host']} ({d['id'] or d['key']}) group {d['group']} on "
                         f"{d['driver']}, {d['iommu']}, {d['memory']}: mapped "
                         f"{d['mapped_pages'] * u.PAGE_SIZE >> 20} MiB, locked "
                         f"{d['locked_pages'] * u.PAGE_SIZE >> 20} MiB, "
                         f"{d['fault_rate']} faults/s ({d['faults']} total)")
        return "\n".join(lines) + "\n"


def _sim_section(vm: Any) -> tuple[int, str]:
    from vmctl.api import sim_settings

    return sim_settings(vm.machine)


def sim_devices(machine: Any) -> list[SimDevice]:
    """The ``vmctl_sim_devices`` answer: one device for a machine with vfio-pci devices."""
    return [VfioSimDevice(machine)] if any(d.address for d in vfio_devices(machine)) else []
