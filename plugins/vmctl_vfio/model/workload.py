"""A seeded device DMA workload, and the IOPF ramp-up it shows.

The RFC's cover letter warns that on-demand mapping "may lead to a slow ramp up of
performance": every first touch of a page range is a page request the host must service.
:class:`DmaWorkload` drives a device's DMA over guest memory on a simulated clock —
``sequential`` (a streaming sweep), ``random`` (uniform pages) or ``hotset`` (most
transfers in a small seeded window) — and records, per step, page requests per second
next to the memory the IOMMU maps and the memory pinning would have locked.

Randomness comes only from ``random.Random(seed)`` and time only from the ``now``/``dt``
arguments, so a run is reproducible from its seed.
"""

from __future__ import annotations

import enum
import random
from bisect import bisect_right
from dataclasses import asdict, dataclass, field

from . import uapi as u
from .container import DeviceFd, Group, GroupDevice, VfioHost, device_access
from .mm import Process

GUEST_RAM_VADDR = 0x7F0000000000      #: where the simulated QEMU process maps guest RAM


def q35_ram_layout(ram: int) -> list[tuple[int, int]]:
    """Guest-physical RAM ranges of a QEMU q35 machine, which is also the IOVA layout VFIO
    maps: up to 2 GiB below 4 GiB when RAM reaches 2.75 GiB (else all of it low), the rest
    from 4 GiB up — clear of the interrupt window at 0xfee00000."""
    low = ram if ram < 0xB0000000 else 0x80000000
    ranges = [(0, low)]
    if ram > low:
        ranges.append((1 << 32, ram - low))
    return ranges


class Pattern(str, enum.Enum):
    SEQUENTIAL = "sequential"
    RANDOM = "random"
    HOTSET = "hotset"


@dataclass(frozen=True)
class WorkloadSpec:
    """How the device touches memory.

    ``rate``: DMA transfers per simulated second; ``transfer_pages``: pages per transfer;
    ``hot_fraction`` of the memory receives ``hot_share`` of the transfers (``hotset``).
    """

    pattern: Pattern = Pattern.SEQUENTIAL
    rate: float = 100_000.0
    transfer_pages: int = 1
    hot_fraction: float = 0.05
    hot_share: float = 0.95
    write: bool = False


@dataclass(frozen=True)
class Sample:
    """One step of the workload."""

    t: float
    transfers: int
    faults: int
    faults_per_s: float
    mapped_pages: int
    locked_pages: int
    aborted: int


class DmaWorkload:
    """A device's DMA over guest memory through its device fd.

    ``ranges`` are the IOVA ranges of guest RAM (:func:`q35_ram_layout`); the patterns
    address them as one run of pages, in order.  A transfer never straddles two ranges.
    """

    def __init__(self, fd: DeviceFd, ranges: list[tuple[int, int]],
                 spec: WorkloadSpec | None = None, seed: int = 1, record: bool = True) -> None:
        self.fd = fd
        self.spec = spec or WorkloadSpec()
        self.page_size = u.PAGE_SIZE
        self._firsts: list[int] = []          # first guest page index of each range
        self._iovas: list[int] = []
        self._ends: list[int] = []
        total = 0
        for iova, size in ranges:
            self._firsts.append(total)
            self._iovas.append(iova)
            total += size // self.page_size
            self._ends.append(total)
        self.pages = total
        if self.pages < self.spec.transfer_pages:
            raise ValueError("memory smaller than one transfer")
        self.rng = random.Random(seed)
        self.cursor = 0
        self.carry = 0.0
        hot = max(self.spec.transfer_pages, int(self.pages * self.spec.hot_fraction))
        self.hot_pages = min(hot, self.pages)
        self.hot_start = self.rng.randrange(0, self.pages - self.hot_pages + 1)
        self.samples: list[Sample] = []       #: every step's sample when ``record``
        self.record = record
        self.dropped = 0

    def _next_page(self) -> int:
        span = self.spec.transfer_pages
        pattern = self.spec.pattern
        if pattern is Pattern.SEQUENTIAL:
            page = self.cursor
            self.cursor = (self.cursor + span) % (self.pages - span + 1)
            return page
        rng = self.rng
        if pattern is Pattern.HOTSET and rng.random() < self.spec.hot_share:
            return self.hot_start + rng.randrange(0, self.hot_pages - span + 1)
        return rng.randrange(0, self.pages - span + 1)

    def _iova(self, page: int) -> int:
        i = bisect_right(self._firsts, page) - 1
        span = self.spec.transfer_pages
        if page + span > self._ends[i]:
            page = self._ends[i] - span           # keep the transfer inside its range
        return self._iovas[i] + (page - self._firsts[i]) * self.page_size

    def step(self, now: float, dt: float, max_transfers: int | None = None) -> Sample:
        """Run the transfers due in ``dt`` simulated seconds ending at ``now``.

        At most ``max_transfers`` run; the rest are dropped and counted in
        :attr:`dropped` (a simulator tick must stay short)."""
        due = self.spec.rate * dt + self.carry
        n = int(due)
        self.carry = due - n
        if max_transfers is not None and n > max_transfers:
            self.dropped += n - max_transfers
            n = max_transfers
        size = self.spec.transfer_pages * self.page_size
        faults = aborted = 0
        for _ in range(n):
            res = device_access(self.fd, self._iova(self._next_page()), size,
                                self.spec.write)
            faults += res.faults
            aborted += res.aborted
        dma = self.fd.group.container.dma if self.fd.group.container else None
        sample = Sample(t=now, transfers=n, faults=faults,
                        faults_per_s=faults / dt if dt > 0 else 0.0,
                        mapped_pages=dma.iommu_mapped_pages if dma else 0,
                        locked_pages=dma.locked_pages if dma else 0, aborted=aborted)
        if self.record:
            self.samples.append(sample)
        return sample


