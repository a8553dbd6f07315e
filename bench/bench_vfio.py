"""VFIO model benchmarks (issue 7): an IOPF DMA sweep and type1 map/unmap throughput.

1. **IOPF sweep** — a 4 GiB q35 guest (RAM at IOVA 0-2 GiB and 4-6 GiB, two mappings) on a
   container with the RFC's ``VFIO_IOMMU_ENABLE_IOPF``; the device reads every one of its
   1,048,576 pages once, one page per DMA, through ``device_access`` (IOMMU lookup, page
   request, 512-page prefault).  Target ≤ 2 s.
2. **map/unmap** — 1,000,000 operations on a type1v2 container: batches of 1,000 4 KiB
   ``MAP_DMA`` (pinning, memlock accounting, overlap and IOVA-window checks) followed by
   their 1,000 ``UNMAP_DMA``.  Target ≤ 3 s.

Each figure is the median of ``--runs`` runs (set-up excluded) and is shown next to a
reference loop timed in the same run: the same number of calls to a Python function
that takes the same arguments and does nothing, i.e. the floor of any per-call model.

    .venv/bin/python bench/bench_vfio.py [--runs 5]
"""

from __future__ import annotations

import argparse
import statistics
import time

from common import report

from vmctl_vfio.model import uapi as u
from vmctl_vfio.model.container import Group, GroupDevice, VfioHost, device_access
from vmctl_vfio.model.dma import DmaSpace
from vmctl_vfio.model.mm import Process
from vmctl_vfio.model.workload import GUEST_RAM_VADDR, q35_ram_layout

GUEST = 4 << 30
PAGES = GUEST // u.PAGE_SIZE
OPS = 1_000_000
BATCH = 1000
SWEEP_TARGET, MAP_TARGET = 2.0, 3.0


def sweep_setup():
    proc = Process(64 << 20)
    proc.mmap(GUEST_RAM_VADDR, GUEST)
    host = VfioHost([Group(1, [GroupDevice("0000:01:00.0")])], proc)
    c = host.open_container()
    g = host.open_group(1)
    g.set_container(c)
    c.set_iommu(u.VFIO_TYPE1v2_IOMMU)
    c.enable_iopf()
    vaddr = GUEST_RAM_VADDR
    ranges = q35_ram_layout(GUEST)
    for iova, size in ranges:
        c.map_dma(iova, size, vaddr)
        vaddr += size
    addrs = [a for iova, size in ranges for a in range(iova, iova + size, u.PAGE_SIZE)]
    return c, g.get_device_fd("0000:01:00.0"), addrs


def time_sweep() -> tuple[float, dict[str, int]]:
    c, fd, addrs = sweep_setup()
    t = time.perf_counter()
    for a in addrs:
        device_access(fd, a, 4096)
    elapsed = time.perf_counter() - t
    counters = c.iopf.counters()
    assert counters["mapped_pages"] == PAGES and counters["locked_pages"] == 0
    return elapsed, counters


def time_map_unmap() -> float:
    proc = Process(None)
    proc.mmap(GUEST_RAM_VADDR, BATCH * u.PAGE_SIZE)
    space = DmaSpace(proc)
    iovas = [(k * 2 * u.PAGE_SIZE, GUEST_RAM_VADDR + k * u.PAGE_SIZE) for k in range(BATCH)]
    dmap, dunmap = space.map, space.unmap
    t = time.perf_counter()
    for _ in range(OPS // (2 * BATCH)):
        for iova, vaddr in iovas:
            dmap(iova, 4096, vaddr)
        for iova, _ in iovas:
            dunmap(iova, 4096)
    elapsed = time.perf_counter() - t
    assert len(space) == 0 and proc.locked_vm == 0
    return elapsed


def _noop(*args: object) -> None:
    return None


def time_reference(calls: int, nargs: int) -> float:
    args = (1,) * nargs
    f = _noop
    t = time.perf_counter()
    for _ in range(calls):
        f(*args)
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    sweeps, maps, ref_s, ref_m = [], [], [], []
    counters: dict[str, int] = {}
    for _ in range(args.runs):
        s, counters = time_sweep()
        sweeps.append(s)
        ref_s.append(time_reference(PAGES, 3))
        maps.append(time_map_unmap())
        ref_m.append(time_reference(OPS, 3))
    sweep, mapt = statistics.median(sweeps), statistics.median(maps)
    rs, rm = statistics.median(ref_s), statistics.median(ref_m)
    rows = [("benchmark", "median", "reference (same run)", "ratio / target"),
            (f"IOPF sweep, 4 GiB guest ({PAGES:,} page DMAs)", f"{sweep:.2f} s",
             f"no-op call x{PAGES:,} {rs:.3f} s",
             f"{sweep / rs:.1f}x ref; {'OK' if sweep <= SWEEP_TARGET else 'OVER'} "
             f"(target <= {SWEEP_TARGET:.0f} s)"),
            (f"type1 map/unmap ({OPS:,} ops)", f"{mapt:.2f} s",
             f"no-op call x{OPS:,} {rm:.3f} s",
             f"{mapt / rm:.1f}x ref; {'OK' if mapt <= MAP_TARGET else 'OVER'} "
             f"(target <= {MAP_TARGET:.0f} s)")]
    report(rows)
    print(f"\nsweep: {counters['faults']:,} page requests, {counters['pages_prefaulted']:,} "
          f"pages prefaulted, {counters['mapped_pages'] * u.PAGE_SIZE >> 20} MiB mapped, "
          f"{counters['locked_pages']} pages locked (pinning would lock {GUEST >> 20} MiB); "
          f"{args.runs} runs")


if __name__ == "__main__":
    main()
