"""Hostile machine files from the shipped ones, and the promises every command must keep on them.

:func:`generate` turns a seed into a folder holding a mutated machine: values of the wrong
type, huge, unicode, control characters and shell metacharacters; deep nesting; unknown
keys and device kinds; includes of FIFOs, devices, folders, missing files, cycles, symlink
loops and over-long names; raw junk lines; odd file names.  :func:`attack` runs
``validate``, ``show``, ``plan`` and ``export`` (argv, sh, libvirt-xml) on it in-process and
returns the promises it broke:

* the exit status is 0, 1 or 2, and no exception escapes (no traceback), not even one
  the plugin manager catches and reports as a failed plugin;
* every ``error[…]`` line names a file and a line;
* text output carries no raw control character;
* a libvirt XML export parses;
* an ``sh`` export passes ``sh -n``, and running it runs exactly one command, a
  ``qemu-system-*`` found first on ``PATH`` that records its argv, which must equal the
  ``argv`` export (plus the script's console options); no canary file appears.

Used by ``tests/safety/test_attack.py`` (hypothesis) and ``scripts/fuzz-machines`` (2,000+
seeded inputs with counts).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import json
import os
import random
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomli_w

ROOT = Path(__file__).resolve().parents[2]
MACHINES = ROOT / "machines"
SHIPPED = sorted(p.name for p in MACHINES.glob("*.toml"))
CANARY = "PWNED"
SHELL_BAITS = ["$(touch PWNED)", "`touch PWNED`", "'; touch PWNED; '", '"; touch PWNED; "',
               "\ntouch PWNED\n", "a\nb", "$HOME", "*", "~root", "-append", "--", "x;y|z&w>v<u"]
STRINGS = ["", "x", "é✓𝄞", "\x1b]0;owned\x07", "\x00", "\x0b", "\ufffe", "\u2028", "\x9b31m",
           "\t", " ", "2G", "1.5G", "2 GB", "999999999999999999999G", "0", "-1", "../../etc/passwd",
           "/dev/zero", "/nonexistent/vmlinux", "guest:ppc64le", "power9", "xive", "dual",
           "pseries", "vfio-pci", "vfio-ap", "0000:01:00.0", "05.0004", "a" * 300, "[[[", "{",
           "a.b.c", "#", "\\", "'", '"', *SHELL_BAITS]
KEYS = ["name", "arch", "type", "cpu", "cpus", "max-cpus", "memory", "accel", "kernel", "initrd",
        "append", "firmware", "ic-mode", "kernel-irqchip", "mode", "experimental", "seed",
        "workload", "kind", "id", "host", "iommu", "iopf", "adapters", "domains",
        "control-domains", "uuid", "include", "bogus", "a b", "x\x1by", "", "device"]
SECTIONS = ["machine", "boot", "irq", "async-pf", "sim", "pseries", "device", "nosuch"]
FILE_NAMES = ["m.toml", "evil\ntouch PWNED\n.toml", "a b.toml", "x\x1b[2J.toml", "é.toml",
              "-m.toml", "$(touch PWNED).toml", "m"]


def value(rng: random.Random, depth: int = 0) -> Any:
    """A random TOML value: any type, including the ones machine keys never take."""
    kind = rng.randrange(12 if depth < 3 else 8)
    if kind == 0:
        return rng.choice([0, 1, -1, 2, 64, 4096, 2**31, 2**63 - 1, -(2**63), 0xab])
    if kind == 1:
        return rng.choice([0.0, 1.5, -0.0, 1e308, float("inf"), float("-inf"), float("nan")])
    if kind == 2:
        return rng.choice([True, False])
    if kind in (3, 4, 5, 6):
        s = rng.choice(STRINGS)
        return s + rng.choice(STRINGS) if rng.random() < 0.2 else s
    if kind == 7:
        return rng.choice([dt.date(2026, 12, 3), dt.time(9, 30), dt.datetime(2026, 1, 1, 0, 0)])
    if kind == 8:
        return [value(rng, depth + 1) for _ in range(rng.randrange(4))]
    if kind == 9:
        return {rng.choice(KEYS) or "k": value(rng, depth + 1) for _ in range(rng.randrange(3))}
    if kind == 10:
        nested: Any = rng.choice([1, "x"])
        for _ in range(rng.choice([2, 10, 31, 33, 200])):
            nested = [nested]
        return nested
    return [rng.choice([5, 6, 0xab, 255, 256, -1]) for _ in range(rng.randrange(6))]


@dataclass
class Case:
    """One generated input: the folder, the main file, and what was done to it."""

    seed: int
    folder: Path
    main: Path
    steps: list[str] = field(default_factory=list)


def _special_include(rng: random.Random, folder: Path) -> str:
    what = rng.randrange(9)
    if what == 0:
        if not os.path.lexists(folder / "fifo.toml"):
            os.mkfifo(folder / "fifo.toml")
        return "fifo.toml"
    if what == 1:
        return rng.choice(["/dev/null", "/dev/zero", "/proc/self/status"])
    if what == 2:
        (folder / "dir.toml").mkdir(exist_ok=True)
        return "dir.toml"
    if what == 3:
        return "missing.toml"
    if what == 4:
        if not os.path.lexists(folder / "loop-a.toml"):
            (folder / "loop-a.toml").symlink_to(folder / "loop-b.toml")
            (folder / "loop-b.toml").symlink_to(folder / "loop-a.toml")
        return "loop-a.toml"
    if what == 5:
        return "x" * rng.choice([255, 256, 5000]) + ".toml"
    if what == 6:
        (folder / "cyc.toml").write_text('include = ["cyc2.toml"]\n')
        (folder / "cyc2.toml").write_text('include = ["cyc.toml"]\n')
        return "cyc.toml"
    if what == 7:
        (folder / "bomb5.toml").write_text("[sim]\nseed = 2\n")
        for k in range(4, -1, -1):
            (folder / f"bomb{k}.toml").write_text(
                "include = [" + ", ".join([f'"bomb{k + 1}.toml"'] * 12) + "]\n")
        return "bomb0.toml"
    return "base/" + rng.choice(["pseries.toml", "s390.toml", "x86.toml"])


def _mutate_data(rng: random.Random, data: dict[str, Any], folder: Path, steps: list[str]) -> None:
    for _ in range(rng.randrange(1, 5)):
        op = rng.randrange(7)
        if op == 0:  # set a value somewhere
            section = rng.choice(SECTIONS)
            if section == "device":
                devs = data.setdefault("device", [])
                if isinstance(devs, list):
                    dev = {"kind": rng.choice(["vfio-pci", "vfio-ap", "disk", value(rng)])}
                    dev[rng.choice(KEYS) or "k"] = value(rng)
                    devs.append(dev)
                    steps.append(f"device += {dev!r}")
                continue
            table = data.setdefault(section, {})
            if isinstance(table, dict):
                key = rng.choice(KEYS) or "k"
                table[key] = value(rng)
                steps.append(f"{section}.{key} = {table[key]!r}")
        elif op == 1 and data:  # delete something
            victim = rng.choice(list(data))
            steps.append(f"del {victim}")
            del data[victim]
        elif op == 2:  # a section of the wrong shape
            section = rng.choice(SECTIONS)
            data[section] = value(rng)
            steps.append(f"{section} = {data[section]!r}")
        elif op == 3:  # hostile includes
            incs = [_special_include(rng, folder) for _ in range(rng.randrange(1, 3))]
            prev = data.get("include")
            data["include"] = incs + (prev[:1] if isinstance(prev, list) else [])
            steps.append(f"include = {data['include']!r}")
        elif op == 4:
            data["include"] = value(rng)
            steps.append(f"include = {data['include']!r}")
        elif op == 5 and isinstance(data.get("machine"), dict):
            data["machine"]["name"] = rng.choice(["m", "p9\n", "", "A", "a" * 64, "ok-name", "x\x1b"])
            steps.append(f"machine.name = {data['machine']['name']!r}")
        elif op == 6:  # a section of the right name holding hostile text in every key
            data.setdefault("boot", {})
            if isinstance(data["boot"], dict):
                data["boot"]["append"] = "console=hvc0 " + rng.choice(SHELL_BAITS)
                steps.append(f"boot.append = {data['boot']['append']!r}")


_JUNK = ["[", "]]", "= 1", "a = ", '"unterminated', "[machine]", "[[device]]", "x = [1,", "\x00",
         "a." * 200 + "b = 1", "{", "'''", '"""', "include = [\"fifo.toml\"", "key = 1 # \x1b[2J",
         "[" + ".".join(["a"] * 100) + "]", "x = " + "[" * 50 + "]" * 50]


