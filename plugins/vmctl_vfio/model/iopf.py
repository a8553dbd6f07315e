"""I/O page faults for type1 containers — the **unmerged** RFC (seed-001), as an experiment.

``VFIO_IOMMU_ENABLE_IOPF`` was never merged; upstream delivers faults to userspace through
iommufd fault queues since Linux 6.11 and never services them by pinning guest memory.
This module models what the RFC v3 series would have done (semantics.md §2.6):

* enable only on a container whose IOMMU is set (before: EINVAL, the container has no
  backend yet) and — enforced here, only documented in the RFC — before any DMA mapping
  and only once (EINVAL); there is no disable ioctl (ENOTTY, see
  :meth:`.container.Container.ioctl`).  The ioctl is
  :meth:`.container.Container.enable_iopf`, which hands :func:`enable_iopf` the
  container's type1 backend, process and devices.
* per device: enable the IOPF feature (not supported → ENODEV), pick the report mode
  (``nested-l2`` on a nesting container, else ``flat``), register the fault handler
  (already taken → EBUSY, feature disabled again).  Any failure unwinds every device
  enabled so far and the MMU notifier.
* a group attached later gets IOPF enabled for its devices and no replay of mappings
  (:meth:`IopfState.attach`, called by the container).
* MAP_DMA pins nothing and maps nothing.  A page request finds the mapping (none →
  INVALID), checks permissions (more than the mapping grants → INVALID), answers SUCCESS at
  once if the page is mapped, else maps the page plus up to ``prefault - 1`` following pages,
  stopping at the first mapped page, the end of the mapping or the end of the process's
  memory, pins them only for the duration of the fault, and answers SUCCESS.  A device's
  DMA (:func:`.container.device_access`) raises those page requests through
  :meth:`IopfState.access`.
* the MMU notifier unmaps the IOVAs of host memory that goes away; the next access faults.

Counters follow §2.9: faults, successes, invalid responses, pages mapped by faults and by
prefault, invalidations and pages invalidated; locked memory stays zero.

Nothing here knows the container: it hands this module its type1 backend
(:class:`~.dma.DmaSpace`), its process and its devices (anything shaped like
:class:`IopfDevice`), and keeps the :class:`IopfState` it gets back.
"""

from __future__ import annotations

import errno
from collections.abc import Iterable
from typing import Protocol

from vmctl.api import ModelError

from . import uapi as u
from .dma import DmaSpace
from .mm import Process


class IopfDevice(Protocol):
    """What IOPF needs of a device of a group (:class:`.container.GroupDevice` is one)."""

    address: str
    iopf_capable: bool
    fault_handler_busy: bool
    iopf_enabled: bool
    fault_report: str


class AccessResult:
    """What one device DMA of ``pages`` pages met: page requests raised, and whether the
    transfer was aborted (an INVALID response, or an unrecoverable translation fault)."""

    __slots__ = ("pages", "faults", "aborted")

    def __init__(self, pages: int, faults: int = 0, aborted: bool = False) -> None:
        self.pages = pages
        self.faults = faults
        self.aborted = aborted

    def __repr__(self) -> str:
        return f"AccessResult(pages={self.pages}, faults={self.faults}, aborted={self.aborted})"


