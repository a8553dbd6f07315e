"""VFIO container, group and device fds: the legacy type1 lifecycle (semantics.md §2.3).

::

    Container  EMPTY --SET_CONTAINER(g1)--> HAS_GROUPS --SET_IOMMU(t)--> IOMMU_SET
               IOMMU_SET --SET_CONTAINER(gN)--> IOMMU_SET     (gN attached to the domain)
               last group leaves --> EMPTY  (mappings torn down, pins released, IOPF gone)
    Group      CLOSED --open--> OPEN --SET_CONTAINER--> IN_CONTAINER --UNSET--> OPEN
    Device fd  only for a VFIO-bound device of a group whose container has its IOMMU set

Errors, as ``group.c`` / ``container.c`` / ``vfio_iommu_type1.c`` return them:

* open ``/dev/vfio/N``: no VFIO-bound device in the group → ENOENT; already open → EBUSY.
* ``GROUP_SET_CONTAINER``: group already in a container → EINVAL; a device in the group
  bound to a DMA-doing host driver → EPERM; joining a container whose IOMMU is set and the
  platform lacks interrupt remapping without ``allow_unsafe_interrupts`` → EPERM.
* ``SET_IOMMU``: no group, or already set → EINVAL; model not offered → ENODEV.
* container ioctls for the IOMMU (MAP/UNMAP/GET_INFO/ENABLE_IOPF) before SET_IOMMU → EINVAL;
  an ioctl type1 does not know (there is no DISABLE_IOPF) → ENOTTY.
* ``GET_DEVICE_FD``: name not a VFIO device of the group → ENODEV; IOMMU not set → EINVAL.
* ``GROUP_UNSET_CONTAINER``: not in a container → EINVAL; device fds open → EBUSY.
* closing a group fd with device fds open defers the detach to the last device close.

A device's DMA (:func:`device_access`) needs every page mapped with the access it makes,
or it aborts with a DMA fault; on an IOPF container (:mod:`.iopf`) a missing page raises a
page request first.
"""

from __future__ import annotations

import enum
import errno
from collections.abc import Iterable
from dataclasses import dataclass, field

from vmctl.api import ModelError

from . import uapi as u
from .dma import X86_IOVA_RANGES, DmaSpace
from .iopf import AccessResult, IopfState, enable_iopf
from .mm import Process
from .pcibus import is_dma_safe, is_vfio_driver
from .pcidev import PciFunction, VfioPciDevice


class ContainerState(str, enum.Enum):
    EMPTY = "empty"
    HAS_GROUPS = "has-groups"
    IOMMU_SET = "iommu-set"


class GroupState(str, enum.Enum):
    CLOSED = "closed"
    OPEN = "open"
    IN_CONTAINER = "in-container"


@dataclass
class GroupDevice:
    """A device of an IOMMU group, as the host has it bound.

    ``iopf_capable``: the IOMMU can take page requests from it (PCIe PRI, SMMU stall);
    ``fault_handler_busy``: another IOMMU fault handler is already registered for it.
    """

    address: str
    driver: str | None = "vfio-pci"
    function: PciFunction = field(default_factory=PciFunction)
    iopf_capable: bool = True
    fault_handler_busy: bool = False
    iopf_enabled: bool = False
    fault_report: str = ""               #: "flat" or "nested-l2" once IOPF is enabled


