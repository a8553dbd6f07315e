"""The async page fault wire protocol: constants, per-architecture rules, the shared area.

Two designs share one idea (semantics.md §3.1): when a vCPU touches guest memory whose host
page is not resident, the host tells the guest "page **not present**, token T", fetches the
page in the background, then tells the guest "page **ready**, token T".  Reason codes are
``PAGE_NOT_PRESENT = 1`` and ``PAGE_READY = 2``; token ``0xFFFFFFFF`` means "wake all".

* **x86** (merged; interrupt-based page-ready since Linux 5.8) — MSRs ``MSR_KVM_ASYNC_PF_EN``,
  ``..._INT`` and ``..._ACK``; not-present is a #PF whose CR2 holds the token; page-ready is
  an interrupt on the vector the guest programmed; at most 64 outstanding per vCPU
  (``ASYNC_PF_PER_VCPU``) [linux:Documentation/virt/kvm/x86/msr.rst, arch/x86/kvm/x86.c].
* **arm64 RFCv2** (never merged, seed-002) — discovered through the SMCCC vendor hypervisor
  service; both signals arrive as a data abort whose fault address carries the token, with the
  reason in a 64-byte per-CPU control block.  Upstream arm64 KVM has no APF function at all
  [linux:include/linux/arm-smccc.h].

Nothing here does I/O or keeps time; :mod:`.kvm` and :mod:`.guest` build the two sides of
the protocol on these definitions.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = [
    "PAGE_NOT_PRESENT", "PAGE_READY", "WAKE_ALL_TOKEN", "ASYNC_PF_PER_VCPU",
    "MSR_KVM_ASYNC_PF_EN", "MSR_KVM_ASYNC_PF_INT", "MSR_KVM_ASYNC_PF_ACK",
    "ASYNC_PF_ENABLED", "ASYNC_PF_SEND_ALWAYS", "ASYNC_PF_DELIVERY_AS_PF_VMEXIT",
    "ASYNC_PF_DELIVERY_AS_INT", "ASYNC_PF_RESERVED_BITS", "HYPERVISOR_CALLBACK_VECTOR",
    "KVM_FEATURE_ASYNC_PF", "KVM_FEATURE_ASYNC_PF_VMEXIT", "KVM_FEATURE_ASYNC_PF_INT",
    "KVM_CAP_ASYNC_PF_INT", "SMCCC_KVM_UPSTREAM_FUNCS", "SMCCC_KVM_RFC_APF",
    "Arch", "FaultContext", "ReadyDelivery", "SyncReason", "ArchRules",
    "X86_64_MERGED", "ARM64_RFCV2", "ARM64_UPSTREAM", "rules_for",
    "ControlBlock", "TokenAllocator",
]

# --- shared by both designs (seed-002; arch/x86/include/uapi/asm/kvm_para.h) -------------
PAGE_NOT_PRESENT = 1
PAGE_READY = 2
WAKE_ALL_TOKEN = 0xFFFF_FFFF
ASYNC_PF_PER_VCPU = 64

# --- x86 (Documentation/virt/kvm/x86/msr.rst, cpuid.rst) --------------------------------
MSR_KVM_ASYNC_PF_EN = 0x4B56_4D02
MSR_KVM_ASYNC_PF_INT = 0x4B56_4D06
MSR_KVM_ASYNC_PF_ACK = 0x4B56_4D07
ASYNC_PF_ENABLED = 1 << 0
ASYNC_PF_SEND_ALWAYS = 1 << 1          # deliver even at CPL0 (deprecated; Linux >= 5.8 never sets it)
ASYNC_PF_DELIVERY_AS_PF_VMEXIT = 1 << 2  # nested: deliver as #PF VM-exit to L1
ASYNC_PF_DELIVERY_AS_INT = 1 << 3      # page-ready as an interrupt; without it KVM sends nothing
ASYNC_PF_RESERVED_BITS = 0x30          # bits 5:4
HYPERVISOR_CALLBACK_VECTOR = 0xEC      # the vector Linux guests program into MSR_KVM_ASYNC_PF_INT
KVM_FEATURE_ASYNC_PF = 4               # CPUID 0x40000001 EAX bit (QEMU: kvm-asyncpf)
KVM_FEATURE_ASYNC_PF_VMEXIT = 10
KVM_FEATURE_ASYNC_PF_INT = 14          # (QEMU: kvm-asyncpf-int)
KVM_CAP_ASYNC_PF_INT = 183

# --- arm64 SMCCC vendor hypervisor service (include/linux/arm-smccc.h) -------------------
#: Functions upstream KVM advertises in the vendor hypervisor service: there is no APF.
SMCCC_KVM_UPSTREAM_FUNCS: frozenset[str] = frozenset({"FEATURES", "PTP", "FEATURES_2"})
#: The function name the RFC added (its number is not in the seed; the model uses names).
SMCCC_KVM_RFC_APF = "APF"


class Arch(enum.Enum):
    """Guest architecture; the value is the TOML ``machine.arch`` spelling."""

    X86_64 = "x86_64"
    AARCH64 = "aarch64"


class FaultContext(enum.Enum):
    """Where the guest was executing when it touched a non-resident page.

    The two designs differ exactly here: merged x86 (Linux >= 5.8) only sends not-present at
    CPL3; the arm64 RFC sends it anywhere outside a guessed window near the vector base.
    """

    USER = "user"                            # user mode (x86 CPL3, arm64 EL0)
    KERNEL = "kernel"                        # kernel, preemptible, interrupts on (e.g. copy_from_user)
    ATOMIC = "atomic"                        # kernel, preemption or interrupts off, or RCU read side
    EXCEPTION_VECTORS = "exception-vectors"  # arm64: inside the RFC's vector base .. max offset + 4 KiB
    EXCEPTION_OTHER = "exception-other"      # non-reentrant exception code outside that window


class ReadyDelivery(enum.Enum):
    """How page-ready reaches the guest."""

    INTERRUPT = "interrupt"   # x86 >= 5.8: the vector in MSR_KVM_ASYNC_PF_INT
    ABORT = "data-abort"      # arm64 RFCv2: the same data-abort path as not-present


class SyncReason(enum.Enum):
    """Why a fault on a non-resident page blocked the vCPU instead of going async."""

    DISABLED = "disabled"                  # the guest has not enabled APF (or booted no-kvmapf)
    NO_INT_DELIVERY = "no-int-delivery"    # x86: EN without bit 3: KVM >= 5.8 delivers no APF at all
    KERNEL_MODE = "kernel-mode"            # x86: CPL0 and the guest did not ask for send-always
    IRQS_DISABLED = "irqs-disabled"        # x86: the guest cannot take the interrupt now
    QUEUE_FULL = "queue-full"              # ASYNC_PF_PER_VCPU outstanding already
    NO_APF_WINDOW = "no-apf-window"        # arm64 RFC: PC inside the guessed exception window
    SIGNAL_PENDING = "signal-pending"      # arm64 RFC: control block reason still non-zero


@dataclass(frozen=True)
class ArchRules:
    """The per-architecture half of the protocol; everything else is shared.

    ``max_outstanding`` is ``ASYNC_PF_PER_VCPU``; the RFC reused the generic
    ``virt/kvm/async_pf.c`` queue, so the model applies the same cap to it.
    """

    arch: Arch
    name: str
    merged: bool                 # upstream Linux has it
    supported: bool              # the host can offer APF at all
    ready_delivery: ReadyDelivery
    max_outstanding: int
    per_cpu_waiters: bool        # arm64 RFC: per-CPU list; x86: one table keyed by token
    delayed_wake: bool           # arm64 RFC: a waker that is the sleeper only marks "delayed"
    wake_all_on_enable: bool     # x86: enabling queues a wake-all (~0)
    guessed_window: bool         # arm64 RFC: no APF while the PC is near the vector base
    citation: str


X86_64_MERGED = ArchRules(
    Arch.X86_64, "x86-apf-int", merged=True, supported=True,
    ready_delivery=ReadyDelivery.INTERRUPT, max_outstanding=ASYNC_PF_PER_VCPU,
    per_cpu_waiters=False, delayed_wake=False, wake_all_on_enable=True, guessed_window=False,
    citation="Linux 5.8+, Documentation/virt/kvm/x86/msr.rst")
ARM64_RFCV2 = ArchRules(
    Arch.AARCH64, "arm64-apf-rfcv2", merged=False, supported=True,
    ready_delivery=ReadyDelivery.ABORT, max_outstanding=ASYNC_PF_PER_VCPU,
    per_cpu_waiters=True, delayed_wake=True, wake_all_on_enable=False, guessed_window=True,
    citation="[PATCH RFCv2 9/9] arm64: Support async page fault, 2020-05-08 (never merged)")
ARM64_UPSTREAM = ArchRules(
    Arch.AARCH64, "arm64-upstream", merged=True, supported=False,
    ready_delivery=ReadyDelivery.ABORT, max_outstanding=0,
    per_cpu_waiters=True, delayed_wake=False, wake_all_on_enable=False, guessed_window=False,
    citation="include/linux/arm-smccc.h: no APF function in the KVM vendor service")


def rules_for(arch: Arch, *, experimental: bool = False) -> ArchRules:
    """The rules vmctl models for ``arch``: arm64 gets the RFC only when ``experimental``."""
    if arch is Arch.X86_64:
        return X86_64_MERGED
    return ARM64_RFCV2 if experimental else ARM64_UPSTREAM


class ControlBlock:
    """The 64-byte per-vCPU area in guest memory that host and guest both write.

    x86: u32 ``flags`` at offset 0 (the host writes 1 before injecting not-present; the guest
    reads and zeroes it) and u32 ``token`` at offset 4 (the host writes the page-ready token;
    the guest zeroes it, then writes ``MSR_KVM_ASYNC_PF_ACK``).  arm64 RFC: ``enabled`` and
    ``reason``; the token travels in the fault address instead.  ``reason`` holds the x86
    ``flags`` word too, since both mean "what the pending signal is".
    """

    __slots__ = ("gpa", "reason", "token", "enabled")

    def __init__(self, gpa: int) -> None:
        self.gpa = gpa
        self.reason = 0
        self.token = 0
        self.enabled = False

    def __repr__(self) -> str:
        return (f"ControlBlock(gpa={self.gpa:#x}, reason={self.reason}, "
                f"token={self.token:#x}, enabled={self.enabled})")


class TokenAllocator:
    """Host token allocation, as KVM's ``alloc_apf_token``: ``(++id << 12) | vcpu_id``.

    The counter skips 0 so the first token of vCPU 0 is not 0 (0 means "slot free" in the x86
    shared area); the result is truncated to 32 bits like the kernel's ``u32``.
    """

    __slots__ = ("vcpu_id", "_id")

    def __init__(self, vcpu_id: int) -> None:
        self.vcpu_id = vcpu_id
        self._id = 0

    def next(self) -> int:
        nid = (self._id + 1) & 0xFFFF_FFFF
        if nid == 0:
            nid = 1
        self._id = nid
        return ((nid << 12) | self.vcpu_id) & 0xFFFF_FFFF
