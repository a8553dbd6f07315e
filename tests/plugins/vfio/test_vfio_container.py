"""Container / group / device-fd lifecycle (semantics.md §2.3, §2.11 scenarios 1-2)."""

from __future__ import annotations

import errno

import pytest

from vmctl.model import ModelError
from vmctl_vfio.model import uapi as u
from vmctl_vfio.model.container import ContainerState, Group, GroupDevice, GroupState, VfioHost
from vmctl_vfio.model.mm import Process

from .conftest import NIC, RAM, MiB, Session


def raises(code: int):
    return pytest.raises(ModelError, match=errno.errorcode[code])


def test_scenario1_nonviable_group_cannot_join_until_companion_rebound(host: VfioHost) -> None:
    c = host.open_container()
    g = host.open_group(1)
    assert g.status() & u.VFIO_GROUP_FLAGS_VIABLE == 0
    with raises(errno.EPERM) as exc:
        g.set_container(c)
    assert "0000:01:00.1 (snd_hda_intel)" in str(exc.value)
    g.devices["0000:01:00.1"].driver = "vfio-pci"
    assert g.status() == u.VFIO_GROUP_FLAGS_VIABLE
    g.set_container(c)
    assert g.status() == u.VFIO_GROUP_FLAGS_VIABLE | u.VFIO_GROUP_FLAGS_CONTAINER_SET


@pytest.mark.parametrize("driver", [None, "pci-stub", "pcieport", "mlx5_vfio_pci"])
def test_dma_safe_companions_keep_group_viable(process: Process, driver: str | None) -> None:
    host = VfioHost([Group(3, [GroupDevice("0000:05:00.0"),
                               GroupDevice("0000:05:00.1", driver=driver)])], process)
    g = host.open_group(3)
    assert g.status() & u.VFIO_GROUP_FLAGS_VIABLE


def test_scenario2_set_iommu_rules(host: VfioHost) -> None:
    c = host.open_container()
    with raises(errno.EINVAL):
        c.set_iommu(u.VFIO_TYPE1v2_IOMMU)            # no group yet
    g = host.open_group(7)
    g.set_container(c)
    assert c.state is ContainerState.HAS_GROUPS
    with raises(errno.EINVAL):
        c.map_dma(0, 2 * MiB, RAM)                   # MAP before SET_IOMMU
    with raises(errno.EINVAL):
        c.get_info()
    with raises(errno.ENODEV):
        c.set_iommu(u.VFIO_SPAPR_TCE_IOMMU)          # x86 host: no sPAPR backend
    c.set_iommu(u.VFIO_TYPE1v2_IOMMU)
    assert c.state is ContainerState.IOMMU_SET
    with raises(errno.EINVAL):
        c.set_iommu(u.VFIO_TYPE1v2_IOMMU)            # twice


def test_check_extension_answers_like_type1(host: VfioHost) -> None:
    c = host.open_container()
    assert c.api_version() == 0
    assert c.check_extension(u.VFIO_TYPE1v2_IOMMU) == 1
    assert c.check_extension(u.VFIO_SPAPR_TCE_IOMMU) == 0
    assert c.check_extension(u.VFIO_DMA_CC_IOMMU) == 0   # no domain yet


def test_group_node_exists_only_with_a_vfio_device_and_opens_once(process: Process) -> None:
    host = VfioHost([Group(4, [GroupDevice("0000:06:00.0", driver="e1000e")]),
                     Group(5, [GroupDevice("0000:07:00.0")])], process)
    with raises(errno.ENOENT):
        host.open_group(4)
    with raises(errno.ENOENT):
        host.open_group(99)
    host.open_group(5)
    with raises(errno.EBUSY):
        host.open_group(5)


def test_device_fd_needs_iommu_set_and_a_vfio_member(host: VfioHost) -> None:
    c = host.open_container()
    g = host.open_group(7)
    with raises(errno.EINVAL):
        g.get_device_fd(NIC)                          # not in a container
    g.set_container(c)
    with raises(errno.EINVAL):
        g.get_device_fd(NIC)                          # IOMMU not set
    c.set_iommu(u.VFIO_TYPE1v2_IOMMU)
    with raises(errno.ENODEV):
        g.get_device_fd("0000:06:0d.0")               # not in this group
    assert g.get_device_fd(NIC).pci.info()["num_regions"] == 9


def test_unset_container_with_open_device_is_ebusy(session: Session) -> None:
    g = session.group
    fd = g.get_device_fd(NIC)
    with raises(errno.EBUSY):
        g.unset_container()
    fd.close()
    g.unset_container()
    assert g.state is GroupState.OPEN
    with raises(errno.EINVAL):
        g.unset_container()                           # not in a container any more
    assert session.container.state is ContainerState.EMPTY


def test_second_container_refused_for_attached_group(session: Session) -> None:
    other = session.host.open_container()
    with raises(errno.EINVAL):
        session.group.set_container(other)


def test_last_group_leaving_tears_down_mappings_and_pins(session: Session) -> None:
    c, proc = session.container, session.host.process
    c.map_dma(0, 32 * MiB, RAM)
    assert proc.locked_vm * u.PAGE_SIZE == 32 * MiB
    session.group.unset_container()
    assert proc.locked_vm == 0
    assert c.state is ContainerState.EMPTY and c.dma is None
    session.group.set_container(c)                    # back to HAS_GROUPS: IOMMU unset
    with raises(errno.EINVAL):
        c.map_dma(0, 4096, RAM)


def test_group_close_with_open_device_defers_detach(session: Session) -> None:
    g, c = session.group, session.container
    fd = g.get_device_fd(NIC)
    g.close()
    assert c.groups == [g]                            # device fd holds the group
    with raises(errno.EBUSY):
        session.host.open_group(7)
    fd.close()
    assert c.groups == [] and g.state is GroupState.CLOSED
    session.host.open_group(7)


def test_missing_interrupt_remapping_needs_allow_unsafe(process: Process) -> None:
    def setup(unsafe: bool):
        host = VfioHost([Group(2, [GroupDevice("0000:02:00.0")], msi_isolated=False)],
                        process, allow_unsafe_interrupts=unsafe)
        c = host.open_container()
        host.open_group(2).set_container(c)
        return c
    with raises(errno.EPERM) as exc:
        setup(False).set_iommu(u.VFIO_TYPE1v2_IOMMU)
    assert "allow_unsafe_interrupts" in str(exc.value)
    setup(True).set_iommu(u.VFIO_TYPE1v2_IOMMU)


def test_unknown_container_ioctl(host: VfioHost, session: Session) -> None:
    fresh = host.open_container()
    with raises(errno.EINVAL):
        fresh.ioctl("VFIO_IOMMU_DISABLE_IOPF")        # no backend yet
    with raises(errno.ENOTTY):
        session.container.ioctl("VFIO_IOMMU_DISABLE_IOPF")


def test_closed_container_fd_cannot_take_groups(host: VfioHost) -> None:
    c = host.open_container()
    c.close()
    with raises(errno.EBADF):
        host.open_group(7).set_container(c)


def test_monitor_view_reports_locked_memory_against_limit(session: Session) -> None:
    session.container.map_dma(0, 16 * MiB, RAM)
    view = session.container.to_json()
    assert view["iommu"] == "type1v2" and view["mappings"] == 1
    assert view["locked_bytes"] == 16 * MiB and view["memlock_limit"] == 64 * MiB
    assert view["dma_avail"] == u.DMA_ENTRY_LIMIT - 1