class Group:
    """An IOMMU group and its ``/dev/vfio/N`` fd."""

    def __init__(self, group_id: int, devices: Iterable[GroupDevice], *,
                 msi_isolated: bool = True) -> None:
        self.id = group_id
        self.devices = {d.address: d for d in devices}
        self.msi_isolated = msi_isolated          #: interrupt remapping covers the group
        self.state = GroupState.CLOSED
        self.container: Container | None = None
        self.open_devices: list[DeviceFd] = []
        self.fd_open = False

    @property
    def viable(self) -> bool:
        return all(is_dma_safe(d.driver) for d in self.devices.values())

    @property
    def has_vfio_device(self) -> bool:
        return any(is_vfio_driver(d.driver) for d in self.devices.values())

    def _require_open(self) -> None:
        if not self.fd_open:
            raise ModelError(errno.EBADF, f"group {self.id} fd is closed")

    def status(self) -> int:
        """``VFIO_GROUP_GET_STATUS`` flags."""
        self._require_open()
        if self.container is not None:
            return u.VFIO_GROUP_FLAGS_VIABLE | u.VFIO_GROUP_FLAGS_CONTAINER_SET
        return u.VFIO_GROUP_FLAGS_VIABLE if self.viable else 0

    def set_container(self, container: Container) -> None:
        """``VFIO_GROUP_SET_CONTAINER``."""
        self._require_open()
        if self.container is not None:
            raise ModelError(errno.EINVAL, f"group {self.id} is already in a container")
        if container.closed:
            raise ModelError(errno.EBADF, "container fd is closed")
        if not self.viable:
            busy = ", ".join(f"{d.address} ({d.driver})" for d in self.devices.values()
                             if not is_dma_safe(d.driver))
            raise ModelError(errno.EPERM, f"group {self.id} is not viable: {busy} bound to "
                                          "a host driver")
        container._attach(self)
        self.container = container
        self.state = GroupState.IN_CONTAINER

    def unset_container(self) -> None:
        """``VFIO_GROUP_UNSET_CONTAINER``."""
        self._require_open()
        if self.container is None:
            raise ModelError(errno.EINVAL, f"group {self.id} is not in a container")
        if self.open_devices:
            raise ModelError(errno.EBUSY, f"group {self.id} has {len(self.open_devices)} "
                                          "device fd(s) open")
        self._detach()
        self.state = GroupState.OPEN

    def _detach(self) -> None:
        assert self.container is not None
        self.container._detach(self)
        self.container = None

    def get_device_fd(self, name: str) -> DeviceFd:
        """``VFIO_GROUP_GET_DEVICE_FD``."""
        self._require_open()
        dev = self.devices.get(name)
        if dev is None or not is_vfio_driver(dev.driver):
            raise ModelError(errno.ENODEV, f"{name!r} is not a VFIO device of group {self.id}")
        if self.container is None or self.container.state is not ContainerState.IOMMU_SET:
            raise ModelError(errno.EINVAL, f"group {self.id}: container IOMMU is not set")
        fd = DeviceFd(self, dev)
        self.open_devices.append(fd)
        return fd

    def close(self) -> None:
        """Release the group fd; the container link goes with the last device fd."""
        self._require_open()
        self.fd_open = False
        if not self.open_devices and self.container is not None:
            self._detach()
        if self.container is None:
            self.state = GroupState.CLOSED

    def _device_closed(self, fd: DeviceFd) -> None:
        self.open_devices.remove(fd)
        if not self.fd_open and not self.open_devices:
            if self.container is not None:
                self._detach()
            self.state = GroupState.CLOSED


class DeviceFd:
    """A device fd from ``GET_DEVICE_FD``: the vfio-pci device model plus its group."""

    def __init__(self, group: Group, dev: GroupDevice) -> None:
        self.group = group
        self.dev = dev
        self.pci = VfioPciDevice(dev.address, dev.function)
        self.open = True

    def close(self) -> None:
        if not self.open:
            raise ModelError(errno.EBADF, f"{self.dev.address}: device fd already closed")
        self.open = False
        self.group._device_closed(self)


