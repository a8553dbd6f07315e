"""Modelled page-fault events per second through the async-pf model, on one core.

Runs a 4-vCPU x86 guest (4 tasks per vCPU, 5 % of guest memory swapped out, log-normal
100 µs swap-ins, 15 % of faults in kernel mode) through ``AsyncPfModel.run_until`` and
counts page-fault events modelled on KVM's async PF tracepoints: every fault taken, and for
an async one also its not-present, its swap-in completion and its page-ready
(``ApfCounters.events``: 4 per async fault, 1 per synchronous one).  Faults resolved per
second are printed too.  The same run times a reference loop: a bare heapq event loop
pushing and popping as many events as the model processed, i.e. the cheapest possible
discrete-event simulation in Python; the ratio says how far the model is from that floor.
Both are timed in CPU seconds of this process (``time.process_time``), i.e. per second of
one core, so other work on a shared machine does not count against them.

    .venv/bin/python bench/bench_async_pf.py [--runs 5] [--sim-ms 1500] [--arch x86_64|aarch64]

Target: >= 500,000 page-fault events/s (issue 8).
"""

from __future__ import annotations

import argparse
import heapq
import statistics
import time

from vmctl_async_pf.model.config import ApfConfig
from vmctl_async_pf.model.machine import AsyncPfModel
from vmctl_async_pf.model.protocol import ARM64_RFCV2, X86_64_MERGED
from vmctl_async_pf.model.workload import Workload

TARGET = 500_000


def config(arch: str) -> ApfConfig:
    rules = X86_64_MERGED if arch == "x86_64" else ARM64_RFCV2
    return ApfConfig(rules=rules, vcpus=4, workload=Workload(tasks_per_vcpu=4))


def time_model(cfg: ApfConfig, seed: int, sim_ns: int) -> tuple[float, int, int]:
    """(seconds, page-fault events, faults) for one run of ``sim_ns`` simulated ns."""
    model = AsyncPfModel(cfg, seed)
    start = time.process_time()
    model.run_until(sim_ns)
    elapsed = time.process_time() - start
    c = model.counters()
    assert c.async_faults > 0 and c.async_faults == c.ready_events + c.outstanding
    return elapsed, c.events, c.faults


def time_reference(n: int) -> float:
    heap: list[tuple[int, int]] = []
    push, pop = heapq.heappush, heapq.heappop
    for i in range(64):
        push(heap, (i, i))
    count = 0
    start = time.process_time()
    for i in range(n):
        t, _ = pop(heap)
        count += 1
        push(heap, (t + 997, i))
    return time.process_time() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--sim-ms", type=int, default=1500, help="simulated time per run")
    parser.add_argument("--arch", choices=("x86_64", "aarch64"), default="x86_64")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    cfg = config(args.arch)
    rates, fault_rates, reference = [], [], []
    for run in range(args.runs):
        elapsed, events, faults = time_model(cfg, args.seed + run, args.sim_ms * 1_000_000)
        rates.append(events / elapsed)
        fault_rates.append(faults / elapsed)
        reference.append(events / time_reference(events))
    med, ref = statistics.median(rates), statistics.median(reference)
    print(f"async-pf {cfg.rules.name}: median {med:,.0f} page-fault events/s over {args.runs} runs "
          f"(min {min(rates):,.0f}, max {max(rates):,.0f}); "
          f"{statistics.median(fault_rates):,.0f} faults resolved/s")
    print(f"reference bare heapq event loop: median {ref:,.0f} events/s; model/reference = {med / ref:.2f}")
    print(f"target {TARGET:,} events/s: {'met' if med >= TARGET else 'MISSED'}")
    return 0 if med >= TARGET else 1


if __name__ == "__main__":
    raise SystemExit(main())
