"""Type1 DMA mapping: ``VFIO_IOMMU_MAP_DMA`` / ``UNMAP_DMA`` and pinned-page accounting.

One :class:`DmaSpace` is the type1 backend's per-container state (``struct vfio_iommu``):
the DMA mappings sorted by IOVA, the mapping-count budget (``dma_entry_limit`` →
``DMA_AVAIL``), the valid IOVA windows and the pages it charged to the process.  Checks run
in the kernel's order, so the errno for a request that breaks several rules is the one the
kernel returns (semantics.md §2.4, ``vfio_iommu_type1.c``):

=======================================  =============================================
MAP with neither READ nor WRITE, size 0,  ``EINVAL``
unaligned iova/size/vaddr, unknown flags
``iova + size`` wraps                     ``EINVAL`` before the 2025 overflow rework,
                                          ``EOVERFLOW`` after (``wrap_errno``)
overlaps an existing mapping              ``EEXIST``
no mapping slot left                      ``ENOSPC``
outside the IOVA windows (MSI hole)       ``EINVAL``
pin over RLIMIT_MEMLOCK                   ``ENOMEM`` (nothing left mapped)
vaddr not mapped in the process           ``EFAULT``
UNMAP bisecting a mapping (type1v2)       ``EINVAL``
=======================================  =============================================

With IOPF (the RFC, :mod:`.iopf`) MAP records the mapping but pins and maps
nothing; :attr:`DmaSpace.resident` then holds the IOVA pages faults have mapped.
"""

from __future__ import annotations

import errno
from bisect import bisect_left, bisect_right

from vmctl.api import ModelError

from . import uapi
from .intervals import RunSet
from .mm import Process

U64_MAX = (1 << 64) - 1

#: x86 VT-d with a 48-bit address width: everything but the interrupt (MSI) window.
X86_IOVA_RANGES: tuple[tuple[int, int], ...] = ((0, 0xFEDFFFFF), (0xFEF00000, (1 << 48) - 1))

_READ = uapi.VFIO_DMA_MAP_FLAG_READ
_WRITE = uapi.VFIO_DMA_MAP_FLAG_WRITE
_VADDR = uapi.VFIO_DMA_MAP_FLAG_VADDR


class Mapping:
    """One ``struct vfio_dma``: IOVA ``[iova, end)`` backed by process memory at ``vaddr``."""

    __slots__ = ("iova", "end", "vaddr", "prot", "charged", "vaddr_invalid")

    def __init__(self, iova: int, end: int, vaddr: int, prot: int, charged: int) -> None:
        self.iova = iova
        self.end = end
        self.vaddr = vaddr
        self.prot = prot              #: VFIO_DMA_MAP_FLAG_READ | _WRITE
        self.charged = charged        #: pages charged to locked_vm by this mapping
        self.vaddr_invalid = False

    @property
    def size(self) -> int:
        return self.end - self.iova

    def to_json(self) -> dict[str, int | bool]:
        return {"iova": self.iova, "size": self.size, "vaddr": self.vaddr, "prot": self.prot,
                "locked_pages": self.charged}