class Container:
    """A ``/dev/vfio/vfio`` container fd and, once SET_IOMMU ran, its type1 backend."""

    def __init__(self, host: VfioHost) -> None:
        self.host = host
        self.groups: list[Group] = []
        self.iommu_type: int | None = None
        self.dma: DmaSpace | None = None
        self.iopf: IopfState | None = None    #: once ENABLE_IOPF succeeded
        self.dma_faults = 0       #: unrecoverable DMA translation faults (no IOPF)
        self.closed = False

    @property
    def state(self) -> ContainerState:
        if self.iommu_type is not None:
            return ContainerState.IOMMU_SET
        return ContainerState.HAS_GROUPS if self.groups else ContainerState.EMPTY

    # -- container ioctls -----------------------------------------------------------------
    def api_version(self) -> int:
        return u.VFIO_API_VERSION

    def check_extension(self, ext: int) -> int:
        """``VFIO_CHECK_EXTENSION``: 1 when the type1 backend offers ``ext``."""
        if ext in self.host.iommu_models or ext in (u.VFIO_UNMAP_ALL, u.VFIO_UPDATE_VADDR):
            return 1
        if ext == u.VFIO_DMA_CC_IOMMU:
            return int(self.dma is not None)
        return 0

    def set_iommu(self, model: int) -> None:
        """``VFIO_SET_IOMMU``: allowed once, and only with a group in the container."""
        if not self.groups or self.iommu_type is not None:
            raise ModelError(errno.EINVAL, "SET_IOMMU: no group in the container, or the "
                                           "IOMMU model is already set")
        if model not in self.host.iommu_models:
            raise ModelError(errno.ENODEV, f"SET_IOMMU: no VFIO IOMMU driver offers {model}")
        for g in self.groups:
            self._check_msi(g)
        h = self.host
        self.dma = DmaSpace(h.process, v2=model != u.VFIO_TYPE1_IOMMU,
                            iova_ranges=h.iova_ranges, dma_entry_limit=h.dma_entry_limit,
                            wrap_errno=h.wrap_errno)
        self.iommu_type = model

    def _check_msi(self, group: Group) -> None:
        if not group.msi_isolated and not self.host.allow_unsafe_interrupts:
            raise ModelError(errno.EPERM, f"group {group.id}: no interrupt remapping support; "
                                          "use vfio_iommu_type1.allow_unsafe_interrupts=1")

    def _backend(self) -> DmaSpace:
        if self.dma is None:
            raise ModelError(errno.EINVAL, "container IOMMU model not set (SET_IOMMU first)")
        return self.dma

    def map_dma(self, iova: int, size: int, vaddr: int,
                flags: int = u.VFIO_DMA_MAP_FLAG_READ | u.VFIO_DMA_MAP_FLAG_WRITE) -> None:
        """``VFIO_IOMMU_MAP_DMA`` (see :meth:`.dma.DmaSpace.map`)."""
        self._backend().map(iova, size, vaddr, flags)

    def unmap_dma(self, iova: int, size: int, flags: int = 0) -> int:
        """``VFIO_IOMMU_UNMAP_DMA`` (see :meth:`.dma.DmaSpace.unmap`)."""
        return self._backend().unmap(iova, size, flags)

    def get_info(self) -> dict[str, object]:
        """``VFIO_IOMMU_GET_INFO``."""
        return self._backend().info()

    def enable_iopf(self, prefault: int = u.IOPF_PREMAP_LEN) -> None:
        """``VFIO_IOMMU_ENABLE_IOPF`` — the unmerged RFC; see :mod:`.iopf`.

        ``prefault`` is the pages mapped per fault (the RFC: 512)."""
        dma = self._backend()
        self.iopf = enable_iopf(dma, self.host.process,
                                [d for g in self.groups for d in g.devices.values()],
                                prefault=prefault,
                                nested=self.iommu_type == u.VFIO_TYPE1_NESTING_IOMMU)

    def ioctl(self, name: str) -> None:
        """Any other container ioctl: EINVAL before SET_IOMMU, ENOTTY from type1 after.

        ``container.ioctl("VFIO_IOMMU_DISABLE_IOPF")`` shows that the RFC has no disable.
        """
        self._backend()
        raise ModelError(errno.ENOTTY, f"{name}: type1 has no such ioctl")

    def close(self) -> None:
        """Release the container fd; attached groups keep the container alive."""
        self.closed = True

    # -- group attach / detach --------------------------------------------------------------
    def _attach(self, group: Group) -> None:
        if self.iommu_type is not None:
            self._check_msi(group)
            if self.iopf is not None:
                self.iopf.attach(group.devices.values())   # no replay: nothing is pinned
        self.groups.append(group)

    def _detach(self, group: Group) -> None:
        if self.iopf is not None:
            self.iopf.detach(group.devices.values())
        self.groups.remove(group)
        if not self.groups and self.iommu_type is not None:
            assert self.dma is not None
            self.dma.release()
            if self.iopf is not None:
                self.iopf.release()
                self.iopf = None
            self.dma = None
            self.iommu_type = None

    def to_json(self) -> dict[str, object]:
        """Monitor view (semantics.md §2.9)."""
        d: dict[str, object] = {"state": self.state.value,
                                "iommu": u.IOMMU_MODEL_NAMES.get(self.iommu_type or 0),
                                "groups": [g.id for g in self.groups]}
        if self.dma is not None:
            d.update(mappings=len(self.dma), dma_avail=self.dma.dma_avail,
                     mapped_bytes=self.dma.mapped_bytes,
                     locked_bytes=self.dma.locked_pages * self.dma.page_size,
                     memlock_limit=self.host.process.memlock_limit)
        if self.iopf is not None:
            d["iopf"] = self.iopf.counters()
        return d


