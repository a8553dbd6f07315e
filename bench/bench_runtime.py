"""Runtime benchmark: start-up to QMP-ready, QMP round trips, many clients.

    .venv/bin/python bench/bench_runtime.py [--runs N] [--no-qemu]

Prints medians and same-run ratios:

1. ``vmctl run`` (sim) to QMP-ready — the launch itself (validated machine in hand:
   spawn, supervisor, simulator start, greeting; target ≤ 150 ms) and the whole CLI
   process for reference (adds Python, typer, plugin loading and validation).
2. ``--backend qemu`` launch vs bare QEMU started by hand to its QMP greeting, same argv
   (target: launch ≤ bare + 50 ms).  vmctl's "ready" is stricter than a greeting (QEMU's
   monitor thread greets before the machine is built): it waits for a first command
   reply, so bare QEMU's time to that reply is shown too.
3. ``query-status`` round trip through ``qemu.qmp``, sim vs real QEMU (target ≤ 1.0×).
4. 50 concurrent QMP clients on one simulator, each 20 commands: all served, no error.

State lives in a temporary folder; every instance is stopped.

Bytecode: an installed vmctl has its ``.pyc`` files; a checkout run with
``PYTHONDONTWRITEBYTECODE=1`` recompiles vmctl and every plugin in every process (about
100 ms here).  The benchmark measures with a private ``PYTHONPYCACHEPREFIX`` (warmed by one
unmeasured start) and, when the variable is set, also as given ("no bytecode cache").
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import qmp_many_clients, qmp_round_trips, stop_all

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
P9 = ROOT / "machines" / "p9-dual.toml"


def median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def launch_times(machine, pm, backend: str, runs: int, tag: str = "",
                 greetings: list[float] | None = None) -> list[float]:
    """Seconds from Launch.start() to QMP-ready (greeting + first reply); the times to
    the greeting alone are appended to ``greetings``."""
    from vmctl.runtime.control import stop
    from vmctl.runtime.launch import Launch

    out = []
    for i in range(runs):
        name = f"bench-{backend}-{tag}{i}"
        t0 = time.perf_counter()
        started = Launch(machine, pm, backend=backend, name=name, paused=True).start()
        out.append(time.perf_counter() - t0)
        if greetings is not None:
            greetings.append(started.to_greeting)
        stop(name, force=True)
    return out


def cli_times(runs: int) -> list[float]:
    from vmctl.runtime.control import stop

    from vmctl.cli import main as M

    shim = ("import sys; from vmctl.cli import main as M; "
            "M.COMMAND_MODULES = tuple(dict.fromkeys(M.COMMAND_MODULES + ('run',))); "
            "M.main(sys.argv[1:])")
    head = ["-m", "vmctl"] if "run" in M.COMMAND_MODULES else ["-c", shim]
    out = []
    for i in range(runs):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, *head, "run", str(P9), "--name", f"cli-{i}"],
                       check=True, capture_output=True, cwd=ROOT)
        out.append(time.perf_counter() - t0)
        stop(f"cli-{i}", force=True)
    return out


def _greets(path: str) -> bool:
    import socket

    s = socket.socket(socket.AF_UNIX)
    s.settimeout(1.0)
    try:
        s.connect(path)
        return b"QMP" in s.recv(4096)
    except OSError:
        return False
    finally:
        s.close()


def bare_qemu_time(argv: list[str], sock: Path, first_reply: bool) -> float:
    """QEMU started by hand: seconds to its greeting, or to its first command reply."""
    from vmctl.runtime.launch import try_ready

    ready = (lambda p: try_ready(p, 1.0) is not None) if first_reply else _greets
    t0 = time.perf_counter()
    proc = subprocess.Popen([a.replace("@SOCK@", str(sock)) for a in argv],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while not ready(str(sock)):
        time.sleep(0.002)
    took = time.perf_counter() - t0
    proc.kill()
    proc.wait()
    return took


def qemu_interleaved(machine, pm, argv: list[str], runs: int, folder: Path
                     ) -> tuple[list[float], list[float], list[float], list[float]]:
    """vmctl's qemu launch and bare QEMU, alternated so both see the same machine load."""
    launch, launch_greet, greet, reply = [], [], [], []
    for i in range(runs):
        launch += launch_times(machine, pm, "qemu", 1, tag=str(i), greetings=launch_greet)
        greet.append(bare_qemu_time(argv, folder / f"g{i}.sock", first_reply=False))
        reply.append(bare_qemu_time(argv, folder / f"r{i}.sock", first_reply=True))
    return launch, launch_greet, greet, reply


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--no-qemu", action="store_true")
    opts = ap.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="vb-", dir="/tmp"))
    os.environ["VMCTL_STATE_DIR"] = str(folder / "state")
    os.environ["VMCTL_CACHE_DIR"] = str(folder / "cache")
    from vmctl.config import load_machine
    from vmctl.plugins import get_plugin_manager
    from vmctl.qemu.argv import build_argv
    from vmctl.runtime.control import stop
    from vmctl.runtime.launch import Launch

    pm = get_plugin_manager()
    machine = load_machine(P9, pm)
    qemu = not opts.no_qemu and shutil.which("qemu-system-ppc64") is not None
    try:
        py = []
        for _ in range(opts.runs):
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-c", "pass"], check=True)
            py.append(time.perf_counter() - t0)
        print(f"0. reference, same run: 'python -c pass' median {median_ms(py):.1f} ms; "
              f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
        nocache = None
        if os.environ.get("PYTHONDONTWRITEBYTECODE"):
            nocache = median_ms(launch_times(machine, pm, "sim", max(5, opts.runs // 3)))
            del os.environ["PYTHONDONTWRITEBYTECODE"]
        os.environ["PYTHONPYCACHEPREFIX"] = str(folder / "pycache")
        sys.dont_write_bytecode = False  # the forked simulator imports in this interpreter
        sys.pycache_prefix = str(folder / "pycache")
        launch_times(machine, pm, "sim", 1)  # warm the bytecode cache
        cli_times(1)
        launch = launch_times(machine, pm, "sim", opts.runs)
        cli = cli_times(max(5, opts.runs // 3))
        if nocache is not None:
            print(f"   (no bytecode cache, PYTHONDONTWRITEBYTECODE=1: sim launch median "
                  f"{nocache:.1f} ms)")
        print(f"1. sim launch to QMP-ready: median {median_ms(launch):.1f} ms "
              f"(target <= 150 ms: {'ok' if median_ms(launch) <= 150 else 'MISSED'}); "
              f"whole 'vmctl run' process: median {median_ms(cli):.1f} ms")
        sim = Launch(machine, pm, name="bench-rt").start()
        rt_sim = asyncio.run(qmp_round_trips(sim.socket, 500, warmup=20))
        served, errors, secs = asyncio.run(qmp_many_clients(sim.socket, 50, 20))
        if qemu:
            from vmctl.qemu.process import managed_args

            bare_argv = managed_args(build_argv(machine, pm).args, socket="@SOCK@",
                                     log=folder / "bare.log", paused=True)
            bare_argv[0] = shutil.which(bare_argv[0]) or bare_argv[0]
            qmp = bare_argv.index("-qmp")  # by hand: clients on QEMU's own monitor socket
            bare_argv[qmp + 1] = "unix:@SOCK@,server=on,wait=off"
            launch_times(machine, pm, "qemu", 1, tag="warm")
            qlaunch, qgreet, bare, bare_reply = qemu_interleaved(machine, pm, bare_argv,
                                                                 opts.runs, folder)
            diff = median_ms(qgreet) - median_ms(bare)
            print(f"2. to the QMP greeting: vmctl run --backend qemu {median_ms(qgreet):.1f} ms, "
                  f"bare QEMU {median_ms(bare):.1f} ms, overhead {diff:+.1f} ms (target <= +50 ms: "
                  f"{'ok' if diff <= 50 else 'MISSED'}); to the first reply (vmctl's 'ready'): "
                  f"{median_ms(qlaunch):.1f} ms vs bare {median_ms(bare_reply):.1f} ms "
                  f"({median_ms(qlaunch) - median_ms(bare_reply):+.1f} ms)")
            real = Launch(machine, pm, backend="qemu", name="bench-rtq", paused=True).start()
            rt_qemu = asyncio.run(qmp_round_trips(real.socket, 500, warmup=20))
            ratio = median_ms(rt_sim) / median_ms(rt_qemu)
            print(f"3. query-status round trip via qemu.qmp: sim {median_ms(rt_sim) * 1000:.0f} us, "
                  f"QEMU {median_ms(rt_qemu) * 1000:.0f} us, ratio {ratio:.2f}x "
                  f"(target <= 1.0x: {'ok' if ratio <= 1.0 else 'MISSED'})")
            stop("bench-rtq", force=True)
        else:
            print(f"2. skipped (no QEMU); 3. sim round trip {median_ms(rt_sim) * 1000:.0f} us")
        print(f"4. 50 concurrent clients x 20 query-status: {served}/1000 served, {errors} "
              f"errors, {secs * 1000:.0f} ms total")
        stop("bench-rt", force=True)
    finally:
        stop_all(folder)
    return 0


if __name__ == "__main__":
    sys.exit(main())
