"""Lowering a machine to a QEMU command line, keeping where each piece came from.

Pure: no I/O, no process.  The host lowers ``[machine]`` and ``[boot]``; plugins add
fragments through ``vmctl_qemu_args`` (whole options, properties of the single
``-machine``/``-cpu`` options, words for ``-append``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pluggy

from vmctl.config.hostschema import QEMU_BINARY, parse_size
from vmctl.config.machine import Machine
from vmctl.plugins import call_flat
from vmctl.types import ArgFragment, CpuProp, KernelArg, MachineProp


@dataclass(frozen=True)
class Origin:
    """Who put an argument there: ``plugin`` (``vmctl`` for the host) and the TOML key."""

    plugin: str
    key: str
    file: str
    line: int

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else (self.file or "default")
        return f"{self.plugin}: {self.key or '-'} ({where})"


@dataclass
class Unit:
    """One option and its value(s), e.g. ``("-machine", "pseries,ic-mode=dual")``."""

    args: tuple[str, ...]
    origins: list[Origin] = field(default_factory=list)


@dataclass
class Argv:
    """The command line: ``args`` (binary first) and the units it was assembled from."""

    units: list[Unit]

    @property
    def args(self) -> list[str]:
        return [a for u in self.units for a in u.args]

    def to_json(self) -> list[dict[str, object]]:
        return [{"args": list(u.args),
                 "sources": [{"plugin": o.plugin, "key": o.key, "file": o.file, "line": o.line}
                             for o in u.origins]} for u in self.units]


def qemu_binary(arch: str) -> str:
    """``qemu-system-ppc64`` for ``ppc64`` …"""
    return QEMU_BINARY[arch]


def _opt(props: list[tuple[str, str]]) -> str:
    return ",".join(f"{k}={v}" for k, v in props)


def build_argv(machine: Machine, pm: pluggy.PluginManager) -> Argv:
    """The full QEMU argv for ``machine``: host parts, then each plugin's fragments."""
    m = machine

    def origin(key: str, plugin: str = "vmctl") -> Origin:
        src = m.source(key)
        return Origin(plugin, key, src.file, 0 if m.is_default(key) else src.line)

    frags = call_flat(pm, "vmctl_qemu_args", machine=m)
    mach = m.section("machine")
    units = [Unit((qemu_binary(m.arch),), [origin("machine.arch")]),
             Unit(("-name", f"guest={m.name}"), [origin("machine.name")])]

    mprops = [(p.name, p.value) for p in frags if isinstance(p, MachineProp)]
    units.append(Unit(("-machine", ",".join([mach["type"], *(f"{k}={v}" for k, v in mprops)])),
                      [origin("machine.type")] + [origin(p.key, p.plugin) for p in frags
                                                   if isinstance(p, MachineProp)]))
    accel = mach.get("accel", "auto")
    accels = ["kvm", "tcg"] if accel == "auto" else [accel]
    for a in accels:
        units.append(Unit(("-accel", a), [origin("machine.accel")]))
    cprops = [(p.name, p.value) for p in frags if isinstance(p, CpuProp)]
    units.append(Unit(("-cpu", ",".join([mach["cpu"], *(f"{k}={v}" for k, v in cprops)])),
                      [origin("machine.cpu")] + [origin(p.key, p.plugin) for p in frags if isinstance(p, CpuProp)]))
    smp = str(mach.get("cpus", 1))
    if mach.get("max-cpus"):
        smp += f",maxcpus={mach['max-cpus']}"
    units.append(Unit(("-smp", smp), [origin("machine.cpus")]))
    mib = (parse_size(str(mach.get("memory", "1G"))) or (1 << 30)) >> 20
    units.append(Unit(("-m", f"{mib}M"), [origin("machine.memory")]))
    units.append(Unit(("-nodefaults",), [Origin("vmctl", "", "always", 0)]))

    boot = m.section("boot")
    for key, flag in (("kernel", "-kernel"), ("initrd", "-initrd")):
        if boot.get(key):
            units.append(Unit((flag, str(m.resolve_path(f"boot.{key}"))), [origin(f"boot.{key}")]))
    kargs = [k for k in frags if isinstance(k, KernelArg)]
    append = " ".join(x for x in [str(boot.get("append", "")).strip(), *(k.text for k in kargs)] if x)
    if append and boot.get("kernel"):  # QEMU refuses -append without -kernel
        units.append(Unit(("-append", append), ([origin("boot.append")] if boot.get("append") else [])
                          + [origin(k.key, k.plugin) for k in kargs]))
    for f in frags:
        if isinstance(f, ArgFragment):
            units.append(Unit(tuple(f.args), [origin(f.key, f.plugin)]))
    return Argv(units)
