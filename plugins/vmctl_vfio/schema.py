"""The ``vfio-pci`` device kind (semantics.md §2.8, §2.10)."""

from vmctl.api import DeviceKind, Option

VFIO_PCI = DeviceKind("vfio-pci", "a host PCI device passed through with VFIO (-device vfio-pci)", (
    Option("host", "str", "host PCI address, domain:bus:slot.function, e.g. 0000:03:00.0", required=True),
    Option("iommu", "str", "IOMMU backend: type1 (the VFIO container) or iommufd (Linux 6.2+, QEMU 8.2+)",
           default="type1", choices=("type1", "iommufd")),
    Option("iopf", "bool", "map guest memory on I/O page faults instead of pinning it all (the unmerged "
           "VFIO_IOMMU_ENABLE_IOPF RFC: simulator only, needs experimental = true)", default=False),
    Option("prefault", "int", "pages mapped per I/O page fault: the faulting page and up to N-1 after it",
           default=512, minimum=1, maximum=512),
    Option("experimental", "bool", "allow unmerged kernel interfaces on this device (simulator only)",
           default=False),
), arches=("x86_64", "aarch64", "ppc64"))


def device_kinds() -> list[DeviceKind]:
    """``vmctl_device_kinds``: the ``vfio-pci`` kind."""
    return [VFIO_PCI]
