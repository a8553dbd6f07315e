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


# -- QMP clients (qemu.qmp, imported when used) -------------------------------------------
async def qmp_round_trips(path: str, n: int, warmup: int = 0) -> list[float]:
    """Seconds per ``query-status`` round trip through qemu.qmp on socket ``path``."""
    from qemu.qmp import QMPClient

    q = QMPClient("bench")
    await q.connect(path)
    for _ in range(warmup):
        await q.execute("query-status")
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        await q.execute("query-status")
        out.append(time.perf_counter() - t0)
    await q.disconnect()
    return out


async def qmp_many_clients(path: str, clients: int, each: int,
                           expect: str | None = None) -> tuple[int, int, float]:
    """``clients`` qemu.qmp clients at once, ``each`` ``query-status`` each:
    ``(answers with a status — equal to ``expect`` when given —, clients that failed, s)``."""
    import asyncio

    from qemu.qmp import QMPClient

    async def one(i: int) -> int:
        q = QMPClient(f"c{i}")
        await q.connect(path)
        ok = 0
        for _ in range(each):
            status = (await q.execute("query-status"))["status"]
            if status and (expect is None or status == expect):
                ok += 1
        await q.disconnect()
        return ok

    t0 = time.perf_counter()
    results = await asyncio.gather(*(one(i) for i in range(clients)), return_exceptions=True)
    errors = sum(isinstance(r, BaseException) for r in results)
    served = sum(r for r in results if isinstance(r, int))
    return served, errors, time.perf_counter() - t0


def stop_all(folder: Path) -> None:
    """Stop every live instance under ``folder``'s state dir and remove the folder."""
    import shutil

    from vmctl.runtime.control import stop
    from vmctl.runtime.inspect import inspect
    from vmctl.runtime.instance import list_instances

    for inst in list_instances(folder / "state"):
        if inspect(inst).state.alive:
            stop(inst.name, force=True)
    shutil.rmtree(folder, ignore_errors=True)
