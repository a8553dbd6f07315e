"""Numbers from the kernel's VFIO and IOMMU user API, as the models use them.

Values follow ``include/uapi/linux/vfio.h`` and ``include/linux/iommu.h`` (semantics.md
§2.1, §2.3–2.6).  ``VFIO_IOMMU_ENABLE_IOPF`` is the one exception: it comes from the
*unmerged* RFC (seed-001, ``VFIO_BASE + 18``) and exists in no released kernel.
"""

from __future__ import annotations

PAGE_SIZE = 4096
PAGE_SHIFT = 12

# -- ioctl numbers: _IO(';', VFIO_BASE + n) -----------------------------------------------
VFIO_TYPE = ord(";")
VFIO_BASE = 100


def _io(nr: int) -> int:
    return (VFIO_TYPE << 8) | (VFIO_BASE + nr)


VFIO_GET_API_VERSION = _io(0)
VFIO_CHECK_EXTENSION = _io(1)
VFIO_SET_IOMMU = _io(2)
VFIO_GROUP_GET_STATUS = _io(3)
VFIO_GROUP_SET_CONTAINER = _io(4)
VFIO_GROUP_UNSET_CONTAINER = _io(5)
VFIO_GROUP_GET_DEVICE_FD = _io(6)
VFIO_DEVICE_GET_INFO = _io(7)
VFIO_DEVICE_GET_REGION_INFO = _io(8)
VFIO_DEVICE_GET_IRQ_INFO = _io(9)
VFIO_DEVICE_SET_IRQS = _io(10)
VFIO_DEVICE_RESET = _io(11)
VFIO_IOMMU_GET_INFO = _io(12)
VFIO_IOMMU_MAP_DMA = _io(13)
VFIO_IOMMU_UNMAP_DMA = _io(14)
#: RFC only (seed-001): never merged.
VFIO_IOMMU_ENABLE_IOPF = _io(18)

VFIO_API_VERSION = 0

# -- extensions / IOMMU models (VFIO_CHECK_EXTENSION, VFIO_SET_IOMMU) ------------------
VFIO_TYPE1_IOMMU = 1
VFIO_SPAPR_TCE_IOMMU = 2
VFIO_TYPE1v2_IOMMU = 3
VFIO_DMA_CC_IOMMU = 4
VFIO_EEH = 5
VFIO_TYPE1_NESTING_IOMMU = 6
VFIO_SPAPR_TCE_v2_IOMMU = 7
VFIO_NOIOMMU_IOMMU = 8
VFIO_UNMAP_ALL = 9
VFIO_UPDATE_VADDR = 10

IOMMU_MODEL_NAMES = {VFIO_TYPE1_IOMMU: "type1", VFIO_TYPE1v2_IOMMU: "type1v2",
                     VFIO_TYPE1_NESTING_IOMMU: "type1-nesting",
                     VFIO_SPAPR_TCE_IOMMU: "spapr-tce", VFIO_SPAPR_TCE_v2_IOMMU: "spapr-tce-v2",
                     VFIO_NOIOMMU_IOMMU: "noiommu"}

# -- group status ---------------------------------------------------------------------
VFIO_GROUP_FLAGS_VIABLE = 1 << 0
VFIO_GROUP_FLAGS_CONTAINER_SET = 1 << 1

# -- DMA map / unmap --------------------------------------------------------------------
VFIO_DMA_MAP_FLAG_READ = 1 << 0
VFIO_DMA_MAP_FLAG_WRITE = 1 << 1
VFIO_DMA_MAP_FLAG_VADDR = 1 << 2
DMA_MAP_FLAGS = VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE | VFIO_DMA_MAP_FLAG_VADDR

VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP = 1 << 0
VFIO_DMA_UNMAP_FLAG_ALL = 1 << 1
VFIO_DMA_UNMAP_FLAG_VADDR = 1 << 2
DMA_UNMAP_FLAGS = (VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP | VFIO_DMA_UNMAP_FLAG_ALL
                   | VFIO_DMA_UNMAP_FLAG_VADDR)

#: Default of the ``vfio_iommu_type1.dma_entry_limit`` module parameter (U16_MAX).
DMA_ENTRY_LIMIT = 65535

# -- device info ------------------------------------------------------------------------
VFIO_DEVICE_FLAGS_RESET = 1 << 0
VFIO_DEVICE_FLAGS_PCI = 1 << 1

VFIO_PCI_BAR0_REGION_INDEX = 0
VFIO_PCI_BAR5_REGION_INDEX = 5
VFIO_PCI_ROM_REGION_INDEX = 6
VFIO_PCI_CONFIG_REGION_INDEX = 7
VFIO_PCI_VGA_REGION_INDEX = 8
VFIO_PCI_NUM_REGIONS = 9

VFIO_REGION_INFO_FLAG_READ = 1 << 0
VFIO_REGION_INFO_FLAG_WRITE = 1 << 1
VFIO_REGION_INFO_FLAG_MMAP = 1 << 2
VFIO_REGION_INFO_FLAG_CAPS = 1 << 3

#: Size of the legacy VGA region (0xa0000-0xbffff plus the I/O ports), as vfio-pci reports.
VGA_REGION_SIZE = 0xC0000

VFIO_PCI_INTX_IRQ_INDEX = 0
VFIO_PCI_MSI_IRQ_INDEX = 1
VFIO_PCI_MSIX_IRQ_INDEX = 2
VFIO_PCI_ERR_IRQ_INDEX = 3
VFIO_PCI_REQ_IRQ_INDEX = 4
VFIO_PCI_NUM_IRQS = 5
IRQ_INDEX_NAMES = ("intx", "msi", "msix", "err", "req")

VFIO_IRQ_INFO_EVENTFD = 1 << 0
VFIO_IRQ_INFO_MASKABLE = 1 << 1
VFIO_IRQ_INFO_AUTOMASKED = 1 << 2
VFIO_IRQ_INFO_NORESIZE = 1 << 3

VFIO_IRQ_SET_DATA_NONE = 1 << 0
VFIO_IRQ_SET_DATA_BOOL = 1 << 1
VFIO_IRQ_SET_DATA_EVENTFD = 1 << 2
VFIO_IRQ_SET_ACTION_MASK = 1 << 3
VFIO_IRQ_SET_ACTION_UNMASK = 1 << 4
VFIO_IRQ_SET_ACTION_TRIGGER = 1 << 5
VFIO_IRQ_SET_DATA_TYPE_MASK = (VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_DATA_BOOL
                               | VFIO_IRQ_SET_DATA_EVENTFD)
VFIO_IRQ_SET_ACTION_TYPE_MASK = (VFIO_IRQ_SET_ACTION_MASK | VFIO_IRQ_SET_ACTION_UNMASK
                                 | VFIO_IRQ_SET_ACTION_TRIGGER)

# -- IOMMU faults (include/linux/iommu.h, as used by the RFC) ---------------------------
IOMMU_FAULT_PERM_READ = 1 << 0
IOMMU_FAULT_PERM_WRITE = 1 << 1
IOMMU_FAULT_PERM_EXEC = 1 << 2
IOMMU_FAULT_PERM_PRIV = 1 << 3

IOMMU_PAGE_RESP_SUCCESS = 0
IOMMU_PAGE_RESP_INVALID = 1
IOMMU_PAGE_RESP_FAILURE = 2
PAGE_RESP_NAMES = {0: "success", 1: "invalid", 2: "failure"}

#: Pages the RFC maps per fault: the faulting page and up to 511 after it.
IOPF_PREMAP_LEN = 512