@dataclass
class RampUp:
    """Result of :func:`rampup`: the samples and what pinning would have cost."""

    guest_bytes: int
    spec: WorkloadSpec
    seed: int
    prefault: int
    memlock_limit: int | None
    samples: list[Sample] = field(default_factory=list)

    @property
    def pinned_bytes_without_iopf(self) -> int:
        """Locked memory a type1 container without IOPF charges: all of guest RAM."""
        return self.guest_bytes

    @property
    def pinning_fits_memlock(self) -> bool:
        return self.memlock_limit is None or self.guest_bytes <= self.memlock_limit

    def to_json(self) -> dict[str, object]:
        spec = asdict(self.spec)
        spec["pattern"] = self.spec.pattern.value
        return {"guest_bytes": self.guest_bytes, "seed": self.seed, "prefault": self.prefault,
                "spec": spec, "memlock_limit": self.memlock_limit,
                "pinned_bytes_without_iopf": self.pinned_bytes_without_iopf,
                "pinning_fits_memlock": self.pinning_fits_memlock,
                "samples": [asdict(s) for s in self.samples]}

    def table(self) -> str:
        """The ramp-up as text: faults/s falling while mapped memory grows."""
        mib = 1 << 20
        lines = [f"{'t(s)':>6} {'faults/s':>10} {'mapped MiB':>11} {'locked MiB':>11} "
                 f"{'pinning MiB':>12}"]
        for s in self.samples:
            lines.append(f"{s.t:6.2f} {s.faults_per_s:10.0f} "
                         f"{s.mapped_pages * u.PAGE_SIZE / mib:11.1f} "
                         f"{s.locked_pages * u.PAGE_SIZE / mib:11.1f} "
                         f"{self.guest_bytes / mib:12.1f}")
        return "\n".join(lines)


def rampup(guest_bytes: int, spec: WorkloadSpec | None = None, *, seed: int = 1,
           seconds: float = 5.0, dt: float = 0.5, prefault: int = u.IOPF_PREMAP_LEN,
           memlock_limit: int | None = 64 << 20) -> RampUp:
    """Set up a one-device IOPF container over ``guest_bytes`` of guest RAM and run the
    workload for ``seconds`` in steps of ``dt`` (the sim-clock way the simulator does)."""
    spec = spec or WorkloadSpec()
    process = Process(memlock_limit)
    process.mmap(GUEST_RAM_VADDR, guest_bytes)
    host = VfioHost([Group(1, [GroupDevice("0000:01:00.0")])], process)
    container = host.open_container()
    group = host.open_group(1)
    group.set_container(container)
    container.set_iommu(u.VFIO_TYPE1v2_IOMMU)
    container.enable_iopf(prefault)
    ranges = q35_ram_layout(guest_bytes)
    vaddr = GUEST_RAM_VADDR
    for iova, size in ranges:
        container.map_dma(iova, size, vaddr)
        vaddr += size
    fd = group.get_device_fd("0000:01:00.0")
    work = DmaWorkload(fd, ranges, spec, seed)
    steps = max(1, round(seconds / dt))
    for k in range(1, steps + 1):
        work.step(k * dt, dt)
    return RampUp(guest_bytes, spec, seed, prefault, memlock_limit, work.samples)
