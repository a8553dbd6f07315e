"""What a model run is configured with: the protocol, the guest, the host, the workload.

Every field maps to something a user can set or see: ``GuestProfile.async_pf = False`` is the
guest's ``no-kvmapf``; ``HostProfile.kvm_asyncpf`` / ``kvm_asyncpf_int`` are QEMU's CPU
properties of the same names (which set CPUID bits 4 and 14); ``lapic_in_kernel`` is
``kernel-irqchip`` not being ``off``.  :class:`ProtocolCosts` are modelling assumptions
(guest CPU time per not-present exception and per page-ready delivery), not measurements.
"""

from __future__ import annotations

import errno
from dataclasses import dataclass, field, replace

from vmctl.api import ModelError

from .kvm import HostApf
from .protocol import (
    KVM_FEATURE_ASYNC_PF, KVM_FEATURE_ASYNC_PF_INT, SMCCC_KVM_RFC_APF, SMCCC_KVM_UPSTREAM_FUNCS,
    X86_64_MERGED, ArchRules,
)
from .workload import Workload

__all__ = ["GuestProfile", "HostProfile", "ProtocolCosts", "ApfConfig", "CONTROL_BLOCK_BASE"]

#: Guest-physical base of the per-vCPU 64-byte control blocks (vCPU i at base + 64 * i).
CONTROL_BLOCK_BASE = 0x10_0000


@dataclass(frozen=True)
class GuestProfile:
    """The guest kernel.

    ``async_pf`` False is ``no-kvmapf`` on the command line.  ``linux_5_8`` selects the
    current x86 guest (programs the vector, enables with bit 3, never asks for CPL0
    delivery) versus an older one (enables with "send always" and no bit 3, which KVM >= 5.8
    answers with no events at all).  ``vector_first`` False reproduces the msr.rst pitfall of
    enabling before programming the vector.  ``preempt_count`` is ``CONFIG_PREEMPT_COUNT``.
    """

    async_pf: bool = True
    linux_5_8: bool = True
    vector_first: bool = True
    preempt_count: bool = True


@dataclass(frozen=True)
class HostProfile:
    """KVM and the VMM: which APF features the guest is offered."""

    lapic_in_kernel: bool = True
    kvm_asyncpf: bool = True
    kvm_asyncpf_int: bool = True
    enforce_pv_cpuid: bool = False
    smccc_apf: bool = True          # arm64: the RFC's host patches are applied

    def cpuid(self) -> frozenset[int]:
        bits = set()
        if self.kvm_asyncpf:
            bits.add(KVM_FEATURE_ASYNC_PF)
        if self.kvm_asyncpf_int:
            bits.add(KVM_FEATURE_ASYNC_PF_INT)
        return frozenset(bits)

    def smccc_funcs(self, rules: ArchRules) -> frozenset[str]:
        if rules.supported and self.smccc_apf:
            return SMCCC_KVM_UPSTREAM_FUNCS | {SMCCC_KVM_RFC_APF}
        return SMCCC_KVM_UPSTREAM_FUNCS


@dataclass(frozen=True)
class ProtocolCosts:
    """Guest CPU time the protocol itself costs (assumed, per event)."""

    not_present_ns: int = 3_000     # exception entry, table insert, schedule() to another task
    ready_ns: int = 2_000           # interrupt/abort entry, wake, token clear and ACK exit

    def __post_init__(self) -> None:
        if self.not_present_ns < 0 or self.ready_ns < 0:
            raise ModelError(errno.EINVAL, f"negative protocol cost {self}")


@dataclass(frozen=True)
class ApfConfig:
    """One machine's async PF model: protocol rules, size, guest, host, workload, costs."""

    rules: ArchRules = X86_64_MERGED
    vcpus: int = 2
    memory_bytes: int = 1 << 30
    workload: Workload = field(default_factory=Workload)
    guest: GuestProfile = field(default_factory=GuestProfile)
    host: HostProfile = field(default_factory=HostProfile)
    costs: ProtocolCosts = field(default_factory=ProtocolCosts)

    def __post_init__(self) -> None:
        if not 1 <= self.vcpus <= 4096:
            raise ModelError(errno.EINVAL, f"vcpus {self.vcpus} outside 1..4096")
        if CONTROL_BLOCK_BASE + 64 * self.vcpus > self.memory_bytes:
            raise ModelError(errno.ENOMEM, f"{self.memory_bytes} bytes of guest memory cannot "
                             f"hold {self.vcpus} control blocks at {CONTROL_BLOCK_BASE:#x}")

    def without_async_pf(self) -> "ApfConfig":
        """The same machine booted with ``no-kvmapf``: the shadow run of a comparison."""
        return replace(self, guest=replace(self.guest, async_pf=False))

    def make_host(self, vcpu_id: int) -> HostApf:
        return HostApf(self.rules, vcpu_id, memory_bytes=self.memory_bytes,
                       lapic_in_kernel=self.host.lapic_in_kernel, cpuid=self.host.cpuid(),
                       enforce_pv_cpuid=self.host.enforce_pv_cpuid,
                       smccc_funcs=self.host.smccc_funcs(self.rules))