class DmaSpace:
    """The DMA mappings of one type1 container.

    ``v2`` selects ``VFIO_TYPE1v2_IOMMU`` unmap rules (no bisecting) over type1's.
    """

    def __init__(self, process: Process, *, v2: bool = True, page_size: int = uapi.PAGE_SIZE,
                 iova_ranges: tuple[tuple[int, int], ...] = X86_IOVA_RANGES,
                 dma_entry_limit: int = uapi.DMA_ENTRY_LIMIT,
                 wrap_errno: int = errno.EOVERFLOW) -> None:
        if wrap_errno not in (errno.EINVAL, errno.EOVERFLOW):
            raise ValueError("wrap_errno is EINVAL (older kernels) or EOVERFLOW (2025+)")
        self.process = process
        self.v2 = v2
        self.page_size = page_size
        self.page_shift = page_size.bit_length() - 1
        self.iova_ranges = tuple(sorted(iova_ranges))
        self.dma_entry_limit = dma_entry_limit
        self.dma_avail = dma_entry_limit
        self.wrap_errno = wrap_errno
        self.iopf = False                  #: set by iopf.enable_iopf(): map without pinning
        self.resident = RunSet()           #: IOPF: IOVA page numbers the IOMMU maps now
        self.locked_pages = 0              #: pages this space charged to locked_vm
        self.mapped_bytes = 0
        self.vaddr_invalid_count = 0
        self._starts: list[int] = []
        self._maps: list[Mapping] = []

    # -- lookups --------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._maps)

    def mappings(self) -> list[Mapping]:
        return list(self._maps)

    def find(self, iova: int) -> Mapping | None:
        """The mapping containing byte ``iova``, or None."""
        i = bisect_right(self._starts, iova) - 1
        if i >= 0:
            m = self._maps[i]
            if iova < m.end:
                return m
        return None

    def _overlapping(self, iova: int, end: int) -> tuple[int, int]:
        """Index range ``[i, j)`` of mappings that intersect ``[iova, end)``."""
        i = bisect_right(self._starts, iova) - 1
        if i < 0 or self._maps[i].end <= iova:
            i += 1
        j = bisect_left(self._starts, end)
        return i, j

    @property
    def iommu_mapped_pages(self) -> int:
        """Pages the IOMMU translates now: everything mapped, or what faults brought in."""
        if self.iopf:
            return len(self.resident)
        return self.mapped_bytes >> self.page_shift

    def info(self) -> dict[str, object]:
        """``VFIO_IOMMU_GET_INFO``: page sizes and the IOVA_RANGE / DMA_AVAIL capabilities."""
        return {"iova_pgsizes": self.page_size | (1 << 21) | (1 << 30),
                "iova_ranges": [{"start": s, "end": e} for s, e in self.iova_ranges],
                "dma_avail": self.dma_avail}

    # -- MAP --------------------------------------------------------------------------------
    def map(self, iova: int, size: int, vaddr: int,
            flags: int = _READ | _WRITE) -> None:
        """``VFIO_IOMMU_MAP_DMA``: map IOVA ``[iova, iova+size)`` to process memory ``vaddr``."""
        if flags & ~uapi.DMA_MAP_FLAGS:
            raise ModelError(errno.EINVAL, f"MAP_DMA: unknown flags {flags:#x}")
        prot = flags & (_READ | _WRITE)
        set_vaddr = bool(flags & _VADDR)
        mask = self.page_size - 1
        if self.wrap_errno == errno.EOVERFLOW:
            if not size:
                raise ModelError(errno.EINVAL, "MAP_DMA: size 0")
            if iova + size - 1 > U64_MAX or vaddr + size - 1 > U64_MAX:
                raise ModelError(errno.EOVERFLOW, "MAP_DMA: iova/vaddr + size overflows")
        if bool(prot) == set_vaddr:
            raise ModelError(errno.EINVAL, "MAP_DMA: needs READ and/or WRITE (or VADDR alone)")
        if not size or (size | iova | vaddr) & mask:
            raise ModelError(errno.EINVAL, f"MAP_DMA: size 0 or not aligned to {self.page_size}")
        end = iova + size
        if end - 1 > U64_MAX or vaddr + size - 1 > U64_MAX:
            raise ModelError(self.wrap_errno, "MAP_DMA: iova/vaddr + size wraps")
        starts, maps = self._starts, self._maps
        i = bisect_right(starts, iova)
        hit = None
        if i and maps[i - 1].end > iova:
            hit = maps[i - 1]
        elif i < len(starts) and starts[i] < end:
            hit = maps[i]
        if set_vaddr:
            self._update_vaddr(hit, iova, size, vaddr)
            return
        if hit is not None:
            raise ModelError(errno.EEXIST, f"MAP_DMA: [{iova:#x}, {end:#x}) overlaps "
                                           f"[{hit.iova:#x}, {hit.end:#x})")
        if not self.dma_avail:
            raise ModelError(errno.ENOSPC, f"MAP_DMA: dma_entry_limit ({self.dma_entry_limit}) "
                                           "mappings in use")
        for lo, hi in self.iova_ranges:
            if lo <= iova and end - 1 <= hi:
                break
        else:
            raise ModelError(errno.EINVAL, f"MAP_DMA: [{iova:#x}, {end:#x}) is outside the "
                                           "valid IOVA ranges")
        charged = 0 if self.iopf else self.process.pin(vaddr, size >> self.page_shift)
        maps.insert(i, Mapping(iova, end, vaddr, prot, charged))
        starts.insert(i, iova)
        self.dma_avail -= 1
        self.locked_pages += charged
        self.mapped_bytes += size

    def _update_vaddr(self, hit: Mapping | None, iova: int, size: int, vaddr: int) -> None:
        if hit is None:
            raise ModelError(errno.ENOENT, "MAP_DMA(VADDR): no mapping at that iova")
        if not hit.vaddr_invalid or hit.iova != iova or hit.size != size:
            raise ModelError(errno.EINVAL, "MAP_DMA(VADDR): mapping not invalidated or "
                                           "range differs")
        hit.vaddr = vaddr
        hit.vaddr_invalid = False
        self.vaddr_invalid_count -= 1

    # -- UNMAP ------------------------------------------------------------------------------
    def unmap(self, iova: int, size: int, flags: int = 0) -> int:
        """``VFIO_IOMMU_UNMAP_DMA``; returns the bytes unmapped (0 for an empty range)."""
        if flags & ~uapi.DMA_UNMAP_FLAGS:
            raise ModelError(errno.EINVAL, f"UNMAP_DMA: unknown flags {flags:#x}")
        if flags & uapi.VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP:
            raise ModelError(errno.EINVAL, "UNMAP_DMA: GET_DIRTY_BITMAP without dirty tracking")
        unmap_all = bool(flags & uapi.VFIO_DMA_UNMAP_FLAG_ALL)
        invalidate = bool(flags & uapi.VFIO_DMA_UNMAP_FLAG_VADDR)
        if iova & (self.page_size - 1):
            raise ModelError(errno.EINVAL, "UNMAP_DMA: iova not page-aligned")
        if unmap_all:
            if iova or size:
                raise ModelError(errno.EINVAL, "UNMAP_DMA(ALL): iova and size must be 0")
            end = U64_MAX + 1
        else:
            if not size or size & (self.page_size - 1):
                raise ModelError(errno.EINVAL, "UNMAP_DMA: size 0 or not page-aligned")
            end = iova + size
            if end - 1 > U64_MAX:
                raise ModelError(self.wrap_errno, "UNMAP_DMA: iova + size wraps")
        maps = self._maps
        if not invalidate:                         # fast path: exactly one whole mapping
            k = bisect_left(self._starts, iova)
            if k < len(maps):
                m = maps[k]
                if m.iova == iova and m.end == end and (k + 1 == len(maps)
                                                        or maps[k + 1].iova >= end):
                    self._release(m)
                    del maps[k]
                    del self._starts[k]
                    return size
        i, j = self._overlapping(iova, end)
        if self.v2 and not unmap_all and i < j:
            if maps[i].iova < iova:
                raise ModelError(errno.EINVAL, f"UNMAP_DMA: would bisect mapping at "
                                               f"{maps[i].iova:#x} (type1v2)")
            if maps[j - 1].end > end:
                raise ModelError(errno.EINVAL, f"UNMAP_DMA: would bisect mapping at "
                                               f"{maps[j - 1].iova:#x} (type1v2)")
        if not self.v2 and i < j and maps[i].iova < iova:
            return 0          # type1 (v1): an unmap offset into a mapping unmaps nothing
        if invalidate:
            return self._invalidate_vaddr(i, j)
        unmapped = 0
        for m in maps[i:j]:
            unmapped += m.end - m.iova
            self._release(m)
        del maps[i:j]
        del self._starts[i:j]
        return unmapped

    def _invalidate_vaddr(self, i: int, j: int) -> int:
        done = 0
        for m in self._maps[i:j]:
            if m.vaddr_invalid:
                raise ModelError(errno.EINVAL, "UNMAP_DMA(VADDR): vaddr already invalid")
            m.vaddr_invalid = True
            self.vaddr_invalid_count += 1
            done += m.size
        return done

    def _release(self, m: Mapping) -> None:
        if m.charged:
            self.process.unpin(m.charged)
            self.locked_pages -= m.charged
        if self.iopf:
            self.resident.remove(m.iova >> self.page_shift, m.end >> self.page_shift)
        self.dma_avail += 1
        self.mapped_bytes -= m.end - m.iova

    def release(self) -> int:
        """Tear everything down (last group left the container); returns bytes unmapped."""
        total = 0
        for m in self._maps:
            total += m.size
            self._release(m)
        self._maps.clear()
        self._starts.clear()
        self.resident.clear()
        return total