class VfioHost:
    """The kernel side: IOMMU groups with ``/dev/vfio/N`` nodes, the QEMU process, and
    the ``vfio_iommu_type1`` module parameters."""

    def __init__(self, groups: Iterable[Group], process: Process | None = None, *,
                 allow_unsafe_interrupts: bool = False,
                 dma_entry_limit: int = u.DMA_ENTRY_LIMIT, wrap_errno: int = errno.EOVERFLOW,
                 iova_ranges: tuple[tuple[int, int], ...] = X86_IOVA_RANGES,
                 nesting: bool = False) -> None:
        self.groups = {g.id: g for g in groups}
        self.process = process or Process()
        self.allow_unsafe_interrupts = allow_unsafe_interrupts
        self.dma_entry_limit = dma_entry_limit
        self.wrap_errno = wrap_errno
        self.iova_ranges = iova_ranges
        self.iommu_models = {u.VFIO_TYPE1_IOMMU, u.VFIO_TYPE1v2_IOMMU}
        if nesting:
            self.iommu_models.add(u.VFIO_TYPE1_NESTING_IOMMU)

    def open_container(self) -> Container:
        """``open("/dev/vfio/vfio")``."""
        return Container(self)

    def open_group(self, group_id: int) -> Group:
        """``open("/dev/vfio/N")``."""
        g = self.groups.get(group_id)
        if g is None or not g.has_vfio_device:
            raise ModelError(errno.ENOENT, f"/dev/vfio/{group_id}: no such group node")
        if g.fd_open or g.state is not GroupState.CLOSED:
            raise ModelError(errno.EBUSY, f"/dev/vfio/{group_id} is already open")
        g.fd_open = True
        g.state = GroupState.OPEN
        return g


# -- the device side: DMA through the IOMMU --------------------------------------------------
def device_access(fd: DeviceFd, iova: int, size: int, write: bool = False) -> AccessResult:
    """The device behind ``fd`` reads (or writes) IOVA ``[iova, iova+size)``.

    Without IOPF every page must lie in a mapping granting the access, or the transfer
    aborts with a DMA fault.  With IOPF a missing page raises a page request first
    (:meth:`.iopf.IopfState.access`).
    """
    group = fd.group
    container = group.container
    if not fd.open or container is None or container.dma is None:
        raise ModelError(errno.EBADF, f"{fd.dev.address}: device is not attached")
    dma = container.dma
    shift = dma.page_shift
    first = iova >> shift
    last = (iova + size + dma.page_size - 1) >> shift
    state = container.iopf
    if state is not None and fd.dev.iopf_enabled:
        return state.access(first, last, write)
    result = AccessResult(last - first)
    need = u.VFIO_DMA_MAP_FLAG_WRITE if write else u.VFIO_DMA_MAP_FLAG_READ
    page = first
    while page < last:
        m = dma.find(page << shift)
        if m is None or not m.prot & need:
            container.dma_faults += 1
            result.aborted = True
            return result
        page = m.end >> shift
    return result
