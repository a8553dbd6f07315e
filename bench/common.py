"""Shared helpers for the benchmarks: timing commands, medians, generated fleets."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable


def wall(cmd: list[str], runs: int, env: dict[str, str] | None = None, cwd: Path = ROOT) -> float:
    """Median wall time of ``cmd`` over ``runs`` runs (one warm-up run first)."""
    full = {**os.environ, **(env or {})}
    subprocess.run(cmd, capture_output=True, env=full, cwd=cwd, check=False)
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, env=full, cwd=cwd)
        times.append(time.perf_counter() - t)
        if proc.returncode not in (0,):
            raise SystemExit(f"{' '.join(cmd)} exited {proc.returncode}: {proc.stderr.decode()[-500:]}")
    return statistics.median(times)


def fleet(folder: Path, n: int) -> Path:
    """Write ``n`` valid machines mixing all four plugins, with no shared host resource."""
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        kind = i % 4
        name = f"m{i:05d}"
        if kind == 0:
            text = (f'[machine]\nname = "{name}"\narch = "ppc64"\ntype = "pseries"\ncpu = "power9"\ncpus = 2\n'
                    f'accel = "tcg"\n\n[irq]\nic-mode = "dual"\n')
        elif kind == 1:
            text = (f'[machine]\nname = "{name}"\narch = "x86_64"\ntype = "q35"\ncpu = "host"\naccel = "kvm"\n\n'
                    f'[[device]]\nkind = "vfio-pci"\nhost = "{(i >> 16) & 0xffff:04x}:{(i >> 8) & 0xff:02x}:'
                    f'{(i >> 3) & 0x1f:02x}.{i & 7}"\n')
        elif kind == 2:
            text = (f'[machine]\nname = "{name}"\narch = "aarch64"\ntype = "virt"\ncpu = "max"\naccel = "tcg"\n\n'
                    f'[async-pf]\nmode = "on"\nexperimental = true\n')
        else:
            k = i // 4
            text = (f'[machine]\nname = "{name}"\narch = "s390x"\ntype = "s390-ccw-virtio"\ncpu = "host"\n'
                    f'accel = "kvm"\n\n[[device]]\nkind = "vfio-ap"\nadapters = [{k % 256}]\n'
                    f'domains = [{k // 256}]\n')
        (folder / f"{name}.toml").write_text(text)
    return folder


def report(rows: list[tuple[str, str, str, str]]) -> None:
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)))
