"""Type1 MAP/UNMAP rules and pinned-page accounting (§2.4, §2.11 scenarios 3-6)."""

from __future__ import annotations

import errno

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vmctl.model import ModelError
from vmctl_vfio.model import uapi as u
from vmctl_vfio.model.container import Group, GroupDevice, VfioHost
from vmctl_vfio.model.dma import DmaSpace
from vmctl_vfio.model.mm import Process, VmaKind

from .conftest import RAM, GiB, MiB, Session

RW = u.VFIO_DMA_MAP_FLAG_READ | u.VFIO_DMA_MAP_FLAG_WRITE
NEAR_TOP = (1 << 64) - 0x1000


def raises(code: int):
    return pytest.raises(ModelError, match=f"^{errno.errorcode[code]}:")


def test_scenario3_map_rules(session: Session) -> None:
    c = session.container
    c.map_dma(0, 2 * MiB, RAM, RW)
    with raises(errno.EEXIST):
        c.map_dma(0, 2 * MiB, RAM, RW)
    with raises(errno.EEXIST):
        c.map_dma(MiB, 2 * MiB, RAM + 4 * MiB, RW)      # partial overlap too
    with raises(errno.EINVAL):
        c.map_dma(4 * MiB, 2 * MiB, RAM, 0)              # neither READ nor WRITE
    with raises(errno.EINVAL):
        c.map_dma(4 * MiB, 0, RAM, RW)
    with raises(errno.EINVAL):
        c.map_dma(0x1000 + 4 * MiB, 0x800, RAM, RW)      # not page-aligned
    with raises(errno.EINVAL):
        c.map_dma(4 * MiB, 4096, RAM, RW | (1 << 7))     # unknown flag


@pytest.mark.parametrize("wrap_errno", [errno.EINVAL, errno.EOVERFLOW])
def test_scenario3_wrap_errno_depends_on_kernel(wrap_errno: int) -> None:
    proc = Process(None)
    proc.mmap(RAM, 16 * MiB)
    space = DmaSpace(proc, wrap_errno=wrap_errno)
    with raises(wrap_errno):
        space.map(NEAR_TOP, 0x2000, RAM, RW)
    with raises(wrap_errno):
        space.unmap(NEAR_TOP, 0x2000)


def test_overflow_kernels_check_wrap_before_flags() -> None:
    proc = Process(None)
    old, new = DmaSpace(proc, wrap_errno=errno.EINVAL), DmaSpace(proc)
    with raises(errno.EINVAL):
        old.map(NEAR_TOP, 0x2000, RAM, 0)                # flags checked first
    with raises(errno.EOVERFLOW):
        new.map(NEAR_TOP, 0x2000, RAM, 0)                # overflow checked first


def test_msi_window_is_not_mappable(session: Session) -> None:
    with raises(errno.EINVAL):
        session.container.map_dma(0xFEE00000, 4096, RAM, RW)
    info = session.container.get_info()
    assert {"start": 0xFEF00000, "end": (1 << 48) - 1} in info["iova_ranges"]


def test_scenario4_memlock(session: Session) -> None:
    c, proc = session.container, session.host.process       # limit 64 MiB
    with raises(errno.ENOMEM):
        c.map_dma(0, 128 * MiB, RAM, RW)
    assert len(c.dma) == 0 and proc.locked_vm == 0            # nothing left mapped
    c.map_dma(0, 32 * MiB, RAM, RW)
    assert proc.locked_vm * u.PAGE_SIZE == 32 * MiB
    c.map_dma(32 * MiB, 32 * MiB, RAM + 32 * MiB, RW)         # exactly at the limit: ok
    with raises(errno.ENOMEM):
        c.map_dma(64 * MiB, 4096, RAM + 64 * MiB, RW)


def test_cap_ipc_lock_lifts_the_limit_but_still_accounts() -> None:
    proc = Process(64 * MiB, cap_ipc_lock=True)
    proc.mmap(RAM, GiB)
    space = DmaSpace(proc)
    space.map(0, 128 * MiB, RAM, RW)
    assert proc.locked_vm * u.PAGE_SIZE == 128 * MiB


def test_already_locked_memory_counts_toward_the_limit() -> None:
    proc = Process(64 * MiB, locked_bytes=40 * MiB)
    proc.mmap(RAM, GiB)
    with raises(errno.ENOMEM):
        DmaSpace(proc).map(0, 32 * MiB, RAM, RW)


def test_unmapped_vaddr_is_efault_and_pfnmap_is_not_charged() -> None:
    proc = Process(64 * MiB)
    proc.mmap(RAM, 4 * MiB)
    proc.mmap(RAM + 8 * MiB, 4 * MiB, VmaKind.PFNMAP)         # another device's BAR
    space = DmaSpace(proc)
    with raises(errno.EFAULT):
        space.map(0, 8 * MiB, RAM, RW)                        # runs into the hole at 4 MiB
    space.map(0, 4 * MiB, RAM + 8 * MiB, RW)
    assert proc.locked_vm == 0 and space.locked_pages == 0


