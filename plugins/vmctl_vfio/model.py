"""The VFIO simulation model, in one import.

The model is split by concern; this module gathers the public names:

* :mod:`~vmctl_vfio.container` — container / group / device-fd lifecycle (§2.3);
* :mod:`~vmctl_vfio.dma` — type1 MAP/UNMAP rules and pinned-page accounting (§2.4);
* :mod:`~vmctl_vfio.mm` — the user process: VMAs, ``locked_vm``, RLIMIT_MEMLOCK, MMU
  notifiers;
* :mod:`~vmctl_vfio.pcidev` — vfio-pci regions and interrupts (§2.5);
* :mod:`~vmctl_vfio.iopf` — the unmerged ``VFIO_IOMMU_ENABLE_IOPF`` RFC (§2.6), experimental;
* :mod:`~vmctl_vfio.workload` — a seeded device DMA workload and the IOPF ramp-up.

Every operation either succeeds or raises :class:`vmctl.model.ModelError` with the errno
the kernel returns.  Nothing here does I/O, reads a clock or starts a thread.

A session, as QEMU runs it::

    host = VfioHost([Group(7, [GroupDevice("0000:03:00.0")])], Process(64 << 20))
    container = host.open_container()
    group = host.open_group(7)
    group.set_container(container)
    container.set_iommu(uapi.VFIO_TYPE1v2_IOMMU)
    container.map_dma(0, 32 << 20, vaddr)        # pins 32 MiB: locked_vm grows
    device = group.get_device_fd("0000:03:00.0")
"""

from vmctl.api import ModelError
from vmctl_vfio import uapi
from vmctl_vfio.container import (Container, ContainerState, DeviceFd, Group, GroupDevice,
                                  GroupState, VfioHost)
from vmctl_vfio.dma import X86_IOVA_RANGES, DmaSpace, Mapping
from vmctl_vfio.iopf import AccessResult, IopfState, device_access, enable_iopf
from vmctl_vfio.mm import Process, VmaKind
from vmctl_vfio.pcidev import IrqInfo, PciFunction, RegionInfo, VfioPciDevice
from vmctl_vfio.workload import (DmaWorkload, Pattern, RampUp, Sample, WorkloadSpec,
                                 q35_ram_layout, rampup)

__all__ = ["AccessResult", "Container", "ContainerState", "DeviceFd", "DmaSpace",
           "DmaWorkload", "Group", "GroupDevice", "GroupState", "IopfState", "IrqInfo",
           "Mapping", "ModelError", "Pattern", "PciFunction", "Process", "RampUp",
           "RegionInfo", "Sample", "VfioHost", "VfioPciDevice", "VmaKind", "WorkloadSpec",
           "X86_IOVA_RANGES", "device_access", "enable_iopf", "q35_ram_layout", "rampup",
           "uapi"]
