"""Completion benchmark (issue 9): one TAB's request against `python -c "import typer"`.

Run: .venv/bin/python bench/bench_completion.py [--runs N]
Target: every request's median ≤ 1.2 × the median of `python -c "import typer"` measured in
the same run, interleaved with it (so machine noise hits both alike).  The requests are the
ones the shell scripts make (`python -P -m vmctl.complete SHELL CWORD WORD…`) with a warm
plugin cache, as after the first TAB; the bash row goes through the real bash function.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from common import PY, ROOT, report

REQUESTS = {
    "command names": ["bash", "1", "vmctl", ""],
    "option names": ["zsh", "2", "vmctl", "validate", "--"],
    "option value (choice)": ["fish", "3", "vmctl", "validate", "--backend", ""],
    "export formats (plugin cache)": ["fish", "4", "vmctl", "export", "m.toml", "--format", ""],
    "instance names (20 instances)": ["zsh", "2", "vmctl", "status", ""],
    "machine files": ["bash", "2", "vmctl", "show", "mach"],
}

BASH_DRIVE = """source {script}
COMP_WORDS=(vmctl validate --backend ''); COMP_CWORD=3; _vmctl; printf '%s\\n' "${{COMPREPLY[@]}}"
"""


def run_once(cmd: list[str], env: dict[str, str]) -> float:
    t = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, env=env, cwd=ROOT)
    elapsed = time.perf_counter() - t
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} exited {proc.returncode}: {proc.stderr.decode()[-400:]}")
    return elapsed


def interleaved(cmd: list[str], ref: list[str], env: dict[str, str], runs: int) -> tuple[float, float]:
    """Medians of ``cmd`` and ``ref``, run alternately after one warm-up each."""
    run_once(cmd, env)
    run_once(ref, env)
    a, b = [], []
    for _ in range(runs):
        a.append(run_once(cmd, env))
        b.append(run_once(ref, env))
    return statistics.median(a), statistics.median(b)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=21)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        state, cache = Path(tmp) / "state", Path(tmp) / "cache"
        for i in range(20):
            inst = state / f"guest-{i:02d}"
            inst.mkdir(parents=True)
            (inst / "instance.json").write_text(json.dumps({"name": inst.name, "backend": "sim"}))
        env = {**os.environ, "VMCTL_STATE_DIR": str(state), "VMCTL_CACHE_DIR": str(cache),
               "VMCTL_COMPLETE_PYTHON": PY}
        ref = [PY, "-c", "import typer"]
        rows = [("request", "median", "import typer (same run)", "ratio / target")]
        worst = 0.0
        for label, words in REQUESTS.items():
            t, r = interleaved([PY, "-P", "-m", "vmctl.complete", *words], ref, env, args.runs)
            worst = max(worst, t / r)
            rows.append((label, f"{t * 1000:.1f} ms", f"{r * 1000:.1f} ms", f"{t / r:.2f}x (<= 1.2x)"))
        script = ROOT / "completions" / "vmctl.bash"
        bash = ["bash", "--norc", "--noprofile", "-c", BASH_DRIVE.format(script=script)]
        bare = ["bash", "--norc", "--noprofile", "-c", ref[0] + " -c 'import typer'"]
        t, r = interleaved(bash, bare, env, args.runs)
        rows.append(("bash _vmctl function, end to end", f"{t * 1000:.1f} ms",
                     f"bash + import typer {r * 1000:.1f} ms", f"{t / r:.2f}x"))
        report(rows)
        print(f"worst request ratio: {worst:.2f}x ({'ok' if worst <= 1.2 else 'OVER the 1.2x budget'})")


if __name__ == "__main__":
    main()
