"""A machine's async PF model paired with its ``no-kvmapf`` shadow, on one clock.

Does async PF help this workload or hurt it?  :class:`ApfSimulation` answers from the model's
own events: it runs the configured guest and an identical guest booted with ``no-kvmapf``
side by side.  Both draw every task's faults from the same seeded streams
(:mod:`.workload`), so they fault on the same accesses with the same swap-in latencies; the
shadow blocks its vCPU for each, the machine may run other tasks meanwhile.  Advancing the
simulation advances both to the same simulated time, and :meth:`ApfSimulation.compare`
reports vCPU time lost in each.
"""

from __future__ import annotations

from .config import ApfConfig
from .counters import ApfComparison, ApfCounters
from .machine import AsyncPfModel

__all__ = ["ApfSimulation"]


class ApfSimulation:
    """``machine`` runs ``config``; ``shadow`` runs it with async PF off; same seed."""

    def __init__(self, config: ApfConfig, seed: int) -> None:
        self.config = config
        self.seed = seed
        self.machine = AsyncPfModel(config, seed)
        self.shadow = AsyncPfModel(config.without_async_pf(), seed)

    @property
    def now(self) -> int:
        return self.machine.now

    def advance(self, t_ns: int) -> None:
        """Run both worlds up to simulated time ``t_ns``."""
        self.machine.run_until(t_ns)
        self.shadow.run_until(t_ns)

    def counters(self) -> ApfCounters:
        return self.machine.counters()

    def compare(self) -> ApfComparison:
        """Lost vCPU time with and without async PF at the current time."""
        return ApfComparison(self.machine.counters(), self.shadow.counters())
