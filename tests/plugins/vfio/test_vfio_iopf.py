"""The unmerged VFIO_IOMMU_ENABLE_IOPF RFC, modelled honestly (§2.6, scenario 9)."""

from __future__ import annotations

import errno

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vmctl.model import ModelError
from vmctl_vfio.model import uapi as u
from vmctl_vfio.model.container import Group, GroupDevice, VfioHost, device_access
from vmctl_vfio.model.intervals import RunSet
from vmctl_vfio.model.mm import Process

from .conftest import NIC, RAM, GiB, MiB, Session

R = u.IOMMU_FAULT_PERM_READ
W = u.IOMMU_FAULT_PERM_WRITE
OK, INVALID = u.IOMMU_PAGE_RESP_SUCCESS, u.IOMMU_PAGE_RESP_INVALID
PG = u.PAGE_SIZE


def raises(code: int):
    return pytest.raises(ModelError, match=f"^{errno.errorcode[code]}:")


@pytest.fixture
def big_process() -> Process:
    p = Process(64 * MiB)
    p.mmap(RAM, 2 * GiB)
    return p


def test_scenario9(big_process: Process) -> None:
    host = VfioHost([Group(7, [GroupDevice(NIC)])], big_process)
    c = host.open_container()
    g = host.open_group(7)
    g.set_container(c)
    with raises(errno.EINVAL):
        c.enable_iopf()                                    # before SET_IOMMU
    c.set_iommu(u.VFIO_TYPE1v2_IOMMU)
    c.enable_iopf()
    c.map_dma(0, GiB, RAM, u.VFIO_DMA_MAP_FLAG_READ)       # 1 GiB > the 64 MiB limit: fine
    assert big_process.locked_vm == 0 and c.dma.iommu_mapped_pages == 0
    iopf = c.iopf
    assert iopf.handle(10 * PG, W) == INVALID              # write on a read-only mapping
    assert iopf.handle(10 * PG, R) == OK
    assert list(c.dma.resident.runs()) == [(10, 522)]      # pages 10..521
    assert iopf.handle(11 * PG, R) == OK                   # already mapped: nothing new
    assert len(c.dma.resident) == 512 and iopf.already_mapped == 1
    big_process.munmap(RAM + 12 * PG, PG)                  # host frees page 12's memory
    assert 12 not in c.dma.resident and 11 in c.dma.resident and 13 in c.dma.resident
    assert iopf.counters()["invalidations"] == 1
    assert iopf.handle(12 * PG, R) == INVALID              # its vaddr is gone now
    assert big_process.locked_vm == 0


def test_enable_is_once_and_before_any_map(session: Session) -> None:
    c = session.container
    c.map_dma(0, MiB, RAM)
    with raises(errno.EINVAL) as exc:
        c.enable_iopf()
    assert "right after SET_IOMMU" in str(exc.value)
    c.unmap_dma(0, MiB)
    c.enable_iopf()
    with raises(errno.EINVAL):
        c.enable_iopf()
    with raises(errno.ENOTTY):
        c.ioctl("VFIO_IOMMU_DISABLE_IOPF")                 # there is no disable


@pytest.mark.parametrize("bad", [GroupDevice("0000:05:00.1", iopf_capable=False),
                                 GroupDevice("0000:05:00.1", fault_handler_busy=True)])
def test_enable_unwinds_every_device_on_failure(big_process: Process, bad: GroupDevice) -> None:
    good = GroupDevice("0000:05:00.0")
    other = GroupDevice("0000:04:00.0")
    host = VfioHost([Group(4, [other]), Group(5, [good, bad])], big_process)
    c = host.open_container()
    for gid in (4, 5):
        host.open_group(gid).set_container(c)
    c.set_iommu(u.VFIO_TYPE1v2_IOMMU)
    code = errno.ENODEV if not bad.iopf_capable else errno.EBUSY
    with raises(code):
        c.enable_iopf()
    assert not any(d.iopf_enabled for d in (good, bad, other))
    assert c.iopf is None and big_process.notifier_count == 0
    c.map_dma(0, 32 * MiB, RAM)                             # still a pinning container
    assert big_process.locked_vm * PG == 32 * MiB


