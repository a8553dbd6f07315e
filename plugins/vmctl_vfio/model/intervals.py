"""A set of integers stored as sorted, disjoint, half-open runs ``[lo, hi)``.

The IOPF model tracks which pages of a DMA mapping the IOMMU currently maps; a 4 GiB guest
has a million pages but, once a sweep has run, only a handful of runs.  Two parallel sorted
lists searched with :mod:`bisect` keep every operation at O(log runs + runs touched)
instead of one dict entry per page.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterator


class RunSet:
    """Disjoint half-open integer runs, merged when they touch.

    >>> s = RunSet(); s.add(10, 20); s.add(20, 25)
    15
    >>> list(s.runs()), len(s), 12 in s, 25 in s
    ([(10, 25)], 15, True, False)
    """

    __slots__ = ("_lo", "_hi", "_count", "version")

    def __init__(self) -> None:
        self._lo: list[int] = []
        self._hi: list[int] = []
        self._count = 0
        #: Bumped by every change, so callers can cache a lookup safely.
        self.version = 0

    def __len__(self) -> int:
        """Number of integers covered (pages, for the IOPF model)."""
        return self._count

    def __contains__(self, x: int) -> bool:
        i = bisect_right(self._lo, x) - 1
        return i >= 0 and x < self._hi[i]

    def run_at(self, x: int) -> tuple[int, int] | None:
        """The run containing ``x``, or None."""
        i = bisect_right(self._lo, x) - 1
        if i >= 0 and x < self._hi[i]:
            return self._lo[i], self._hi[i]
        return None

    def next_start(self, x: int) -> int | None:
        """The start of the first run beginning after ``x``, or None."""
        i = bisect_right(self._lo, x)
        return self._lo[i] if i < len(self._lo) else None

    def runs(self) -> Iterator[tuple[int, int]]:
        return zip(self._lo, self._hi)

    @property
    def nruns(self) -> int:
        return len(self._lo)

    def add(self, lo: int, hi: int) -> int:
        """Cover ``[lo, hi)``; return how many integers were newly covered."""
        if hi <= lo:
            return 0
        self.version += 1
        los, his = self._lo, self._hi
        i = bisect_left(his, lo)          # first run ending at or after lo (touching counts)
        j = bisect_right(los, hi)         # runs starting at or before hi
        if i == j:                        # no run touches: plain insert
            los.insert(i, lo)
            his.insert(i, hi)
            self._count += hi - lo
            return hi - lo
        old = 0
        for k in range(i, j):
            old += his[k] - los[k]
        new_lo = lo if lo < los[i] else los[i]
        new_hi = hi if hi > his[j - 1] else his[j - 1]
        los[i:j] = [new_lo]
        his[i:j] = [new_hi]
        added = (new_hi - new_lo) - old
        self._count += added
        return added

    def remove(self, lo: int, hi: int) -> int:
        """Uncover ``[lo, hi)``; return how many integers were covered there."""
        if hi <= lo:
            return 0
        self.version += 1
        los, his = self._lo, self._hi
        i = bisect_right(his, lo)         # first run ending after lo
        j = bisect_left(los, hi)          # runs starting before hi
        if i >= j:
            return 0
        removed = 0
        for k in range(i, j):
            removed += min(his[k], hi) - max(los[k], lo)
        new_lo: list[int] = []
        new_hi: list[int] = []
        if los[i] < lo:
            new_lo.append(los[i])
            new_hi.append(lo)
        if his[j - 1] > hi:
            new_lo.append(hi)
            new_hi.append(his[j - 1])
        los[i:j] = new_lo
        his[i:j] = new_hi
        self._count -= removed
        return removed

    def count_in(self, lo: int, hi: int) -> int:
        """How many integers of ``[lo, hi)`` are covered."""
        los, his = self._lo, self._hi
        i = bisect_right(his, lo)
        j = bisect_left(los, hi)
        total = 0
        for k in range(i, j):
            total += min(his[k], hi) - max(los[k], lo)
        return total

    def clear(self) -> int:
        self.version += 1
        n = self._count
        self._lo.clear()
        self._hi.clear()
        self._count = 0
        return n