def generate(seed: int, workdir: Path) -> Case:
    """The mutated machine for ``seed`` in a fresh folder under ``workdir`` (reproducible)."""
    rng = random.Random(seed)
    folder = workdir / f"case-{seed}"
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    shutil.copytree(MACHINES / "base", folder / "base")
    source = MACHINES / rng.choice(SHIPPED)
    import tomllib

    data = tomllib.loads(source.read_text())
    steps = [f"from {source.name}"]
    _mutate_data(rng, data, folder, steps)
    try:
        text = tomli_w.dumps(data)
    except (TypeError, ValueError) as exc:  # e.g. a value tomli-w cannot write: keep the original
        text = source.read_text()
        steps.append(f"(tomli-w refused: {exc})")
    if rng.random() < 0.25:
        lines = text.splitlines()
        at = rng.randrange(len(lines) + 1)
        junk = rng.choice(_JUNK)
        lines.insert(at, junk)
        text = "\n".join(lines) + "\n"
        steps.append(f"line {at + 1}: {junk[:40]!r}")
    name = rng.choice(FILE_NAMES) if rng.random() < 0.3 else "m.toml"
    main = folder / name
    main.write_text(text, encoding="utf-8", errors="surrogateescape")
    if rng.random() < 0.03:
        main.unlink()
        os.mkfifo(main)
        steps.append("main file is a FIFO")
    return Case(seed, folder, main, steps)