def test_group_attached_later_is_enabled_without_replay(big_process: Process) -> None:
    late = GroupDevice("0000:04:00.0")
    host = VfioHost([Group(7, [GroupDevice(NIC)]), Group(4, [late]),
                     Group(9, [GroupDevice("0000:09:00.0", iopf_capable=False)])], big_process)
    c = host.open_container()
    host.open_group(7).set_container(c)
    c.set_iommu(u.VFIO_TYPE1v2_IOMMU)
    c.enable_iopf()
    c.map_dma(0, GiB, RAM)
    host.open_group(4).set_container(c)
    assert late.iopf_enabled and late.fault_report == "flat"
    assert big_process.locked_vm == 0 and c.dma.iommu_mapped_pages == 0   # no replay
    with raises(errno.ENODEV):
        host.open_group(9).set_container(c)                # cannot fault: attach refused
    assert [g.id for g in c.groups] == [7, 4]


def test_nesting_container_reports_l2_faults(big_process: Process) -> None:
    dev = GroupDevice(NIC)
    host = VfioHost([Group(7, [dev])], big_process, nesting=True)
    c = host.open_container()
    host.open_group(7).set_container(c)
    c.set_iommu(u.VFIO_TYPE1_NESTING_IOMMU)
    c.enable_iopf()
    assert dev.fault_report == "nested-l2"


def test_prefault_window_stops_at_mapped_page_and_mapping_end(session: Session) -> None:
    c = session.container
    c.enable_iopf(prefault=8)
    c.map_dma(0, 20 * PG, RAM)
    c.map_dma(20 * PG, 20 * PG, RAM + 20 * PG)
    iopf = c.iopf
    iopf.handle(5 * PG, R)
    assert list(c.dma.resident.runs()) == [(5, 13)]
    iopf.handle(2 * PG, R)                                 # stops at page 5, mapped already
    assert list(c.dma.resident.runs()) == [(2, 13)]
    iopf.handle(17 * PG, R)                                # stops at the end of mapping 1
    assert list(c.dma.resident.runs()) == [(2, 13), (17, 20)]
    assert iopf.handle(41 * PG, R) == INVALID              # outside every mapping
    assert iopf.counters()["pages_prefaulted"] == 7 + 2 + 2


def test_device_dma_with_and_without_iopf(session: Session) -> None:
    c = session.container
    c.map_dma(0, MiB, RAM, u.VFIO_DMA_MAP_FLAG_READ)
    fd = session.group.get_device_fd(NIC)
    assert not device_access(fd, 0, MiB).aborted          # pinned: no fault at all
    assert device_access(fd, 0, PG, write=True).aborted   # read-only mapping
    assert device_access(fd, MiB, PG).aborted             # unmapped IOVA
    assert c.dma_faults == 2


def test_unmap_drops_fault_mapped_pages(session: Session) -> None:
    c = session.container
    c.enable_iopf()
    c.map_dma(0, 4 * MiB, RAM)
    fd = session.group.get_device_fd(NIC)
    res = device_access(fd, 0, 4 * MiB)
    assert res.faults == 2 and len(c.dma.resident) == 1024
    assert c.unmap_dma(0, 4 * MiB) == 4 * MiB
    assert len(c.dma.resident) == 0


def test_teardown_unregisters_the_notifier(session: Session) -> None:
    c, proc = session.container, session.host.process
    c.enable_iopf()
    assert proc.notifier_count == 1
    session.group.unset_container()
    assert proc.notifier_count == 0 and c.iopf is None


# -- RunSet agrees with a plain set ---------------------------------------------------------
@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.integers(0, 80), st.integers(0, 20)),
                max_size=50))
def test_runset_matches_set(ops: list[tuple[bool, int, int]]) -> None:
    rs, ref = RunSet(), set()
    for add, lo, n in ops:
        span = set(range(lo, lo + n))
        if add:
            assert rs.add(lo, lo + n) == len(span - ref)
            ref |= span
        else:
            assert rs.remove(lo, lo + n) == len(span & ref)
            ref -= span
        assert len(rs) == len(ref)
        assert all((x in rs) == (x in ref) for x in range(0, 101))
        runs = list(rs.runs())
        assert all(a[1] < b[0] for a, b in zip(runs, runs[1:]))   # disjoint, not touching
        assert rs.count_in(10, 50) == len(ref & set(range(10, 50)))
