"""The kernel side of VFIO, split by concern; import from the part you need.

* :mod:`.uapi` — the ``<linux/vfio.h>`` constants and limits the model uses;
* :mod:`.intervals` — page-run sets (resident IOVA pages, pinned pages);
* :mod:`.mm` — the user process: VMAs, ``locked_vm``, RLIMIT_MEMLOCK, MMU notifiers;
* :mod:`.dma` — type1 MAP/UNMAP rules and pinned-page accounting (§2.4);
* :mod:`.pcidev` — vfio-pci regions and interrupts (§2.5);
* :mod:`.iopf` — the unmerged ``VFIO_IOMMU_ENABLE_IOPF`` RFC (§2.6), experimental: the
  per-container fault handler, MMU notifier and counters;
* :mod:`.container` — container / group / device-fd lifecycle (§2.3), and a device's DMA
  through its container's IOMMU;
* :mod:`.workload` — a seeded device DMA workload and the IOPF ramp-up;
* :mod:`.pcibus` — the PCI driver core seen from sysfs (matching, bind, unbind, probe) and
  the PCI function record the host reader and the fake kernel share.

Every operation either succeeds or raises :class:`vmctl.api.ModelError` with the errno
the kernel returns.  Nothing here does I/O, reads a clock or starts a thread.

A session, as QEMU runs it::

    from vmctl_vfio.model import uapi
    from vmctl_vfio.model.container import Group, GroupDevice, VfioHost
    from vmctl_vfio.model.mm import Process

    host = VfioHost([Group(7, [GroupDevice("0000:03:00.0")])], Process(64 << 20))
    container = host.open_container()
    group = host.open_group(7)
    group.set_container(container)
    container.set_iommu(uapi.VFIO_TYPE1v2_IOMMU)
    container.map_dma(0, 32 << 20, vaddr)        # pins 32 MiB: locked_vm grows
    device = group.get_device_fd("0000:03:00.0")
"""
