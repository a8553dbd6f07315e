"""Lock-checked vfio_ap model operations per run, on one core.

Builds a host with 16 adapters × 16 domains for vfio_ap and 8 mdevs (half of them opened by
running guests), then performs 100,000 operations drawn from a seeded mix, each one a
complete kernel operation through the lock checker (``ApSystem.run``):

* 70 % ``assign_*``/``unassign_*`` of adapters, domains and control domains on a random mdev
  (conflicts are refused with EADDRINUSE, as the kernel would, and still count);
* 20 % PQAP(AQIC) interrupt enable/disable from a guest;
* 6 % queue unbind/bind through the vfio_ap driver (hot unplug/plug into guests);
* 2 % apmask/aqmask relative writes (in_use check, re-probe of every queue);
* 2 % guest close/open.

The same run times a reference loop: for every operation, the minimum work of an assignment
without the model — ``kstrtoul`` of the id and one bit flipped in a dict of masks — so the
ratio says what the model, its filtering and the lock checker cost on top of that floor.

    .venv/bin/python bench/bench_vfio_ap.py [--runs 5] [--ops 100000] [--seed 1]

Target: 100,000 operations in <= 2 s (median of the runs; issue 6).
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from collections.abc import Callable

from vmctl.model import ModelError
from vmctl_vfio_ap import masks as M
from vmctl_vfio_ap.fakesys import MdevSpec, build_system
from vmctl_vfio_ap.system import AP_BUS, MATRIX, ApSystem

TARGET_S = 2.0
UUIDS = [f"{i:08x}-0000-4000-8000-{i:012x}" for i in range(1, 9)]


def host() -> ApSystem:
    """16 adapters × 16 domains for vfio_ap (apmask 0-15 clear); 8 mdevs, 4 of them running."""
    specs = [MdevSpec(u, (2 * i, 2 * i + 1), (2 * i,), (i,), guest=f"vm{i}" if i % 2 == 0 else None)
             for i, u in enumerate(UUIDS)]
    return build_system(adapters=range(16), domains=range(16), max_adapter_id=63, max_domain_id=15,
                        apmask=M.FULL & ~M.from_ids(range(16)), mdevs=specs)


def plan(ap: ApSystem, n: int, seed: int) -> list[Callable[[], object]]:
    """``n`` operations as closures over ``ap`` (built before timing)."""
    rng = random.Random(seed)
    out: list[Callable[[], object]] = []
    for _ in range(n):
        r = rng.random()
        uuid = rng.choice(UUIDS)
        if r < 0.70:
            verb = rng.choice(("assign", "unassign"))
            what = rng.choice(("adapter", "domain", "control_domain"))
            path, value = f"{MATRIX}/{uuid}/{verb}_{what}", str(rng.randrange(16))
            out.append(lambda p=path, v=value: ap.write(p, v))
        elif r < 0.90:
            guest, apqn = f"vm{2 * rng.randrange(4)}", f"{rng.randrange(16):02x}.{rng.randrange(16):04x}"
            enable = rng.random() < 0.5
            out.append(lambda g=guest, q=apqn, e=enable: ap.pqap_aqic(g, q, e))
        elif r < 0.96:
            verb, name = rng.choice(("bind", "unbind")), f"{rng.randrange(16):02x}.{rng.randrange(16):04x}"
            out.append(lambda p=f"{AP_BUS}/drivers/vfio_ap/{verb}", v=name: ap.write(p, v))
        elif r < 0.98:
            which, sign = rng.choice(("apmask", "aqmask")), rng.choice("+-")
            out.append(lambda p=f"{AP_BUS}/{which}", v=f"{sign}{rng.randrange(16, 32)}": ap.write(p, v))
        else:
            i = rng.randrange(4) * 2
            out.append(lambda u=UUIDS[i], g=f"vm{i}": ap.close_mdev(u) if ap.mdev(u).guest else ap.open_mdev(u, g))
    return out


def time_model(n: int, seed: int) -> tuple[float, int, int]:
    """(seconds, operations refused with an errno, lock acquisitions) for one run."""
    ap = host()
    ops = plan(ap, n, seed)
    refused = 0
    start = time.perf_counter()
    for op in ops:
        try:
            op()
        except ModelError:
            refused += 1
    elapsed = time.perf_counter() - start
    return elapsed, refused, ap.locks.acquisitions


def time_reference(n: int, seed: int) -> float:
    rng = random.Random(seed)
    masks = {u: 0 for u in UUIDS}
    work = [(rng.choice(UUIDS), str(rng.randrange(16))) for _ in range(n)]
    start = time.perf_counter()
    for uuid, text in work:
        masks[uuid] ^= M.bit(M.kstrtoul(text))
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--ops", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    times, refs = [], []
    refused = locks = 0
    for run in range(args.runs):
        elapsed, refused, locks = time_model(args.ops, args.seed + run)
        times.append(elapsed)
        refs.append(time_reference(args.ops, args.seed + run))
    med, ref = statistics.median(times), statistics.median(refs)
    print(f"vfio-ap model: {args.ops:,} lock-checked operations, median {med:.3f} s over {args.runs} runs "
          f"(min {min(times):.3f}, max {max(times):.3f}); {args.ops / med:,.0f} ops/s; "
          f"last run: {refused:,} refused with an errno, {locks:,} lock acquisitions")
    print(f"reference (kstrtoul + one bit flip per op): median {ref:.3f} s; model/reference = {med / ref:.1f}x")
    ok = med * 100_000 / args.ops <= TARGET_S
    print(f"target <= {TARGET_S} s per 100,000 operations: {'met' if ok else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
