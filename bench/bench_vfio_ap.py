"""vfio-ap benchmarks: lock-checked model operations, and fleet validation through the CLI.

**Model.**  Lock-checked vfio_ap model operations per run, on one core.

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

**Fleet.**  ``vmctl validate DIR`` over 10,000 generated s390x machines, each with a vfio-ap
device of 2 adapters × 1 domain (20,000 APQNs, none shared; control domain 0 shared by all),
so the APQN exclusivity rule indexes every APQN.  The reference, in the same run, validates
the same 10,000 machines without the device: the difference is the plugin's cost.

    .venv/bin/python bench/bench_vfio_ap.py [--runs 5] [--ops 100000] [--seed 1] [--machines 10000]

Targets (issue 6): 100,000 operations in <= 2 s; 10,000 machines validated in <= 5 s
(medians of the runs).
"""

from __future__ import annotations

import argparse
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from vmctl.model import ModelError
from vmctl_vfio_ap.fakesys import MdevSpec, build_system
from vmctl_vfio_ap.model import masks as M
from vmctl_vfio_ap.model.system import AP_BUS, MATRIX, ApSystem

TARGET_S = 2.0
FLEET_TARGET_S = 5.0
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


def time_model(n: int, seed: int) -> tuple[float, int, int, float]:
    """(seconds, operations refused with an errno, lock acquisitions, CPU seconds) for one run."""
    ap = host()
    ops = plan(ap, n, seed)
    refused = 0
    cpu, start = time.process_time(), time.perf_counter()
    for op in ops:
        try:
            op()
        except ModelError:
            refused += 1
    elapsed = time.perf_counter() - start
    return elapsed, refused, ap.locks.acquisitions, time.process_time() - cpu


def time_reference(n: int, seed: int) -> float:
    rng = random.Random(seed)
    masks = {u: 0 for u in UUIDS}
    work = [(rng.choice(UUIDS), str(rng.randrange(16))) for _ in range(n)]
    start = time.perf_counter()
    for uuid, text in work:
        masks[uuid] ^= M.bit(M.kstrtoul(text))
    return time.perf_counter() - start


def fleet(folder: Path, n: int, device: bool) -> Path:
    """``n`` s390x machines; machine i gets adapters 2i, 2i+1 (mod 256) × domain i // 128."""
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        text = (f'[machine]\nname = "ap{i:05d}"\narch = "s390x"\ntype = "s390-ccw-virtio"\n'
                f'cpu = "host"\naccel = "kvm"\n')
        if device:
            a = (2 * i) % 256
            text += (f'\n[[device]]\nkind = "vfio-ap"\nadapters = [{a}, {a + 1}]\n'
                     f'domains = [{i // 128}]\ncontrol-domains = [0]\n')
        (folder / f"ap{i:05d}.toml").write_text(text)
    return folder


def _run_cli(cmd: list[str], runs: int) -> tuple[float, float]:
    """Median wall and median CPU (user + sys of the child) seconds of ``cmd`` (one warm-up)."""
    subprocess.run(cmd, capture_output=True, check=False)
    walls, cpus = [], []
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True)
        walls.append(time.perf_counter() - t)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
        if proc.returncode != 0:
            raise SystemExit(f"{' '.join(cmd)} exited {proc.returncode}: {proc.stdout[-500:]}{proc.stderr[-500:]}")
    return statistics.median(walls), statistics.median(cpus)


def time_fleet(n: int, runs: int) -> tuple[tuple[float, float], tuple[float, float]]:
    """(wall, CPU) medians of ``vmctl validate`` on ``n`` machines, with and without vfio-ap."""
    with tempfile.TemporaryDirectory() as tmp:
        with_dev = fleet(Path(tmp) / "ap", n, device=True)
        without = fleet(Path(tmp) / "plain", n, device=False)
        cmd = [sys.executable, "-m", "vmctl", "validate"]
        return _run_cli(cmd + [str(with_dev)], runs), _run_cli(cmd + [str(without)], runs)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--ops", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--machines", type=int, default=10_000)
    args = parser.parse_args()
    times, refs, cpus = [], [], []
    refused = locks = 0
    for run in range(args.runs):
        elapsed, refused, locks, cpu = time_model(args.ops, args.seed + run)
        times.append(elapsed)
        cpus.append(cpu)
        refs.append(time_reference(args.ops, args.seed + run))
    med, ref = statistics.median(times), statistics.median(refs)
    print(f"vfio-ap model: {args.ops:,} lock-checked operations, median {med:.3f} s over {args.runs} runs "
          f"(min {min(times):.3f}, max {max(times):.3f}; CPU {statistics.median(cpus):.3f} s); "
          f"{args.ops / med:,.0f} ops/s; last run: {refused:,} refused with an errno, "
          f"{locks:,} lock acquisitions")
    print(f"reference (kstrtoul + one bit flip per op): median {ref:.3f} s; model/reference = {med / ref:.1f}x")
    ok = med * 100_000 / args.ops <= TARGET_S
    print(f"target <= {TARGET_S} s per 100,000 operations: {'met' if ok else 'MISSED'}")
    (dev_s, dev_cpu), (plain_s, plain_cpu) = time_fleet(args.machines, args.runs)
    fleet_ok = dev_s * 10_000 / args.machines <= FLEET_TARGET_S
    print(f"vmctl validate {args.machines:,} machines with vfio-ap: median {dev_s:.2f} s (CPU {dev_cpu:.2f} s) "
          f"over {args.runs} runs; same machines without the device: {plain_s:.2f} s (CPU {plain_cpu:.2f} s); "
          f"ratio {dev_s / plain_s:.2f}x")
    print(f"target <= {FLEET_TARGET_S} s per 10,000 machines: {'met' if fleet_ok else 'MISSED'}")
    return 0 if ok and fleet_ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