def test_two_containers_charge_the_same_ram_twice(process: Process) -> None:
    host = VfioHost([Group(7, [GroupDevice("0000:03:00.0")]),
                     Group(8, [GroupDevice("0000:04:00.0")])], process)
    for gid in (7, 8):
        c = host.open_container()
        host.open_group(gid).set_container(c)
        c.set_iommu(u.VFIO_TYPE1v2_IOMMU)
        c.map_dma(0, 32 * MiB, RAM, RW)
    assert process.locked_vm * u.PAGE_SIZE == 64 * MiB


def test_scenario5_dma_entry_limit() -> None:
    proc = Process(None)
    proc.mmap(RAM, 16 * MiB)
    space = DmaSpace(proc, dma_entry_limit=2)
    space.map(0, 4096, RAM, RW)
    space.map(0x1000, 4096, RAM, RW)
    with raises(errno.ENOSPC):
        space.map(0x2000, 4096, RAM, RW)
    assert space.info()["dma_avail"] == 0
    space.unmap(0, 4096)
    assert space.info()["dma_avail"] == 1


def test_scenario6_unmap_rules(session: Session) -> None:
    c = session.container
    c.map_dma(0x0, 0x1000, RAM, RW)
    c.map_dma(0x1000, 0x1000, RAM + 0x1000, RW)
    assert c.unmap_dma(0x0, 0x2000) == 0x2000
    c.map_dma(0x200000, 2 * MiB, RAM, RW)
    with raises(errno.EINVAL):
        c.unmap_dma(0x200000, MiB)                            # bisects (type1v2)
    with raises(errno.EINVAL):
        c.unmap_dma(0x100000, 2 * MiB)                        # bisects from the left
    assert c.unmap_dma(0x10000000, 0x1000) == 0               # empty range
    with raises(errno.EINVAL):
        c.unmap_dma(0, 0)                                     # size 0 without ALL
    with raises(errno.EINVAL):
        c.unmap_dma(0, 0x1000, u.VFIO_DMA_UNMAP_FLAG_ALL)     # ALL needs size 0
    assert c.unmap_dma(0, 0, u.VFIO_DMA_UNMAP_FLAG_ALL) == 2 * MiB
    assert session.host.process.locked_vm == 0


def test_type1v1_unmap_is_whole_mapping_or_nothing() -> None:
    proc = Process(None)
    proc.mmap(RAM, 16 * MiB)
    space = DmaSpace(proc, v2=False)
    space.map(0x200000, 2 * MiB, RAM, RW)
    assert space.unmap(0x300000, MiB) == 0                    # offset into it: nothing
    assert space.unmap(0x200000, 0x1000) == 2 * MiB           # covers its start: all of it


def test_vaddr_invalidate_and_update() -> None:
    proc = Process(None)
    proc.mmap(RAM, 16 * MiB)
    space = DmaSpace(proc)
    space.map(0, 2 * MiB, RAM, RW)
    with raises(errno.EINVAL):
        space.map(0, 2 * MiB, RAM + 2 * MiB, u.VFIO_DMA_MAP_FLAG_VADDR)   # still valid
    assert space.unmap(0, 2 * MiB, u.VFIO_DMA_UNMAP_FLAG_VADDR) == 2 * MiB
    assert len(space) == 1                                    # kept, vaddr invalid
    with raises(errno.ENOENT):
        space.map(8 * MiB, 2 * MiB, RAM, u.VFIO_DMA_MAP_FLAG_VADDR)
    space.map(0, 2 * MiB, RAM + 2 * MiB, u.VFIO_DMA_MAP_FLAG_VADDR)
    assert space.find(0).vaddr == RAM + 2 * MiB


# -- property: the interval implementation agrees with a page-by-page reference --------------
PAGES = 64
ops = st.lists(st.tuples(st.sampled_from(["map", "unmap"]), st.integers(0, PAGES - 1),
                         st.integers(1, 8)), max_size=60)


@settings(max_examples=150, deadline=None)
@given(ops)
def test_dma_space_matches_page_reference(seq: list[tuple[str, int, int]]) -> None:
    proc = Process(None)
    proc.mmap(RAM, PAGES * 4096 * 2)
    space = DmaSpace(proc)
    owner: dict[int, int] = {}                # page -> start page of its mapping
    extent: dict[int, int] = {}               # start page -> pages
    for op, start, n in seq:
        if op == "map":
            clash = any(p in owner for p in range(start, start + n))
            try:
                space.map(start * 4096, n * 4096, RAM + start * 4096, RW)
            except ModelError as e:
                assert clash and e.errno == errno.EEXIST
                continue
            assert not clash
            extent[start] = n
            owner.update({p: start for p in range(start, start + n)})
        else:
            touched = {owner[p] for p in range(start, start + n) if p in owner}
            bisects = any(s < start or s + extent[s] > start + n for s in touched)
            try:
                got = space.unmap(start * 4096, n * 4096)
            except ModelError as e:
                assert bisects and e.errno == errno.EINVAL
                continue
            assert not bisects
            assert got == sum(extent[s] for s in touched) * 4096
            for s in touched:
                for p in range(s, s + extent.pop(s)):
                    del owner[p]
        assert proc.locked_vm == len(owner) == space.locked_pages
        assert space.dma_avail == u.DMA_ENTRY_LIMIT - len(extent)
