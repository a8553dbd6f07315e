"""QMP multiplexer benchmark (issue 14, point 1): what sharing QEMU's monitor costs.

    .venv/bin/python bench/bench_qmpmux.py [--rounds N] [--per-round N]

Two real QEMUs from one command line (``machines/p9-dual.toml``, ``--paused``, TCG): one
started by ``vmctl run --backend qemu`` (clients go through the supervisor's multiplexer,
:mod:`vmctl.runtime.qmpmux`), one started by hand with clients directly on its monitor
socket.  Rounds alternate between the two so both see the same machine load:

1. ``query-status`` round trip with a raw client (one line out, one line back), through
   the multiplexer vs directly on QEMU (target <= 1.3x), and the supervisor's CPU time per
   round trip; the same through ``qemu.qmp`` (what vmctl's own commands use);
2. 20 concurrent ``qemu.qmp`` clients x 50 ``query-status`` each through the multiplexer:
   every one served, zero errors (QEMU alone serves one client at a time).

State lives in a temporary folder; both QEMUs are stopped.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import ROOT, qmp_many_clients, qmp_round_trips, stop_all, report

sys.path.insert(0, str(ROOT))

P9 = ROOT / "machines" / "p9-dual.toml"


class Raw:
    """A raw QMP client, negotiated: one request line, one reply line."""

    def __init__(self, path: str) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(path)
        self.file = self.sock.makefile("rb")
        self.file.readline()
        self.sock.sendall(b'{"execute": "qmp_capabilities"}\n')
        self.file.readline()

    def round_trips(self, n: int) -> list[float]:
        out = []
        for _ in range(n):
            t = time.perf_counter()
            self.sock.sendall(b'{"execute": "query-status", "id": 1}\n')
            self.file.readline()
            out.append(time.perf_counter() - t)
        return out

    def close(self) -> None:
        self.file.close()
        self.sock.close()


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def bare_qemu(argv: list[str], folder: Path) -> tuple[subprocess.Popen, str]:
    """The instance's QEMU command line started by hand, its monitor on its own socket."""
    sock = str(folder / "direct.sock")
    argv = [re.sub(r"path=[^,]*", f"path={folder}/bare-console.sock", a)
            if a.startswith("socket,") else a for a in argv]
    argv[argv.index("-qmp") + 1] = f"unix:{sock},server=on,wait=off"
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while not os.path.exists(sock):
        if time.monotonic() > deadline or proc.poll() is not None:
            raise SystemExit("the bare QEMU did not make its monitor socket")
        time.sleep(0.01)
    return proc, sock


def ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--per-round", type=int, default=200)
    opts = ap.parse_args()
    if shutil.which("qemu-system-ppc64") is None:
        raise SystemExit("qemu-system-ppc64 is not installed (apt-get install qemu-system-ppc)")
    folder = Path(tempfile.mkdtemp(prefix="vbq-", dir="/tmp"))
    os.environ["VMCTL_STATE_DIR"] = str(folder / "state")
    os.environ["VMCTL_CACHE_DIR"] = str(folder / "cache")
    from vmctl.config import load_machine
    from vmctl.plugins import get_plugin_manager
    from vmctl.runtime.launch import Launch

    pm = get_plugin_manager()
    machine = load_machine(P9, pm)
    bare = None
    try:
        started = Launch(machine, pm, backend="qemu", name="bench-mux", paused=True).start()
        inst = Path(started.dir)
        argv = json.loads((inst / "instance.json").read_text())["argv"]
        supervisor = json.loads((inst / "proc.json").read_text())["supervisor_pid"]
        bare, direct = bare_qemu(argv, folder)
        print(f"0. reference, same run: load average {os.getloadavg()[0]:.2f} on "
              f"{os.cpu_count()} CPUs; {opts.rounds} rounds x {opts.per_round} round trips "
              f"each way, alternating")

        raw_direct, raw_mux = Raw(direct), Raw(started.socket)
        raw_direct.round_trips(50)
        raw_mux.round_trips(50)
        d_samples: list[float] = []
        m_samples: list[float] = []
        c0 = cpu_seconds(supervisor)  # idle while the direct rounds run
        for _ in range(opts.rounds):
            d_samples += raw_direct.round_trips(opts.per_round)
            m_samples += raw_mux.round_trips(opts.per_round)
        cpu = cpu_seconds(supervisor) - c0
        ratio = ms(m_samples) / ms(d_samples)
        cpu_us = cpu / (opts.rounds * opts.per_round) * 1e6
        raw_direct.close()  # QEMU alone serves one client at a time
        raw_mux.close()

        q_direct: list[float] = []
        q_mux: list[float] = []
        for _ in range(max(3, opts.rounds // 3)):
            q_direct += asyncio.run(qmp_round_trips(direct, opts.per_round))
            q_mux += asyncio.run(qmp_round_trips(started.socket, opts.per_round))
        q_ratio = ms(q_mux) / ms(q_direct)

        served, errors, secs = asyncio.run(qmp_many_clients(started.socket, 20, 50, expect="prelaunch"))
        rows = [("measure", "direct on QEMU", "through the multiplexer", "ratio / target"),
                ("query-status, raw client", f"{ms(d_samples) * 1000:.0f} us",
                 f"{ms(m_samples) * 1000:.0f} us",
                 f"{ratio:.2f}x (<= 1.3x: {'ok' if ratio <= 1.3 else 'MISSED'})"),
                ("query-status, qemu.qmp", f"{ms(q_direct) * 1000:.0f} us",
                 f"{ms(q_mux) * 1000:.0f} us", f"{q_ratio:.2f}x"),
                ("supervisor CPU per round trip", "-", f"{cpu_us:.0f} us", ""),
                ("20 clients x 50 query-status", "one client at a time",
                 f"{served}/1000 served, {errors} errors, {secs * 1000:.0f} ms",
                 "ok" if served == 1000 and errors == 0 else "MISSED")]
        print("1-2.")
        report(rows)
    finally:
        if bare is not None:
            bare.kill()
            bare.wait()
        stop_all(folder)
    return 0


if __name__ == "__main__":
    sys.exit(main())
