"""The host-owned sections (``machine``, ``boot``, ``sim``) and per-arch knowledge.

These are the same :class:`~vmctl.types.Section` records plugins contribute, so one table
drives validation, ``vmctl show``, the TOML reference and completion.
"""

from __future__ import annotations

import re

from vmctl.types import ARCHES, Option, Section

NAME_PATTERN = r"^[a-z0-9][a-z0-9-]{0,62}$"
SIZE_RE = re.compile(r"^\s*(\d+)\s*([KMGT]?)(i?B)?\s*$", re.IGNORECASE)

MACHINE = Section("machine", "What the machine is: identity, architecture, CPUs, memory, accelerator.", (
    Option("name", "str", "instance name: lower-case letters, digits and '-', up to 63 characters",
           required=True, pattern=NAME_PATTERN),
    Option("arch", "str", "guest architecture; selects qemu-system-ARCH", required=True, choices=ARCHES),
    Option("type", "str", "QEMU machine type (-machine), e.g. pseries, q35, virt, s390-ccw-virtio", required=True),
    Option("cpu", "str", "QEMU CPU model (-cpu), e.g. power9, host, max, cortex-a72, gen15a", required=True),
    Option("cpus", "int", "vCPUs at start (-smp)", default=1, minimum=1, maximum=2048),
    Option("max-cpus", "int", "vCPUs the machine can grow to (-smp maxcpus=)", minimum=1, maximum=2048),
    Option("memory", "size", "guest RAM, e.g. 512M or 2G (-m)", default="1G"),
    Option("accel", "str", "accelerator: tcg (emulation), kvm, or auto (kvm when usable, else tcg)",
           default="auto", choices=("tcg", "kvm", "auto")),
), plugin="vmctl")

BOOT = Section("boot", "Direct kernel boot.", (
    Option("kernel", "path", "guest kernel image (-kernel), relative to this file; \"guest:ARCH\" is Debian's "
           "kernel from vmctl's cache, fetched by run --backend qemu (vmctl guest list)"),
    Option("initrd", "path", "initial ramdisk (-initrd), relative to this file; \"guest:ARCH\" is vmctl's "
           "busybox initramfs from its cache"),
    Option("append", "str", "guest kernel command line (-append); used only with kernel", default=""),
    Option("firmware", "str", "pseries firmware: slof or vof", default="default", choices=("default", "slof", "vof"),
           deprecated="write [pseries] firmware instead (a key of the spapr-irq plugin)"),
), plugin="vmctl")

SIM = Section("sim", "The embedded simulator (vmctl run --backend sim).", (
    Option("seed", "int", "seed of every random choice the simulator makes", default=1, minimum=0),
    Option("workload", "str", "guest workload: default (boot, then a steady mix), idle, busy, or panic "
           "(the guest kernel panics after boot, as a crash drill)",
           default="default", choices=("default", "idle", "busy", "panic")),
), plugin="vmctl")

HOST_SECTIONS = (MACHINE, BOOT, SIM)

#: Machine types per arch (versioned forms such as ``pseries-7.2`` are accepted too);
#: ``vmctl validate --backend qemu`` checks against the installed QEMU instead.
MACHINE_TYPES: dict[str, tuple[str, ...]] = {
    "ppc64": ("pseries", "powernv", "powernv8", "powernv9", "powernv10"),
    "x86_64": ("q35", "pc", "microvm", "isapc"),
    "aarch64": ("virt", "sbsa-ref"),
    "s390x": ("s390-ccw-virtio",),
}
_VERSIONED = {
    "ppc64": re.compile(r"^pseries-\d+\.\d+$"),
    "x86_64": re.compile(r"^pc-(q35|i440fx)-\d+\.\d+$"),
    "aarch64": re.compile(r"^virt-\d+\.\d+$"),
    "s390x": re.compile(r"^s390-ccw-virtio-\d+\.\d+$"),
}

CPU_MODELS: dict[str, tuple[str, ...]] = {
    "ppc64": ("power7", "power7+", "power8", "power8e", "power8nvl", "power9", "power10",
              "power8_v2.0", "power9_v2.0", "power9_v2.2", "power10_v2.0", "host", "max"),
    "x86_64": ("host", "max", "qemu64", "kvm64", "Nehalem", "Westmere", "SandyBridge", "IvyBridge",
               "Haswell", "Broadwell", "Skylake-Client", "Skylake-Server", "Cascadelake-Server",
               "Icelake-Server", "SapphireRapids", "EPYC", "EPYC-Rome", "EPYC-Milan", "EPYC-Genoa"),
    "aarch64": ("host", "max", "cortex-a53", "cortex-a57", "cortex-a72", "cortex-a76",
                "neoverse-n1", "neoverse-n2", "neoverse-v1", "a64fx"),
    "s390x": ("host", "max", "qemu", "z900", "z990", "z9EC", "z10EC", "z196", "zEC12", "z13", "z14",
              "z15", "gen15a", "gen15b", "gen16a", "gen16b", "gen17a"),
}

QEMU_BINARY = {"ppc64": "qemu-system-ppc64", "x86_64": "qemu-system-x86_64",
               "aarch64": "qemu-system-aarch64", "s390x": "qemu-system-s390x"}
DEBIAN_PACKAGE = {"ppc64": "qemu-system-ppc", "x86_64": "qemu-system-x86",
                  "aarch64": "qemu-system-arm", "s390x": "qemu-system-misc"}


def machine_type_known(arch: str, mtype: str) -> bool:
    if mtype in MACHINE_TYPES.get(arch, ()):
        return True
    rx = _VERSIONED.get(arch)
    return bool(rx and rx.fullmatch(mtype))


def cpu_model_base(cpu: str) -> str:
    """``"power9,compat=power8"`` style strings are not allowed: properties come from plugins."""
    return cpu


def parse_size(text: str) -> int | None:
    """``"512M"`` → bytes; None when malformed.  A bare number means MiB, as QEMU's ``-m``."""
    m = SIZE_RE.match(text)
    if not m:
        return None
    n = int(m.group(1))
    unit = (m.group(2) or "M").upper()
    return n * {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}[unit]
