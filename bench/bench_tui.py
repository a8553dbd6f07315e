"""TUI benchmark: CPU cost of ``vmctl top`` and ``vmctl monitor`` on live simulator instances.

    .venv/bin/python bench/bench_tui.py [--runs N] [--seconds S] [--instances K]

1. ``vmctl top`` watching K (default 20) sim instances at its default 2 Hz: target ≤ 10 % of
   one core.
2. ``vmctl monitor NAME`` at its default 4 Hz on one of them: target ≤ 5 % of one core.

Each command runs as a user runs it — the real CLI in its own process, on a pseudo-terminal
of 160×50 whose output is drained — and is measured with **its own CPU time** (user + system
from ``/proc/PID/stat``; the simulators are other processes) over S seconds after a warm-up
that excludes start-up.  The median of N runs is printed with, as a same-run reference, an
idle Textual app on the same terminal (the floor any Textual screen costs).

State lives in a temporary folder; every instance is stopped at the end.
"""

from __future__ import annotations

import argparse
import fcntl
import os
import pty
import shutil
import signal
import statistics
import struct
import sys
import tempfile
import termios
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

#: ``vmctl`` with the TUI commands registered (until vmctl.cli.main lists "tui" itself).
SHIM = ("import sys; from vmctl.cli import main as M; "
        "M.COMMAND_MODULES = tuple(dict.fromkeys(M.COMMAND_MODULES + ('tui',))); "
        "M.main(sys.argv[1:])")
IDLE_APP = ("from textual.app import App\nfrom textual.widgets import Footer, Static\n"
            "class Idle(App):\n    def compose(self):\n        yield Static('idle')\n"
            "        yield Footer()\nIdle().run()\n")
TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of ``pid`` (not its children)."""
    with open(f"/proc/{pid}/stat", "rb") as f:
        fields = f.read().decode().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def measure(argv: list[str], env: dict[str, str], warmup: float, seconds: float) -> float:
    """Run ``argv`` on a 160×50 pty; its CPU share of one core over ``seconds``."""
    pid, fd = pty.fork()
    if pid == 0:
        os.execvpe(argv[0], argv, env)
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 160, 0, 0))
    stop = threading.Event()

    def drain() -> None:
        while not stop.is_set():
            try:
                if not os.read(fd, 65536):
                    return
            except OSError:
                return

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        time.sleep(warmup)
        c0, t0 = cpu_seconds(pid), time.monotonic()
        time.sleep(seconds)
        c1, t1 = cpu_seconds(pid), time.monotonic()
    finally:
        os.kill(pid, signal.SIGTERM)
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:
            pass
        stop.set()
        os.close(fd)
    return (c1 - c0) / (t1 - t0)


def start_fleet(n: int) -> list[str]:
    from vmctl.config import load_machine
    from vmctl.plugins import get_plugin_manager
    from vmctl.runtime.launch import Launch

    pm = get_plugin_manager()
    machine = load_machine(ROOT / "machines" / "p9-dual.toml")
    return [Launch(machine, pm, name=f"bench-{i:02d}").start().name for i in range(n)]


def stop_fleet(names: list[str]) -> None:
    from vmctl.errors import VmctlError
    from vmctl.runtime.control import stop

    for name in names:
        try:
            stop(name, force=True)
        except VmctlError as exc:
            print(f"warning: {name}: {exc}", file=sys.stderr)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=4.0)
    parser.add_argument("--instances", type=int, default=20)
    args = parser.parse_args()

    state = Path(tempfile.mkdtemp(prefix="vmctl-bench-tui-"))
    os.environ["VMCTL_STATE_DIR"] = str(state)
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "160", "LINES": "50",
           "PYTHONPATH": str(ROOT)}
    names: list[str] = []
    try:
        names = start_fleet(args.instances)
        cases = [
            ("idle Textual app (reference)", [sys.executable, "-c", IDLE_APP], None),
            (f"vmctl top, {len(names)} sim instances, 2 Hz",
             [sys.executable, "-c", SHIM, "top"], 0.10),
            ("vmctl monitor, 1 sim instance, 4 Hz",
             [sys.executable, "-c", SHIM, "monitor", names[0]], 0.05),
        ]
        print(f"CPU share of one core, median of {args.runs} runs of {args.seconds:.0f} s "
              f"(after {args.warmup:.0f} s warm-up), the TUI process's own user+system time")
        failed = False
        for label, argv, target in cases:
            shares = [measure(argv, env, args.warmup, args.seconds) for _ in range(args.runs)]
            med = statistics.median(shares)
            verdict = "" if target is None else (
                f"  target ≤ {target:.0%}: {'ok' if med <= target else 'OVER'}")
            failed |= target is not None and med > target
            runs = ", ".join(f"{s:.1%}" for s in shares)
            print(f"  {label:<42} {med:6.1%}   (runs: {runs}){verdict}")
        return 1 if failed else 0
    finally:
        stop_fleet(names)
        shutil.rmtree(state, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