class IopfState:
    """The RFC's per-container IOPF state: enabled devices, MMU notifier and counters.

    ``dma`` is the container's type1 backend, ``process`` the user process whose memory
    it maps, ``nested`` whether the container's IOMMU model is type1 nesting."""

    def __init__(self, dma: DmaSpace, process: Process, prefault: int = u.IOPF_PREMAP_LEN,
                 nested: bool = False) -> None:
        if not 1 <= prefault <= u.IOPF_PREMAP_LEN:
            raise ValueError(f"prefault must be 1..{u.IOPF_PREMAP_LEN}")
        self.dma = dma
        self.process = process
        self.prefault = prefault
        self.nested = nested
        self.faults = 0
        self.success = 0
        self.invalid = 0
        self.already_mapped = 0
        self.pages_faulted = 0
        self.pages_prefaulted = 0
        self.invalidations = 0
        self.pages_invalidated = 0
        #: (first page, end page, prot, resident.version) of the last resident stretch a
        #: device hit inside one mapping: a cache for :meth:`access`.
        self.window: tuple[int, int, int, int] = (0, 0, 0, -1)
        self.process.register_notifier(self.invalidate)

    def release(self) -> None:
        """Container teardown: drop the MMU notifier."""
        self.process.unregister_notifier(self.invalidate)

    # -- the fault handler -----------------------------------------------------------------
    def handle(self, addr: int, perm: int) -> int:
        """A page request for IOVA ``addr`` with ``IOMMU_FAULT_PERM_*`` bits; returns the
        page response code (``IOMMU_PAGE_RESP_SUCCESS`` or ``_INVALID``)."""
        self.faults += 1
        dma = self.dma
        shift = dma.page_shift
        m = dma.find(addr)
        need = (u.VFIO_DMA_MAP_FLAG_READ if perm & u.IOMMU_FAULT_PERM_READ else 0) \
            | (u.VFIO_DMA_MAP_FLAG_WRITE if perm & u.IOMMU_FAULT_PERM_WRITE else 0)
        if m is None or m.vaddr_invalid or need & ~m.prot:
            self.invalid += 1
            return u.IOMMU_PAGE_RESP_INVALID
        page = addr >> shift
        resident = dma.resident
        if page in resident:
            self.already_mapped += 1
            self.success += 1
            return u.IOMMU_PAGE_RESP_SUCCESS
        limit = page + self.prefault
        end = m.end >> shift
        if end < limit:
            limit = end
        nxt = resident.next_start(page)
        if nxt is not None and nxt < limit:
            limit = nxt
        vaddr = m.vaddr + ((page << shift) - m.iova)
        pinnable, _ = self.process.count_pinnable(vaddr, limit - page)
        if not pinnable:
            self.invalid += 1
            return u.IOMMU_PAGE_RESP_INVALID
        resident.add(page, page + pinnable)       # pin → IOMMU map → set bits → unpin
        self.success += 1
        self.pages_faulted += 1
        self.pages_prefaulted += pinnable - 1
        return u.IOMMU_PAGE_RESP_SUCCESS

    def invalidate(self, start: int, end: int) -> None:
        """MMU notifier: host VAs ``[start, end)`` changed; unmap their IOVAs."""
        dma = self.dma
        shift = dma.page_shift
        removed = 0
        for m in dma.mappings():
            lo = max(start, m.vaddr)
            hi = min(end, m.vaddr + m.size)
            if lo >= hi:
                continue
            first = (m.iova + (lo - m.vaddr)) >> shift
            last = (m.iova + (hi - m.vaddr) + dma.page_size - 1) >> shift
            removed += dma.resident.remove(first, last)
        if removed:
            self.invalidations += 1
            self.pages_invalidated += removed

    def counters(self) -> dict[str, int]:
        return {"faults": self.faults, "success": self.success, "invalid": self.invalid,
                "already_mapped": self.already_mapped, "pages_faulted": self.pages_faulted,
                "pages_prefaulted": self.pages_prefaulted, "invalidations": self.invalidations,
                "pages_invalidated": self.pages_invalidated,
                "mapped_pages": len(self.dma.resident), "locked_pages": self.dma.locked_pages,
                "prefault": self.prefault}

    # -- the device side ---------------------------------------------------------------------
    def attach(self, devices: Iterable[IopfDevice]) -> None:
        """A group joins the IOPF container: enable its devices (unwound on failure)."""
        _enable_devices(devices, self.nested)

    def detach(self, devices: Iterable[IopfDevice]) -> None:
        """A group leaves the IOPF container: its devices' IOPF goes with it."""
        for dev in devices:
            _disable_device(dev)

    def access(self, first: int, last: int, write: bool) -> AccessResult:
        """A device with IOPF enabled reads (or writes) IOVA pages ``[first, last)``: a
        missing page raises a page request first; an INVALID response aborts the transfer."""
        result = AccessResult(last - first)
        dma = self.dma
        shift = dma.page_shift
        need = u.VFIO_DMA_MAP_FLAG_WRITE if write else u.VFIO_DMA_MAP_FLAG_READ
        resident = dma.resident
        lo, hi, prot, version = self.window              # last resident stretch seen
        if version == resident.version and lo <= first and last <= hi and prot & need:
            return result
        perm = u.IOMMU_FAULT_PERM_WRITE if write else u.IOMMU_FAULT_PERM_READ
        page = first
        while page < last:
            run = resident.run_at(page)
            if run is not None:
                m = dma.find(page << shift)
                if m is not None and m.prot & need:
                    end = m.end >> shift
                    start = m.iova >> shift
                    lo = run[0] if run[0] > start else start
                    hi = run[1] if run[1] < end else end
                    self.window = (lo, hi, m.prot, resident.version)
                    page = hi
                    continue
            result.faults += 1
            if self.handle(page << shift, perm) != u.IOMMU_PAGE_RESP_SUCCESS:
                result.aborted = True
                return result
        return result


# -- enable ------------------------------------------------------------------------------------
def _enable_device(dev: IopfDevice, nested: bool) -> None:
    if not dev.iopf_capable:
        raise ModelError(errno.ENODEV, f"{dev.address}: IOMMU_DEV_FEAT_IOPF not supported")
    dev.iopf_enabled = True                        # iommu_dev_enable_feature()
    if dev.fault_handler_busy:
        dev.iopf_enabled = False                   # out_disable
        raise ModelError(errno.EBUSY, f"{dev.address}: a fault handler is already registered")
    dev.fault_report = "nested-l2" if nested else "flat"


def _disable_device(dev: IopfDevice) -> None:
    dev.iopf_enabled = False
    dev.fault_report = ""


def _enable_devices(devices: Iterable[IopfDevice], nested: bool) -> None:
    done: list[IopfDevice] = []
    try:
        for dev in devices:
            _enable_device(dev, nested)
            done.append(dev)
    except ModelError:
        for dev in reversed(done):
            _disable_device(dev)
        raise


def enable_iopf(dma: DmaSpace, process: Process, devices: Iterable[IopfDevice], *,
                prefault: int = u.IOPF_PREMAP_LEN, nested: bool = False) -> IopfState:
    """``VFIO_IOMMU_ENABLE_IOPF`` on a type1 backend: ``devices`` are those of every group
    in the container.  Returns the state the container keeps."""
    if dma.iopf:
        raise ModelError(errno.EINVAL, "ENABLE_IOPF: already enabled (there is no disable)")
    if len(dma):
        raise ModelError(errno.EINVAL, "ENABLE_IOPF must come right after SET_IOMMU, before "
                                       f"any MAP_DMA ({len(dma)} mapping(s) exist)")
    state = IopfState(dma, process, prefault, nested)      # mmgrab + mmu_notifier_register
    try:
        _enable_devices(devices, nested)
    except ModelError:
        state.release()                            # out_unregister / out_drop
        raise
    dma.iopf = True
    return state