# -- running the commands -----------------------------------------------------------------
COMMANDS = [["validate"], ["show"], ["show", "--format", "json"], ["plan"],
            ["plan", "--format", "json"], ["export", "--format", "argv"],
            ["export", "--format", "sh"], ["export", "--format", "libvirt-xml"]]
_LOCATED = re.compile(r"^.+:\d+: (error|warning|note)\[")
_RAW_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029]")


@dataclass
class Outcome:
    args: list[str]
    code: int
    out: str
    err: str
    crash: str = ""


def run_inprocess(args: list[str], session: Any = None) -> Outcome:
    """``vmctl ARGS`` in this process: its exit status and output, or the escaped exception."""
    from vmctl.cli.main import main

    out, err = io.StringIO(), io.StringIO()
    code, crash = 0, ""
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main(args, session=session)
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        except Exception as exc:  # noqa: BLE001 - this is what the attack looks for
            import traceback

            code, crash = -1, "".join(traceback.format_exception(exc))
    return Outcome(args, code, out.getvalue(), err.getvalue(), crash)


def fake_qemu_path(folder: Path) -> tuple[str, Path]:
    """A ``PATH`` whose ``qemu-system-*`` record their argv to the returned file."""
    bindir = folder / "fake-bin"
    record = folder / "qemu-argv.jsonl"
    if not bindir.exists():
        bindir.mkdir()
        for arch in ("ppc64", "x86_64", "aarch64", "s390x"):
            exe = bindir / f"qemu-system-{arch}"
            exe.write_text("#!/usr/bin/python3\nimport json, sys\n"
                           f"open({str(record)!r}, 'a').write(json.dumps(sys.argv) + '\\n')\n")
            exe.chmod(0o755)
    return f"{bindir}:/usr/bin:/bin", record


def attack(case: Case) -> list[str]:
    """Run every command on ``case``; the broken promises (empty when all hold)."""
    broken: list[str] = []
    from vmctl.cli.common import Session

    rel = os.path.relpath(case.main)
    outcomes = {}
    session = Session()  # one plugin manager for the case: a plugin left out stays out
    for cmd in COMMANDS:
        o = run_inprocess([*cmd[:1], rel, *cmd[1:]], session)
        outcomes[" ".join(cmd)] = o
        where = f"vmctl {' '.join(cmd)}"
        if o.crash:
            broken.append(f"{where}: traceback\n{o.crash}")
            continue
        if o.code not in (0, 1, 2):
            broken.append(f"{where}: exit status {o.code}")
        if "Traceback" in o.out + o.err:
            broken.append(f"{where}: a traceback was printed")
        if "warning: plugin" in o.err:
            broken.append(f"{where}: a plugin failed: {o.err.strip()}")
        for line in (o.out + o.err).splitlines():
            if "error[" in line and not _LOCATED.match(line):
                broken.append(f"{where}: error without file:line: {line!r}")
        if cmd != ["export", "--format", "sh"] and _RAW_CONTROL.search(o.out + o.err):
            broken.append(f"{where}: raw control character in the output")
    xml = outcomes["export --format libvirt-xml"]
    if xml.code == 0:
        try:
            ET.fromstring(xml.out)
        except ET.ParseError as exc:
            broken.append(f"libvirt-xml does not parse: {exc}")
    sh, argv = outcomes["export --format sh"], outcomes["export --format argv"]
    if sh.code == 0:
        broken += _check_script(case, sh.out, json.loads(argv.out) if argv.code == 0 else None)
    return broken


def _check_script(case: Case, script: str, argv: list[str] | None) -> list[str]:
    from vmctl.export.sh import INTERACTIVE

    path = case.folder / "run.sh"
    path.write_text(script)
    if subprocess.run(["sh", "-n", str(path)], capture_output=True).returncode != 0:
        return ["sh export fails sh -n"]
    env_path, record = fake_qemu_path(case.folder)
    record.unlink(missing_ok=True)
    subprocess.run(["sh", str(path)], cwd=case.folder, env={"PATH": env_path, "HOME": str(case.folder)},
                   capture_output=True, timeout=20)
    problems = []
    if list(case.folder.rglob(f"{CANARY}*")) or Path(CANARY).exists():
        problems.append("sh export ran an injected command")
    runs = [json.loads(x) for x in record.read_text().splitlines()] if record.exists() else []
    if len(runs) != 1:
        problems.append(f"sh export ran QEMU {len(runs)} times")
    elif argv is not None and [Path(runs[0][0]).name, *runs[0][1:]] != [Path(argv[0]).name, *argv[1:],
                                                                        *INTERACTIVE]:
        problems.append(f"sh export ran another argv than export --format argv: {runs[0]!r}")
    return problems
