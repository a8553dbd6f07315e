"""Core benchmarks (issue 2): `vmctl --help` start-up, and validate of large fleets.

Run: .venv/bin/python bench/bench_core.py [--runs N]
Every figure is a median, reported as a ratio to a reference measured in the same run.
"""

from __future__ import annotations

import argparse
import tempfile
import time
import tomllib
from pathlib import Path

from common import PY, fleet, report, wall


def parse_only(folder: Path) -> float:
    t = time.perf_counter()
    for p in sorted(folder.glob("*.toml")):
        tomllib.loads(p.read_text())
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=15)
    args = ap.parse_args()
    rows = [("benchmark", "median", "reference (same run)", "ratio / target")]

    typer_t = wall([PY, "-c", "import typer"], args.runs)
    help_t = wall([PY, "-m", "vmctl", "--help"], args.runs)
    rows.append(("vmctl --help", f"{help_t * 1000:.0f} ms", f"import typer {typer_t * 1000:.0f} ms",
                 f"{help_t / typer_t:.2f}x (target <= 1.3x)"))

    with tempfile.TemporaryDirectory() as tmp:
        small = fleet(Path(tmp) / "1k", 1000)
        large = fleet(Path(tmp) / "10k", 10000)
        runs = max(3, args.runs // 3)
        t1 = wall([PY, "-m", "vmctl", "validate", str(small)], runs)
        t10 = wall([PY, "-m", "vmctl", "validate", str(large)], runs)
        p1 = min(parse_only(small) for _ in range(3))
        rows.append(("validate 1,000 machines", f"{t1:.2f} s", f"tomllib parse only {p1:.2f} s",
                     f"{t1 / p1:.1f}x parse (target <= 1 s)"))
        rows.append(("validate 10,000 machines", f"{t10:.2f} s", f"1,000 machines {t1:.2f} s",
                     f"{t10 / t1:.1f}x for 10x machines (target <= 10 s, linear)"))
    report(rows)


if __name__ == "__main__":
    main()
