"""Host memory pressure and the guest tasks' fault streams.

The workload is what both runs of a comparison share: each guest task has its own seeded
stream of ``(compute before the next fault, where the fault happens, swap-in latency)``.
The stream depends only on ``(seed, task id)``, never on timing, so the async-PF run and its
"no async PF" shadow fault on exactly the same accesses and wait exactly as long for each
page; only what the vCPU does meanwhile differs.

Memory pressure is a share of guest pages the host has swapped out, kept steady by host
reclaim: a task touching a uniformly random page every ``touch_interval_ns`` of CPU time
therefore faults with probability ``swapped_share`` per touch, i.e. after an exponential
amount of compute with mean ``touch_interval_ns / swapped_share``.  Swap-in latency is
log-normal (``median_ns``, ``sigma``), floored at ``floor_ns``; ``sigma = 0`` makes it fixed.
The defaults are modelling assumptions, not measurements: change them per machine.
"""

from __future__ import annotations

import errno
import math
import random
from dataclasses import dataclass, field

from vmctl.api import ModelError

from .protocol import FaultContext

_log, _exp = math.log, math.exp

__all__ = ["SwapInLatency", "MemoryPressure", "ContextMix", "Workload", "FaultStream", "NEVER"]

#: Compute time standing for "this task never faults again" (about 146 years in ns).
NEVER = 1 << 62


@dataclass(frozen=True)
class SwapInLatency:
    """Log-normal swap-in latency in ns: ``median_ns * exp(sigma * N(0, 1))``, >= ``floor_ns``."""

    median_ns: int = 100_000
    sigma: float = 0.6
    floor_ns: int = 2_000

    def __post_init__(self) -> None:
        if self.median_ns <= 0 or self.sigma < 0 or self.floor_ns < 0:
            raise ModelError(errno.EINVAL, f"bad swap-in latency {self}")

    @classmethod
    def fixed(cls, ns: int) -> "SwapInLatency":
        """Every swap-in takes exactly ``ns`` (for tests and what-if runs)."""
        return cls(median_ns=ns, sigma=0.0, floor_ns=0)


@dataclass(frozen=True)
class MemoryPressure:
    """Host memory pressure on the guest: how much is swapped and how slow it comes back."""

    guest_pages: int = 262_144          # 1 GiB of 4 KiB pages
    swapped_share: float = 0.05
    touch_interval_ns: int = 2_000      # CPU time between touches of a random guest page
    latency: SwapInLatency = field(default_factory=SwapInLatency)

    def __post_init__(self) -> None:
        if not 0.0 <= self.swapped_share <= 1.0:
            raise ModelError(errno.EINVAL, f"swapped_share {self.swapped_share} outside 0..1")
        if self.touch_interval_ns <= 0 or self.guest_pages <= 0:
            raise ModelError(errno.EINVAL, f"bad memory pressure {self}")

    @property
    def swapped_pages(self) -> int:
        return round(self.guest_pages * self.swapped_share)

    @property
    def mean_fault_gap_ns(self) -> float:
        """Mean CPU time between two faults of one task (``inf`` with nothing swapped)."""
        if self.swapped_share == 0.0:
            return math.inf
        return self.touch_interval_ns / self.swapped_share


@dataclass(frozen=True)
class ContextMix:
    """Share of faults taken in each :class:`FaultContext` (normalised on use)."""

    user: float = 0.85
    kernel: float = 0.15
    atomic: float = 0.0
    exception_vectors: float = 0.0
    exception_other: float = 0.0

    def cumulative(self) -> tuple[tuple[float, FaultContext], ...]:
        """``(upper bound, context)`` pairs over [0, 1) for one uniform draw."""
        pairs = [(self.user, FaultContext.USER), (self.kernel, FaultContext.KERNEL),
                 (self.atomic, FaultContext.ATOMIC),
                 (self.exception_vectors, FaultContext.EXCEPTION_VECTORS),
                 (self.exception_other, FaultContext.EXCEPTION_OTHER)]
        if any(w < 0 for w, _ in pairs):
            raise ModelError(errno.EINVAL, f"negative share in {self}")
        total = sum(w for w, _ in pairs)
        if total <= 0:
            raise ModelError(errno.EINVAL, "context mix has no positive share")
        acc, out = 0.0, []
        for w, ctx in pairs:
            if w > 0:
                acc += w / total
                out.append((acc, ctx))
        out[-1] = (2.0, out[-1][1])  # absorb rounding: the last bucket takes everything left
        return tuple(out)


@dataclass(frozen=True)
class Workload:
    """Guest tasks and what they do: ``tasks_per_vcpu`` CPU-bound tasks pinned to each vCPU."""

    tasks_per_vcpu: int = 2
    pressure: MemoryPressure = field(default_factory=MemoryPressure)
    contexts: ContextMix = field(default_factory=ContextMix)
    slice_ns: int = 3_000_000           # scheduler time slice when several tasks are runnable

    def __post_init__(self) -> None:
        if self.tasks_per_vcpu < 0 or self.slice_ns <= 0:
            raise ModelError(errno.EINVAL, f"bad workload {self}")

    def stream(self, seed: int, task_id: int) -> "FaultStream":
        return FaultStream(self, seed, task_id)


class FaultStream:
    """One task's endless, seeded sequence of faults; :meth:`next` draws the next one."""

    __slots__ = ("_rng", "_mean", "_cum", "_mu", "_sigma", "_floor", "_median")

    def __init__(self, workload: Workload, seed: int, task_id: int) -> None:
        self._rng = random.Random(f"async-pf:{seed}:{task_id}")
        gap = workload.pressure.mean_fault_gap_ns
        self._mean = 0.0 if math.isinf(gap) else gap
        self._cum = workload.contexts.cumulative()
        lat = workload.pressure.latency
        self._median = lat.median_ns
        self._mu = math.log(lat.median_ns)
        self._sigma = lat.sigma
        self._floor = lat.floor_ns

    def next(self) -> tuple[int, FaultContext, int]:
        """``(compute_ns before the fault, context, swap-in latency ns)``."""
        rng = self._rng
        # expovariate and lognormvariate, inlined (same distributions, fewer calls)
        gap = int(-_log(1.0 - rng.random()) * self._mean) + 1 if self._mean else NEVER
        u = rng.random()
        for bound, ctx in self._cum:
            if u < bound:
                break
        if self._sigma:
            lat = int(_exp(self._mu + self._sigma * rng.gauss()))
            if lat < self._floor:
                lat = self._floor
        else:
            lat = self._median
        return gap, ctx, lat
