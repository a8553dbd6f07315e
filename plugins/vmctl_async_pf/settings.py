"""The machine keys async PF depends on, read once, and the model configuration they give.

:func:`read` collects ``[machine]``, ``[boot]``, ``[sim]`` and ``[async-pf]`` with defaults
applied; :meth:`ApfSettings.model_config` turns them into the :class:`~.model.config.ApfConfig` the
simulator (and ``vmctl plan``'s estimate) runs.  What QEMU does with ``mode = "auto"`` on x86
is QEMU's default: ``kvm-asyncpf`` on for every model, ``kvm-asyncpf-int`` only passed through
by ``-cpu host`` / ``max`` when KVM supports it [qemu:target/i386/kvm/kvm-cpu.c].
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from vmctl.api import parse_size

from .model.config import ApfConfig, GuestProfile, HostProfile
from .model.protocol import Arch, ArchRules, rules_for
from .model.workload import MemoryPressure, Workload

if TYPE_CHECKING:  # pragma: no cover
    from vmctl.api import Machine

__all__ = ["ApfSettings", "read", "WORKLOADS", "PASSTHROUGH_CPUS"]

#: CPU models that pass KVM's ``kvm-asyncpf-int`` through when ``mode = "auto"``.
PASSTHROUGH_CPUS = ("host", "max")

#: ``[sim] workload`` → guest tasks and host memory pressure the async PF model runs.  A
#: task touches a random guest page every 2 µs of CPU; the swapped share sets how often that
#: page is out: a major fault every 2 ms (idle), 500 µs (default) or 200 µs (busy) of CPU.
WORKLOADS: dict[str, Workload] = {
    "idle": Workload(tasks_per_vcpu=1, pressure=MemoryPressure(swapped_share=0.001)),
    "default": Workload(tasks_per_vcpu=2, pressure=MemoryPressure(swapped_share=0.004)),
    "busy": Workload(tasks_per_vcpu=4, pressure=MemoryPressure(swapped_share=0.01)),
}

_NO_KVMAPF = re.compile(r"(^|\s)no-kvmapf(\s|$)")


@dataclass(frozen=True)
class ApfSettings:
    """What async PF needs to know about one machine."""

    arch: str
    mode: str               # auto | on | off
    experimental: bool
    written: bool           # the machine has an [async-pf] table
    accel: str
    cpu: str
    cpus: int
    memory_bytes: int
    append: str
    has_kernel: bool
    seed: int
    workload: str

    @property
    def x86(self) -> bool:
        return self.arch == "x86_64"

    @property
    def aarch64(self) -> bool:
        return self.arch == "aarch64"

    @property
    def append_disables(self) -> bool:
        """The guest command line already says ``no-kvmapf``."""
        return bool(_NO_KVMAPF.search(self.append))

    @property
    def rules(self) -> ArchRules:
        return rules_for(Arch(self.arch), experimental=self.experimental)

    def cpu_props(self) -> dict[str, str]:
        """The ``kvm-asyncpf`` / ``kvm-asyncpf-int`` values the guest will get (x86)."""
        if self.mode in ("on", "off"):
            return {"kvm-asyncpf": self.mode, "kvm-asyncpf-int": self.mode}
        passthrough = self.cpu in PASSTHROUGH_CPUS
        return {"kvm-asyncpf": "on", "kvm-asyncpf-int": "on" if passthrough else "off"}

    def model_config(self) -> ApfConfig:
        """The model of this machine under KVM (the simulator pretends KVM for ``auto``)."""
        if self.x86:
            props = self.cpu_props()
            kvm = self.accel != "tcg"
            host = HostProfile(kvm_asyncpf=kvm and props["kvm-asyncpf"] == "on",
                               kvm_asyncpf_int=kvm and props["kvm-asyncpf-int"] == "on")
            enabled = self.mode != "off"
        else:
            host = HostProfile(smccc_apf=self.experimental and self.mode != "off")
            enabled = self.mode != "off"
        guest = GuestProfile(async_pf=enabled and not self.append_disables)
        return ApfConfig(rules=self.rules, vcpus=self.cpus, memory_bytes=self.memory_bytes,
                         workload=WORKLOADS.get(self.workload, WORKLOADS["default"]),
                         guest=guest, host=host)


def read(machine: Machine) -> ApfSettings:
    """The async PF settings of ``machine``."""
    mach, boot, sim = machine.section("machine"), machine.section("boot"), machine.section("sim")
    apf = machine.section("async-pf")
    return ApfSettings(
        arch=str(mach.get("arch", "")), mode=str(apf.get("mode") or "auto"),
        experimental=bool(apf.get("experimental", False)), written=machine.has_section("async-pf"),
        accel=str(mach.get("accel") or "auto"), cpu=str(mach.get("cpu", "")),
        cpus=int(mach.get("cpus") or 1),
        memory_bytes=parse_size(str(mach.get("memory") or "1G")) or 1 << 30,
        append=str(boot.get("append") or ""), has_kernel=bool(boot.get("kernel")),
        seed=int(sim.get("seed") or 0), workload=str(sim.get("workload") or "default"))
