"""The user process (QEMU) whose memory VFIO maps: VMAs, locked memory, MMU notifiers.

Type1 charges every pinned anonymous page to the process's ``locked_vm`` and refuses a pin
that would take it over ``RLIMIT_MEMLOCK`` unless the caller has ``CAP_IPC_LOCK``; pages of
a PFN map (another device's BAR mmap) are reserved pfns and are not counted (semantics.md
§2.4).  The counter belongs to the process, not to a container, so two containers that map
the same guest RAM are charged twice — the known limitation iommufd fixed.

Host memory changes reach subscribers (the IOPF RFC's MMU notifier) through
:meth:`Process.munmap`.
"""

from __future__ import annotations

import errno
import enum
from bisect import bisect_right
from collections.abc import Callable

from vmctl.api import ModelError

from .uapi import PAGE_SIZE


class VmaKind(str, enum.Enum):
    ANON = "anon"        #: ordinary anonymous memory (guest RAM): pinning counts it
    PFNMAP = "pfnmap"    #: VM_PFNMAP (a device BAR mmap): reserved pfns, never counted


#: ``notifier(start, end)`` is told that host virtual addresses ``[start, end)`` went away.
Notifier = Callable[[int, int], None]


class Process:
    """A process's address space and locked-memory accounting.

    ``memlock_limit`` is RLIMIT_MEMLOCK in bytes (None: unlimited); ``locked_bytes`` is
    memory the process has locked already (``mlock``), which the limit also covers.
    """

    def __init__(self, memlock_limit: int | None = None, *, cap_ipc_lock: bool = False,
                 locked_bytes: int = 0, page_size: int = PAGE_SIZE) -> None:
        self.page_size = page_size
        self.memlock_limit = memlock_limit
        self.cap_ipc_lock = cap_ipc_lock
        self.locked_vm = locked_bytes // page_size          # pages, like mm->locked_vm
        self._starts: list[int] = []
        self._ends: list[int] = []
        self._kinds: list[VmaKind] = []
        self._notifiers: list[Notifier] = []

    # -- address space --------------------------------------------------------------------
    def mmap(self, addr: int, length: int, kind: VmaKind = VmaKind.ANON) -> int:
        """Map ``[addr, addr+length)`` (MAP_FIXED_NOREPLACE: overlapping → EEXIST)."""
        ps = self.page_size
        if length <= 0 or addr % ps or length % ps:
            raise ModelError(errno.EINVAL, "mmap: address and length must be page-aligned")
        end = addr + length
        i = bisect_right(self._starts, addr)
        if (i > 0 and self._ends[i - 1] > addr) or (i < len(self._starts) and self._starts[i] < end):
            raise ModelError(errno.EEXIST, f"mmap: [{addr:#x}, {end:#x}) overlaps a mapping")
        self._starts.insert(i, addr)
        self._ends.insert(i, end)
        self._kinds.insert(i, VmaKind(kind))
        return addr

    def munmap(self, addr: int, length: int) -> None:
        """Unmap ``[addr, addr+length)`` and tell the MMU notifiers (holes are fine)."""
        ps = self.page_size
        if length <= 0 or addr % ps:
            raise ModelError(errno.EINVAL, "munmap: address must be page-aligned")
        end = addr + ((length + ps - 1) // ps) * ps
        starts, ends, kinds = self._starts, self._ends, self._kinds
        new: list[tuple[int, int, VmaKind]] = []
        for s, e, k in zip(starts, ends, kinds):
            if e <= addr or s >= end:
                new.append((s, e, k))
                continue
            if s < addr:
                new.append((s, addr, k))
            if e > end:
                new.append((end, e, k))
        self._starts = [s for s, _, _ in new]
        self._ends = [e for _, e, _ in new]
        self._kinds = [k for _, _, k in new]
        for notify in list(self._notifiers):
            notify(addr, end)

    def vmas(self) -> list[tuple[int, int, VmaKind]]:
        return list(zip(self._starts, self._ends, self._kinds))

    # -- MMU notifiers --------------------------------------------------------------------
    def register_notifier(self, notifier: Notifier) -> None:
        self._notifiers.append(notifier)

    def unregister_notifier(self, notifier: Notifier) -> None:
        self._notifiers.remove(notifier)

    @property
    def notifier_count(self) -> int:
        return len(self._notifiers)

    # -- pinning --------------------------------------------------------------------------
    def count_pinnable(self, vaddr: int, npages: int) -> tuple[int, int]:
        """Walk ``npages`` pages from ``vaddr`` as the pin loop does.

        Returns ``(pages that can be pinned before the first hole, of which anonymous)``.
        """
        ps = self.page_size
        end = vaddr + npages * ps
        starts, ends, kinds = self._starts, self._ends, self._kinds
        i = bisect_right(starts, vaddr) - 1
        if i >= 0 and ends[i] >= end:                # fast path: one VMA holds it all
            return npages, (npages if kinds[i] is VmaKind.ANON else 0)
        pos = vaddr
        anon = 0
        if i < 0:
            i = 0
        while pos < end and i < len(starts):
            s, e = starts[i], ends[i]
            if e <= pos:
                i += 1
                continue
            if s > pos:
                break                       # hole
            stop = e if e < end else end
            if kinds[i] is VmaKind.ANON:
                anon += (stop - pos) // ps
            pos = stop
            i += 1
        return (pos - vaddr) // ps, anon

    def pin(self, vaddr: int, npages: int) -> int:
        """Pin ``npages`` pages for a DMA mapping; return the pages charged to ``locked_vm``.

        Raises EFAULT at the first unmapped page and ENOMEM when a charged page would take
        ``locked_vm`` over the limit without CAP_IPC_LOCK — whichever the pin loop meets
        first.  On error nothing stays pinned.
        """
        ps = self.page_size
        # Charged pages up to the first hole; ENOMEM if the budget runs out before it.
        reachable, anon = self.count_pinnable(vaddr, npages)
        budget = None
        if not self.cap_ipc_lock and self.memlock_limit is not None:
            budget = self.memlock_limit // ps - self.locked_vm
        if budget is not None and anon > budget:
            raise ModelError(errno.ENOMEM,
                             f"RLIMIT_MEMLOCK ({self.memlock_limit}) exceeded: pinning needs "
                             f"{(self.locked_vm + anon) * ps} bytes locked")
        if reachable < npages:
            bad = vaddr + reachable * ps
            raise ModelError(errno.EFAULT, f"vaddr {bad:#x} is not mapped in the process")
        self.locked_vm += anon
        return anon

    def unpin(self, charged: int) -> None:
        self.locked_vm -= charged
