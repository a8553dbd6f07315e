"""vfio-pci device fd: regions, interrupt indices, INTx auto-mask (§2.5, scenarios 7-8)."""

from __future__ import annotations

import errno

import pytest

from vmctl.model import ModelError
from vmctl_vfio.model import uapi as u
from vmctl_vfio.model.pcidev import PciFunction, VfioPciDevice

EVENTFD = u.VFIO_IRQ_SET_DATA_EVENTFD | u.VFIO_IRQ_SET_ACTION_TRIGGER
DISABLE = u.VFIO_IRQ_SET_DATA_NONE | u.VFIO_IRQ_SET_ACTION_TRIGGER
UNMASK = u.VFIO_IRQ_SET_DATA_NONE | u.VFIO_IRQ_SET_ACTION_UNMASK


def raises(code: int):
    return pytest.raises(ModelError, match=f"^{errno.errorcode[code]}:")


@pytest.fixture
def nic() -> VfioPciDevice:
    """A PCIe NIC: 128 KiB BAR0, 16 KiB BAR3 holding its 64-entry MSI-X table, INTx, MSI."""
    bars = ((0x20000, "mem"), (0, "mem"), (0x20, "io"), (0x4000, "mem"), (0, "mem"), (0, "mem"))
    return VfioPciDevice("0000:03:00.0", PciFunction(bars=bars, rom=0x10000, msi=1, msix=64,
                                                     msix_bar=3))


def test_scenario8_regions_of_a_bar0_only_device() -> None:
    dev = VfioPciDevice("0000:06:00.0", PciFunction(pcie=False))
    assert dev.info()["num_regions"] == 9
    sizes = [dev.region_info(i).size for i in range(9)]
    assert sizes[0] == 0x4000
    assert sizes[1:7] == [0] * 6                      # BAR1-5 and ROM absent
    assert sizes[7] == 256                            # conventional PCI config space
    assert sizes[8] == 0                              # not a VGA device
    with raises(errno.EINVAL):
        dev.region_info(9)


def test_region_flags(nic: VfioPciDevice) -> None:
    rw = u.VFIO_REGION_INFO_FLAG_READ | u.VFIO_REGION_INFO_FLAG_WRITE
    assert nic.region_info(0).flags == rw | u.VFIO_REGION_INFO_FLAG_MMAP
    assert nic.region_info(2).flags == rw             # I/O BAR: no mmap
    assert nic.region_info(3).flags & u.VFIO_REGION_INFO_FLAG_CAPS   # sparse around MSI-X
    assert nic.region_info(6).flags == u.VFIO_REGION_INFO_FLAG_READ  # ROM is read-only
    assert nic.region_info(7).size == 4096            # PCIe extended config space
    vga = VfioPciDevice("0000:01:00.0", PciFunction(vga=True))
    assert vga.region_info(8).size == u.VGA_REGION_SIZE


def test_irq_indices(nic: VfioPciDevice) -> None:
    counts = [nic.irq_info(i).count for i in range(5)]
    assert counts == [1, 1, 64, 1, 1]
    assert nic.irq_info(0).flags & u.VFIO_IRQ_INFO_AUTOMASKED
    assert nic.irq_info(1).flags & u.VFIO_IRQ_INFO_NORESIZE
    legacy = VfioPciDevice("0000:06:00.0", PciFunction(pcie=False, intx_pin=False))
    assert legacy.irq_info(0).count == 0
    with raises(errno.EINVAL):
        legacy.irq_info(u.VFIO_PCI_ERR_IRQ_INDEX)     # ERR only for PCIe


def test_scenario7_interrupt_types_exclude_each_other_and_intx_automasks(
        nic: VfioPciDevice) -> None:
    nic.set_irqs(u.VFIO_PCI_MSIX_IRQ_INDEX, EVENTFD, 0, 4, (10, 11, 12, 13))
    with raises(errno.EINVAL):
        nic.set_irqs(u.VFIO_PCI_INTX_IRQ_INDEX, EVENTFD, 0, 1, (20,))
    nic.set_irqs(u.VFIO_PCI_MSIX_IRQ_INDEX, DISABLE)
    nic.set_irqs(u.VFIO_PCI_INTX_IRQ_INDEX, EVENTFD, 0, 1, (20,))
    assert nic.assert_intx() is True and nic.intx_signals == 1 and nic.intx_masked
    assert nic.assert_intx() is False and nic.intx_signals == 1   # pending while masked
    nic.set_irqs(u.VFIO_PCI_INTX_IRQ_INDEX, UNMASK, 0, 1)
    assert nic.intx_signals == 2                                   # line still high: re-fires
    nic.deassert_intx()
    nic.set_irqs(u.VFIO_PCI_INTX_IRQ_INDEX, UNMASK, 0, 1)
    assert nic.intx_signals == 2 and not nic.intx_masked


def test_intx_start_count_must_be_0_1(nic: VfioPciDevice) -> None:
    with raises(errno.EINVAL):
        nic.set_irqs(u.VFIO_PCI_INTX_IRQ_INDEX, EVENTFD, 0, 2, (1, 2))


def test_msix_vectors_fit_table_and_minus_one_deassigns(nic: VfioPciDevice) -> None:
    with raises(errno.EINVAL):
        nic.set_irqs(u.VFIO_PCI_MSIX_IRQ_INDEX, EVENTFD, 60, 8, tuple(range(8)))
    nic.set_irqs(u.VFIO_PCI_MSIX_IRQ_INDEX, EVENTFD, 0, 2, (5, 6))
    assert nic.fire_msi(1) and nic.vectors[1] == 1
    nic.set_irqs(u.VFIO_PCI_MSIX_IRQ_INDEX, EVENTFD, 1, 1, (-1,))
    assert not nic.fire_msi(1)
    with raises(errno.ENOTTY):
        nic.set_irqs(u.VFIO_PCI_MSIX_IRQ_INDEX, UNMASK, 0, 1)


def test_set_irqs_needs_one_data_and_one_action(nic: VfioPciDevice) -> None:
    with raises(errno.EINVAL):
        nic.set_irqs(u.VFIO_PCI_MSI_IRQ_INDEX,
                     u.VFIO_IRQ_SET_DATA_NONE | u.VFIO_IRQ_SET_DATA_BOOL
                     | u.VFIO_IRQ_SET_ACTION_TRIGGER, 0, 1)


def test_reset_keeps_interrupts_and_needs_support(nic: VfioPciDevice) -> None:
    nic.set_irqs(u.VFIO_PCI_MSI_IRQ_INDEX, EVENTFD, 0, 1, (7,))
    nic.reset()
    assert nic.state()["irq_type"] == "msi" and nic.resets == 1
    with raises(errno.EINVAL):
        VfioPciDevice("0000:06:00.0", PciFunction(reset=False)).reset()
