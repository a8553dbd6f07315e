"""Interrupt deliveries per second through the spapr-irq model, on one core.

Boots a 4-vCPU ``dual`` machine under the in-kernel (KVM) controller, lets the simulated
guest negotiate XIVE at CAS, then delivers a seeded random mix of IPIs and device
interrupts through ``SpaprIrqMachine.deliver`` (PQ bits, event-queue write, per-source and
per-vCPU counters). The same run times a bare dict-increment loop over the same sequence,
so the ratio says how far the model is from the cheapest possible Python counting loop.

    .venv/bin/python bench/bench_spapr_irq.py [--count N] [--runs 5] [--mode xive|xics]

Target: ≥ 500,000 deliveries/s (issue 4).
"""

from __future__ import annotations

import argparse
import random
import statistics
import time

from vmctl_spapr_irq.model.guest import boot_guest
from vmctl_spapr_irq.model.kvm import HostKvm
from vmctl_spapr_irq.model.spapr import IrqConfig, SpaprIrqMachine

TARGET = 500_000


def build(mode: str, seed: int) -> SpaprIrqMachine:
    machine = SpaprIrqMachine(IrqConfig(ic_mode="dual", accel="kvm", cpus=4), HostKvm(), name="bench")
    machine.power_on()
    boot_guest(machine, "xive=off" if mode == "xics" else None, rng=random.Random(seed))
    assert machine.active is not None and machine.active.value == mode
    return machine


def workload(mode: str, count: int, seed: int) -> list[int]:
    irqs = [0x1000, 0x1001, 0x1100] + ([0, 1, 2, 3] if mode == "xive" else [])
    rng = random.Random(seed)
    return [rng.choice(irqs) for _ in range(count)]


def time_model(machine: SpaprIrqMachine, irqs: list[int]) -> float:
    deliver = machine.deliver
    start = time.perf_counter()
    for irq in irqs:
        deliver(irq)
    return time.perf_counter() - start


def time_reference(irqs: list[int]) -> float:
    counts: dict[int, int] = {}
    start = time.perf_counter()
    for irq in irqs:
        counts[irq] = counts.get(irq, 0) + 1
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--mode", choices=("xive", "xics"), default="xive")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    irqs = workload(args.mode, args.count, args.seed)
    model, reference = [], []
    for run in range(args.runs):
        machine = build(args.mode, args.seed + run)
        model.append(args.count / time_model(machine, irqs))
        reference.append(args.count / time_reference(irqs))
        delivered = machine.routing.delivered
        assert delivered == args.count, f"only {delivered} of {args.count} delivered"
    med, ref = statistics.median(model), statistics.median(reference)
    print(f"spapr-irq {args.mode} deliveries: median {med:,.0f}/s over {args.runs} runs of {args.count:,} "
          f"(min {min(model):,.0f}, max {max(model):,.0f})")
    print(f"reference dict-increment loop: median {ref:,.0f}/s; model/reference = {med / ref:.2f}")
    print(f"target {TARGET:,}/s: {'met' if med >= TARGET else 'MISSED'}")
    return 0 if med >= TARGET else 1


if __name__ == "__main__":
    raise SystemExit(main())
