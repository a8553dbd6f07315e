"""Reading the host under a sysfs root: devices, groups, viability, limits (§2.2, §2.10)."""

from __future__ import annotations

from pathlib import Path

import pytest

from vmctl.host.sysfs import Sysfs
from vmctl_vfio.fakesys import (FakeDevice, build_host, host_scenario, iommufd_scenario,
                                no_iommu_scenario, nonviable_scenario, viable_scenario)
from vmctl_vfio.host import parse_pci_address, read_host

GPU, AUDIO, NIC = "0000:01:00.0", "0000:01:00.1", "0000:03:00.0"


@pytest.mark.parametrize("text, canon", [("0000:03:00.0", "0000:03:00.0"),
                                         ("03:00.0", "0000:03:00.0"),
                                         ("0001:AF:1F.7", "0001:af:1f.7")])
def test_pci_address_forms(text: str, canon: str) -> None:
    assert parse_pci_address(text) == canon


@pytest.mark.parametrize("bad", ["0000:03:00", "0000:03:20.0", "0000:03:00.8", "3:0.0", ""])
def test_bad_pci_addresses_name_the_form(bad: str) -> None:
    with pytest.raises(ValueError, match="DDDD:BB:DD.F"):
        parse_pci_address(bad)


def test_nonviable_group_lists_the_companion_and_its_driver(tmp_path: Path) -> None:
    h = read_host(nonviable_scenario(tmp_path))
    v = h.viability(h.group_of(GPU))
    assert not v.viable
    assert [d.describe() for d in v.blockers] == ["0000:01:00.1 [10de:10f0] on snd_hda_intel"]
    assert v.vfio_node                                    # GPU on vfio-pci made /dev/vfio/1
    assert {d.address for d in v.devices} == {"0000:00:01.0", GPU, AUDIO}


def test_viable_group_bridge_on_pcieport_is_fine(tmp_path: Path) -> None:
    h = read_host(viable_scenario(tmp_path))
    assert h.viability(1).viable and h.viability(8).viable
    assert h.vfio_nodes == {1, 8} and h.vfio_bound(NIC)


def test_host_drivers_block_both_functions(tmp_path: Path) -> None:
    h = read_host(host_scenario(tmp_path))
    assert {d.driver for d in h.viability(1).blockers} == {"nouveau", "snd_hda_intel"}
    assert not h.vfio_nodes


def test_no_iommu_host(tmp_path: Path) -> None:
    h = read_host(no_iommu_scenario(tmp_path))
    assert not h.iommu and h.groups == {} and h.group_of(NIC) is None
    assert h.vfio_container                               # vfio is loaded, just useless


def test_iommufd_and_kernel(tmp_path: Path) -> None:
    assert read_host(iommufd_scenario(tmp_path)).iommufd
    h = read_host(viable_scenario(tmp_path / "b", kernel="6.1.0-13-amd64"))
    assert not h.iommufd and h.kernel == "6.1.0-13-amd64"


def test_memlock_and_capability_come_from_proc(tmp_path: Path) -> None:
    h = read_host(viable_scenario(tmp_path, memlock=64 << 20, cap_ipc_lock=True))
    assert (h.memlock_limit, h.memlock_known, h.cap_ipc_lock) == (64 << 20, True, True)
    h = read_host(viable_scenario(tmp_path / "b", memlock=None))
    assert h.memlock_limit is None and h.memlock_known
    injected = read_host(Sysfs(tmp_path), memlock_limit=1 << 30, cap_ipc_lock=False)
    assert injected.memlock_limit == 1 << 30 and not injected.cap_ipc_lock


def test_type1_module_parameters(tmp_path: Path) -> None:
    h = read_host(viable_scenario(tmp_path, allow_unsafe_interrupts=True, dma_entry_limit=2))
    assert h.allow_unsafe_interrupts is True and h.dma_entry_limit == 2
    assert h.group_types[1] == "DMA-FQ"


def test_tree_has_the_kernels_shape(tmp_path: Path) -> None:
    build_host(tmp_path, [FakeDevice(NIC, 0x8086, 0x10D3, 0x020000, "e1000e", "e1000e", 8,
                                     parent="0000:00:1c.0"),
                          FakeDevice("0000:00:1c.0", 0x8086, 0xA290, 0x060400, "pcieport",
                                     "pcieport", 7)])
    dev = tmp_path / "sys/devices/pci0000:00/0000:00:1c.0/0000:03:00.0"
    assert (dev / "vendor").read_text() == "0x8086\n"
    assert (dev / "class").read_text() == "0x020000\n"
    assert (dev / "driver_override").read_text() == "(null)\n"
    assert (dev / "driver").readlink() == Path("../../../../bus/pci/drivers/e1000e")
    assert (dev / "iommu_group").readlink() == Path("../../../../kernel/iommu_groups/8")
    link = tmp_path / "sys/bus/pci/devices/0000:03:00.0"
    assert link.readlink() == Path("../../../devices/pci0000:00/0000:00:1c.0/0000:03:00.0")
    grp = tmp_path / "sys/kernel/iommu_groups/8/devices/0000:03:00.0"
    assert grp.resolve() == dev.resolve()
    limits = (tmp_path / "proc/self/limits").read_text().splitlines()
    assert limits[9].split()[:5] == ["Max", "locked", "memory", "8388608", "8388608"]
