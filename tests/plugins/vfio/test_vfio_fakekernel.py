"""The fake kernel answers PCI driver writes the way the driver core does."""

from __future__ import annotations

from vmctl.host.sysfs import tree_snapshot as snapshot

import errno
from pathlib import Path

import pytest

from vmctl.host.sysfs import Sysfs
from vmctl_vfio.fakesys import fake_kernel as handlers
from vmctl_vfio.fakesys import host_scenario, no_iommu_scenario, viable_scenario
from vmctl_vfio.host import read_host

GPU, AUDIO, NIC, PORT = "0000:01:00.0", "0000:01:00.1", "0000:03:00.0", "0000:00:01.0"
DEV = "/sys/bus/pci/devices"
DRV = "/sys/bus/pci/drivers"


@pytest.fixture
def fs(tmp_path: Path) -> Sysfs:
    host_scenario(tmp_path)
    return Sysfs(tmp_path, handlers())


def errno_of(fs: Sysfs, path: str, value: str) -> int:
    with pytest.raises(OSError) as exc:
        fs.write(path, value)
    return exc.value.errno




def driver(fs: Sysfs, addr: str) -> str | None:
    return fs.readlink_name(f"{DEV}/{addr}/driver")


def test_override_reads_back_and_clears_to_null(fs: Sysfs) -> None:
    fs.write(f"{DEV}/{NIC}/driver_override", "vfio-pci\nignored")
    assert fs.read(f"{DEV}/{NIC}/driver_override") == "vfio-pci"
    fs.write(f"{DEV}/{NIC}/driver_override", "")
    assert fs.read(f"{DEV}/{NIC}/driver_override") == "(null)"


def test_vfio_pci_matches_only_with_override(fs: Sysfs) -> None:
    fs.write(f"{DRV}/e1000e/unbind", NIC)
    assert driver(fs, NIC) is None
    assert not fs.exists(f"{DRV}/e1000e/{NIC}")
    assert errno_of(fs, f"{DRV}/vfio-pci/bind", NIC) == errno.ENODEV
    fs.write(f"{DEV}/{NIC}/driver_override", "vfio-pci")
    assert errno_of(fs, f"{DRV}/e1000e/bind", NIC) == errno.ENODEV   # override excludes it
    fs.write(f"{DRV}/vfio-pci/bind", NIC)
    assert driver(fs, NIC) == "vfio-pci" and fs.exists("/dev/vfio/8")


def test_bind_to_bound_device_is_ebusy_and_wrong_unbind_is_enodev(fs: Sysfs) -> None:
    fs.write(f"{DEV}/{NIC}/driver_override", "e1000e")
    assert errno_of(fs, f"{DRV}/e1000e/bind", NIC) == errno.EBUSY
    assert errno_of(fs, f"{DRV}/vfio-pci/unbind", NIC) == errno.ENODEV
    assert errno_of(fs, f"{DRV}/e1000e/unbind", "0000:09:00.0") == errno.ENODEV


def test_drivers_probe_honours_override(fs: Sysfs) -> None:
    fs.write(f"{DEV}/{NIC}/driver_override", "vfio-pci")
    fs.write("/sys/bus/pci/drivers_probe", NIC)
    assert driver(fs, NIC) == "e1000e"                    # bound devices are left alone
    fs.write(f"{DRV}/e1000e/unbind", NIC)
    fs.write("/sys/bus/pci/drivers_probe", NIC)
    assert driver(fs, NIC) == "vfio-pci"
    assert errno_of(fs, "/sys/bus/pci/drivers_probe", "0000:09:00.0") == errno.ENODEV


def test_without_override_probe_returns_the_native_driver(fs: Sysfs) -> None:
    fs.write(f"{DRV}/snd_hda_intel/unbind", AUDIO)
    fs.write("/sys/bus/pci/drivers_probe", AUDIO)
    assert driver(fs, AUDIO) == "snd_hda_intel"


def test_vfio_pci_refuses_bridges(fs: Sysfs) -> None:
    fs.write(f"{DRV}/pcieport/unbind", PORT)
    fs.write(f"{DEV}/{PORT}/driver_override", "vfio-pci")
    assert errno_of(fs, f"{DRV}/vfio-pci/bind", PORT) == errno.EINVAL
    fs.write("/sys/bus/pci/drivers_probe", PORT)          # probe failure is silent
    assert driver(fs, PORT) is None


def test_vfio_pci_needs_an_iommu_group(tmp_path: Path) -> None:
    no_iommu_scenario(tmp_path)
    fs = Sysfs(tmp_path, handlers())
    fs.write(f"{DRV}/e1000e/unbind", NIC)
    fs.write(f"{DEV}/{NIC}/driver_override", "vfio-pci")
    assert errno_of(fs, f"{DRV}/vfio-pci/bind", NIC) == errno.EINVAL


def test_group_node_goes_with_the_last_vfio_device(tmp_path: Path) -> None:
    viable_scenario(tmp_path)
    fs = Sysfs(tmp_path, handlers())
    fs.write(f"{DRV}/vfio-pci/unbind", GPU)
    assert fs.exists("/dev/vfio/1")                       # the audio function holds it
    fs.write(f"{DRV}/vfio-pci/unbind", AUDIO)
    assert not fs.exists("/dev/vfio/1") and fs.exists("/dev/vfio/8")


def test_new_id_attaches_unbound_matches_and_remove_id_undoes(fs: Sysfs,
                                                               tmp_path: Path) -> None:
    fs.write(f"{DRV}/e1000e/unbind", NIC)
    fs.write(f"{DRV}/vfio-pci/new_id", "8086 10d3")
    assert driver(fs, NIC) == "vfio-pci"
    assert errno_of(fs, f"{DRV}/vfio-pci/new_id", "8086 10d3") == errno.EEXIST
    fs.write(f"{DRV}/vfio-pci/remove_id", "8086 10d3")
    assert errno_of(fs, f"{DRV}/vfio-pci/remove_id", "8086 10d3") == errno.ENODEV


def test_binding_recipe_and_its_reverse_restore_the_tree(fs: Sysfs, tmp_path: Path) -> None:
    before = snapshot(tmp_path)
    for addr, host_driver in ((GPU, "nouveau"), (AUDIO, "snd_hda_intel")):
        fs.write(f"{DEV}/{addr}/driver_override", "vfio-pci")
        fs.write(f"{DRV}/{host_driver}/unbind", addr)
        fs.write("/sys/bus/pci/drivers_probe", addr)
    assert read_host(fs).viability(1).viable
    for addr, host_driver in ((AUDIO, "snd_hda_intel"), (GPU, "nouveau")):
        fs.write(f"{DRV}/vfio-pci/unbind", addr)
        fs.write(f"{DEV}/{addr}/driver_override", "")
        fs.write(f"{DRV}/{host_driver}/bind", addr)
    assert snapshot(tmp_path) == before
