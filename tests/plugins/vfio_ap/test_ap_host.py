"""The host layer: fake trees in the kernel's layout, reading them, and the fake-kernel handlers."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from vmctl.host.sysfs import Sysfs, mark_fake
from vmctl_vfio_ap.fakesys import UUID_A, UUID_B, MdevSpec, build_host, desired_tree, snapshot
from vmctl_vfio_ap.host import guest_name, load_system, read_host
from vmctl_vfio_ap.model import masks as M
from vmctl_vfio_ap.model.system import AP_BUS, MATRIX, TYPE_DIR


def link(root: Path, kpath: str) -> str:
    return os.readlink(root / kpath.lstrip("/"))


def text(root: Path, kpath: str) -> str:
    return (root / kpath.lstrip("/")).read_text()


@pytest.fixture
def host(tmp_path: Path) -> Sysfs:
    """Adapters 0–7 × domains 4, 5 (0–3 for vfio_ap); mdev A has 01 × 0004 in a running guest."""
    return build_host(tmp_path, adapters=range(8), domains=(4, 5), apmask=M.FULL & ~M.from_ids(range(4)),
                      mdevs=[MdevSpec(UUID_A, (1,), (4,), (4,), guest="vm1")])


def test_bus_attributes_have_the_kernels_text(host: Sysfs, tmp_path: Path) -> None:
    assert text(tmp_path, f"{AP_BUS}/apmask") == "0x0f" + "f" * 62 + "\n"
    assert text(tmp_path, f"{AP_BUS}/aqmask") == "0x" + "f" * 64 + "\n"
    assert text(tmp_path, f"{AP_BUS}/ap_adapter_mask") == "0xff" + "0" * 62 + "\n"
    assert text(tmp_path, f"{AP_BUS}/ap_usage_domain_mask") == "0x0c" + "0" * 62 + "\n"
    assert text(tmp_path, f"{AP_BUS}/ap_max_adapter_id") == "255\n"
    assert text(tmp_path, f"{AP_BUS}/bindings") == "16/16 (complete)\n"
    assert text(tmp_path, f"{TYPE_DIR}/name") == "VFIO AP Passthrough Device\n"
    assert text(tmp_path, f"{TYPE_DIR}/device_api") == "vfio-ap\n"
    assert text(tmp_path, f"{TYPE_DIR}/available_instances") == "65535\n"


def test_devices_and_drivers_are_linked_like_sysfs(host: Sysfs, tmp_path: Path) -> None:
    assert link(tmp_path, f"{AP_BUS}/devices/card01") == "../../../devices/ap/card01"
    assert link(tmp_path, f"{AP_BUS}/devices/01.0004") == "../../../devices/ap/card01/01.0004"
    assert link(tmp_path, "/sys/devices/ap/card01/01.0004/driver") == "../../../../bus/ap/drivers/vfio_ap"
    assert link(tmp_path, "/sys/devices/ap/card05/05.0004/driver") == "../../../../bus/ap/drivers/cex4queue"
    assert link(tmp_path, "/sys/devices/ap/card01/driver") == "../../../bus/ap/drivers/cex4card"
    assert link(tmp_path, f"{AP_BUS}/drivers/vfio_ap/01.0004") == "../../../../devices/ap/card01/01.0004"
    assert text(tmp_path, "/sys/devices/ap/card01/type") == "CEX7C\n"
    assert text(tmp_path, "/sys/devices/ap/card01/hwtype") == "13\n"
    assert text(tmp_path, "/sys/devices/ap/card01/01.0004/status") == "in use\n"
    assert text(tmp_path, "/sys/devices/ap/card02/02.0004/status") == "unassigned\n"
    assert not (tmp_path / "sys/devices/ap/card05/05.0004/status").exists()


def test_mdevs_are_linked_like_sysfs(host: Sysfs, tmp_path: Path) -> None:
    base = f"{MATRIX}/{UUID_A}"
    assert link(tmp_path, f"{base}/mdev_type") == "../mdev_supported_types/vfio_ap-passthrough"
    assert link(tmp_path, f"{base}/iommu_group") == "../../../../kernel/iommu_groups/0"
    assert link(tmp_path, f"{base}/driver") == "../../../../bus/mdev/drivers/vfio_ap_mdev"
    assert link(tmp_path, f"/sys/bus/mdev/devices/{UUID_A}") == f"../../../devices/vfio_ap/matrix/{UUID_A}"
    assert link(tmp_path, f"{TYPE_DIR}/devices/{UUID_A}") == f"../../../{UUID_A}"
    assert link(tmp_path, f"/sys/kernel/iommu_groups/0/devices/{UUID_A}") == \
        f"../../../../devices/vfio_ap/matrix/{UUID_A}"
    for attr in ("assign_adapter", "unassign_domain", "assign_control_domain", "remove"):
        assert text(tmp_path, f"{base}/{attr}") == ""
    assert text(tmp_path, f"{base}/matrix") == "01.0004\n"
    assert text(tmp_path, f"{base}/guest_matrix") == "01.0004\n"
    assert text(tmp_path, f"{base}/control_domains") == "0004\n"


def test_read_host_sees_what_the_tree_shows(host: Sysfs) -> None:
    h = read_host(host)
    assert h.present and h.vfio_ap_loaded and h.available_instances == 65535
    assert (h.max_adapter_id, h.max_domain_id) == (255, 255)
    assert h.queue(1, 4).driver == "vfio_ap" and h.queue(5, 5).driver == "cex4queue"  # type: ignore[union-attr]
    assert h.host_owned(5, 4) and not h.host_owned(1, 4)
    (m,) = h.mdevs
    assert (m.uuid, m.apqns, m.in_use, m.iommu_group) == (UUID_A, ["01.0004"], True, 0)
    assert h.mdev_owning(1, 4) == m and h.mdev_owning(2, 4) is None


def test_the_loaded_model_renders_the_same_tree(host: Sysfs) -> None:
    ap = load_system(host)
    assert ap.mdev(UUID_A).guest == guest_name(UUID_A)
    from vmctl_vfio_ap.fakesys import build_system
    ref = build_system(adapters=range(8), domains=(4, 5), apmask=M.FULL & ~M.from_ids(range(4)),
                       mdevs=[MdevSpec(UUID_A, (1,), (4,), (4,), guest="vm1")])
    assert desired_tree(ap) == desired_tree(ref)


def test_without_an_ap_bus_the_host_is_not_s390(tmp_path: Path) -> None:
    mark_fake(tmp_path)
    assert not read_host(Sysfs(tmp_path)).present
    with pytest.raises(OSError) as exc:
        load_system(Sysfs(tmp_path))
    assert exc.value.errno == errno.ENODEV


def test_a_host_without_qci_derives_its_configuration_from_the_devices(tmp_path: Path) -> None:
    sysfs = build_host(tmp_path, adapters=(2, 3), domains=(6,), apmask=0, vfio_ap_loaded=False)
    for name in ("ap_adapter_mask", "ap_usage_domain_mask", "ap_control_domain_mask"):
        (tmp_path / "sys/bus/ap" / name).write_text("not supported\n")
    h = read_host(sysfs)
    assert M.ids(h.config.apm) == [2, 3] and M.ids(h.config.aqm) == [6]
    assert not h.vfio_ap_loaded and h.mdevs == ()


def test_writes_then_their_inverses_restore_the_tree_byte_for_byte(host: Sysfs, tmp_path: Path) -> None:
    before = snapshot(tmp_path)
    forward = [(f"{AP_BUS}/apmask", "-4-5"), (f"{TYPE_DIR}/create", UUID_B),
               (f"{MATRIX}/{UUID_B}/assign_adapter", "4"), (f"{MATRIX}/{UUID_B}/assign_adapter", "5"),
               (f"{MATRIX}/{UUID_B}/assign_domain", "5"), (f"{MATRIX}/{UUID_B}/assign_control_domain", "4")]
    backward = [(f"{MATRIX}/{UUID_B}/unassign_control_domain", "4"), (f"{MATRIX}/{UUID_B}/unassign_domain", "5"),
                (f"{MATRIX}/{UUID_B}/unassign_adapter", "5"), (f"{MATRIX}/{UUID_B}/unassign_adapter", "4"),
                (f"{MATRIX}/{UUID_B}/remove", "1"), (f"{AP_BUS}/apmask", "+4-5")]
    for kpath, value in forward:
        host.write(kpath, value)
    middle = snapshot(tmp_path)
    assert middle[f"{MATRIX}/{UUID_B}/matrix"] == "04.0005\n05.0005\n"
    assert middle["/sys/devices/ap/card04/04.0005/driver"] == "-> ../../../../bus/ap/drivers/vfio_ap"
    assert middle[f"/sys/kernel/iommu_groups/1/devices/{UUID_B}"].startswith("-> ")
    for kpath, value in backward:
        host.write(kpath, value)
    assert snapshot(tmp_path) == before


def test_a_new_mdev_takes_the_lowest_free_iommu_group(host: Sysfs, tmp_path: Path) -> None:
    for n in (1, 2):
        (tmp_path / f"sys/kernel/iommu_groups/{n}/devices").mkdir(parents=True)   # PCI groups
    host.write(f"{TYPE_DIR}/create", UUID_B)
    assert link(tmp_path, f"{MATRIX}/{UUID_B}/iommu_group").endswith("/iommu_groups/3")
    assert text(tmp_path, f"{TYPE_DIR}/available_instances") == "65534\n"


def test_mdev_attributes_are_reachable_through_the_mdev_bus(host: Sysfs, tmp_path: Path) -> None:
    host.write(f"/sys/bus/mdev/devices/{UUID_A}/assign_domain", "5")
    assert text(tmp_path, f"{MATRIX}/{UUID_A}/matrix") == "01.0004\n01.0005\n"
    assert text(tmp_path, "/sys/devices/ap/card01/01.0005/status") == "in use\n"


def test_a_refused_write_changes_nothing(host: Sysfs, tmp_path: Path) -> None:
    before = snapshot(tmp_path)
    for kpath, value, code in ((f"{AP_BUS}/apmask", "+1", errno.EBUSY),
                               (f"{AP_BUS}/aqmask", "0x" + "f" * 65, errno.EINVAL),
                               (f"{MATRIX}/{UUID_A}/remove", "1", errno.EBUSY),
                               (f"{TYPE_DIR}/create", UUID_A, errno.EEXIST),
                               (f"{MATRIX}/{UUID_A}/assign_adapter", "5", errno.EADDRNOTAVAIL)):
        with pytest.raises(OSError) as exc:
            host.write(kpath, value)
        assert exc.value.errno == code, (kpath, exc.value)
    assert snapshot(tmp_path) == before


def test_an_apmask_write_is_shown_normalised(host: Sysfs, tmp_path: Path) -> None:
    host.write(f"{AP_BUS}/apmask", "0x8F")               # adapter 0 back to the host, 8-255 cleared
    assert text(tmp_path, f"{AP_BUS}/apmask") == "0x8f" + "0" * 62 + "\n"
    assert link(tmp_path, "/sys/devices/ap/card00/00.0004/driver") == "../../../../bus/ap/drivers/cex4queue"
    assert link(tmp_path, "/sys/devices/ap/card01/01.0004/driver") == "../../../../bus/ap/drivers/vfio_ap"
    assert text(tmp_path, f"{AP_BUS}/bindings") == "16/16 (complete)\n"
