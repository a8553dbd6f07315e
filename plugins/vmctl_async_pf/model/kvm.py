"""The host (KVM) side of async page faults for one vCPU.

:class:`HostApf` is the state machine behind ``vcpu->arch.apf`` and ``vcpu->async_pf``:

``DISABLED`` --EN(bit0|bit3, valid GPA)--> ``ENABLED`` --EN(0)--> ``DISABLED``; on x86 an EN
write with bit 0 but without bit 3 lands in ``NO_EVENTS``: KVM >= 5.8 keeps the value but
delivers no APF event at all (msr.rst).  arm64 RFC: ``smccc_enable`` / ``smccc_disable``.

While ``ENABLED`` each fault on a non-resident page either becomes *async* (a token is
allocated, the not-present signal is written to the :class:`ControlBlock`, the swap-in runs
"in a worker") or falls back to a synchronous stall with a :class:`SyncReason`.  Completed
pages queue on ``done`` and :meth:`HostApf.pop_ready` hands them out one at a time, only when
the guest has freed the slot: x86 ``token == 0`` (the guest zeroes it, then writes ACK), arm64
``reason == 0``.  A queued entry counts against the 64-entry cap until it is delivered, as
``vcpu->async_pf.queued`` does [virt/kvm/async_pf.c].

Guest-visible failures of an MSR write are a #GP in the guest; the model raises
``ModelError(errno.EINVAL, "... #GP")`` for them.  SMCCC calls the host does not implement
return NOT_SUPPORTED, raised as ``errno.EOPNOTSUPP``.
"""

from __future__ import annotations

import enum
import errno
from collections import deque

from vmctl.api import ModelError

from .protocol import (
    ASYNC_PF_DELIVERY_AS_INT, ASYNC_PF_DELIVERY_AS_PF_VMEXIT, ASYNC_PF_ENABLED,
    ASYNC_PF_RESERVED_BITS, ASYNC_PF_SEND_ALWAYS, KVM_FEATURE_ASYNC_PF,
    KVM_FEATURE_ASYNC_PF_INT, KVM_FEATURE_ASYNC_PF_VMEXIT, MSR_KVM_ASYNC_PF_ACK,
    MSR_KVM_ASYNC_PF_EN, MSR_KVM_ASYNC_PF_INT, PAGE_NOT_PRESENT, PAGE_READY,
    SMCCC_KVM_RFC_APF, SMCCC_KVM_UPSTREAM_FUNCS, WAKE_ALL_TOKEN, Arch, ArchRules,
    ControlBlock, FaultContext, SyncReason, TokenAllocator,
)

__all__ = ["HostApfState", "HostApf", "DEFAULT_CPUID"]

#: CPUID features a ``-cpu host,kvm-asyncpf=on,kvm-asyncpf-int=on`` guest sees.
DEFAULT_CPUID: frozenset[int] = frozenset({KVM_FEATURE_ASYNC_PF, KVM_FEATURE_ASYNC_PF_INT})

_USER = FaultContext.USER
_KERNEL = FaultContext.KERNEL
_VECTORS = FaultContext.EXCEPTION_VECTORS
_OTHER = FaultContext.EXCEPTION_OTHER


class HostApfState(enum.Enum):
    """What the guest has negotiated with the host for this vCPU."""

    DISABLED = "disabled"
    NO_EVENTS = "enabled-without-int"   # x86: bit 0 set, bit 3 clear: nothing is ever delivered
    ENABLED = "enabled"


class HostApf:
    """KVM's per-vCPU async PF state, for either architecture's rules.

    ``memory_bytes`` bounds the control-block GPA; ``lapic_in_kernel`` is QEMU's
    ``kernel-irqchip`` (x86 APF needs it); ``cpuid`` holds the ``KVM_FEATURE_*`` bits QEMU
    exposes (``kvm-asyncpf`` → 4, ``kvm-asyncpf-int`` → 14), checked only when
    ``enforce_pv_cpuid`` (QEMU ``kvm-pv-enforce-cpuid``) is on, as KVM does.
    ``smccc_funcs`` is the arm64 vendor-service function set the host advertises.
    """

    __slots__ = (
        "rules", "vcpu_id", "state", "area", "memory_bytes", "lapic_in_kernel", "cpuid",
        "enforce_pv_cpuid", "smccc_funcs", "msr_en", "int_vector", "send_user_only",
        "tokens", "inflight", "done", "flushed", "x86",
        "not_present_sent", "completed", "ready_sent", "wake_all_sent", "acks", "dropped",
        "unsafe_deliveries", "sync",
    )

    def __init__(self, rules: ArchRules, vcpu_id: int, *, memory_bytes: int,
                 lapic_in_kernel: bool = True, cpuid: frozenset[int] = DEFAULT_CPUID,
                 enforce_pv_cpuid: bool = False,
                 smccc_funcs: frozenset[str] | None = None) -> None:
        if not 0 <= vcpu_id < 4096:
            raise ModelError(errno.EINVAL, f"vCPU id {vcpu_id} outside 0..4095 (KVM_MAX_VCPU_IDS)")
        self.rules = rules
        self.vcpu_id = vcpu_id
        self.state = HostApfState.DISABLED
        self.area: ControlBlock | None = None
        self.memory_bytes = memory_bytes
        self.lapic_in_kernel = lapic_in_kernel
        self.cpuid = cpuid
        self.enforce_pv_cpuid = enforce_pv_cpuid
        if smccc_funcs is None:
            smccc_funcs = (SMCCC_KVM_UPSTREAM_FUNCS | {SMCCC_KVM_RFC_APF} if rules.supported
                           else SMCCC_KVM_UPSTREAM_FUNCS)
        self.smccc_funcs = smccc_funcs
        self.msr_en = 0
        self.int_vector = 0
        self.send_user_only = True
        self.tokens = TokenAllocator(vcpu_id)
        self.inflight: set[int] = set()
        self.done: deque[int] = deque()
        self.flushed: set[int] = set()
        self.x86 = rules.arch is Arch.X86_64
        self.not_present_sent = 0
        self.completed = 0
        self.ready_sent = 0
        self.wake_all_sent = 0
        self.acks = 0
        self.dropped = 0
        self.unsafe_deliveries = 0
        self.sync: dict[SyncReason, int] = {r: 0 for r in SyncReason}

    # ------------------------------------------------------------------ observables
    @property
    def outstanding(self) -> int:
        """Queued APFs (in flight or completed but not yet delivered), ``async_pf.queued``."""
        return len(self.inflight) + len(self.done)

    @property
    def enabled(self) -> bool:
        return self.state is HostApfState.ENABLED

    # ------------------------------------------------------------------ x86 MSRs
    def _has(self, feature: int) -> bool:
        return not self.enforce_pv_cpuid or feature in self.cpuid

    def _gp(self, msr: int, value: int, why: str) -> ModelError:
        return ModelError(errno.EINVAL, f"wrmsr {msr:#x} <- {value:#x}: {why} (#GP in the guest)")

    def write_msr(self, msr: int, value: int) -> None:
        """A guest WRMSR to one of the async PF MSRs (x86 only)."""
        if not self.x86:
            raise ModelError(errno.EOPNOTSUPP, "async PF MSRs exist on x86 only")
        if msr == MSR_KVM_ASYNC_PF_EN:
            self._write_en(value)
        elif msr == MSR_KVM_ASYNC_PF_INT:
            if not self._has(KVM_FEATURE_ASYNC_PF_INT):
                raise self._gp(msr, value, "KVM_FEATURE_ASYNC_PF_INT not in CPUID")
            if value >> 8:
                raise self._gp(msr, value, "bits 63:8 are reserved")
            if not self.lapic_in_kernel:
                raise self._gp(msr, value, "no in-kernel LAPIC (kernel-irqchip=off)")
            self.int_vector = value
        elif msr == MSR_KVM_ASYNC_PF_ACK:
            if not self._has(KVM_FEATURE_ASYNC_PF_INT):
                raise self._gp(msr, value, "KVM_FEATURE_ASYNC_PF_INT not in CPUID")
            if value & 1:
                self.acks += 1
        else:
            raise self._gp(msr, value, "not an async PF MSR")

    def ack(self) -> None:
        """The guest's ``wrmsr(MSR_KVM_ASYNC_PF_ACK, 1)`` after consuming a page-ready."""
        if self.enforce_pv_cpuid and KVM_FEATURE_ASYNC_PF_INT not in self.cpuid:
            raise self._gp(MSR_KVM_ASYNC_PF_ACK, 1, "KVM_FEATURE_ASYNC_PF_INT not in CPUID")
        self.acks += 1

    def read_msr(self, msr: int) -> int:
        """A guest RDMSR: EN and INT read back what was written; ACK reads as 0."""
        if msr == MSR_KVM_ASYNC_PF_EN:
            return self.msr_en
        if msr == MSR_KVM_ASYNC_PF_INT:
            return self.int_vector
        if msr == MSR_KVM_ASYNC_PF_ACK:
            return 0
        raise ModelError(errno.EINVAL, f"rdmsr {msr:#x}: not an async PF MSR (#GP in the guest)")

    def _write_en(self, data: int) -> None:
        msr = MSR_KVM_ASYNC_PF_EN
        if not self._has(KVM_FEATURE_ASYNC_PF):
            raise self._gp(msr, data, "KVM_FEATURE_ASYNC_PF not in CPUID")
        if data & ASYNC_PF_RESERVED_BITS:
            raise self._gp(msr, data, "reserved bits 5:4 set")
        if data & ASYNC_PF_DELIVERY_AS_PF_VMEXIT and not self._has(KVM_FEATURE_ASYNC_PF_VMEXIT):
            raise self._gp(msr, data, "bit 2 needs KVM_FEATURE_ASYNC_PF_VMEXIT")
        if data & ASYNC_PF_DELIVERY_AS_INT and not self._has(KVM_FEATURE_ASYNC_PF_INT):
            raise self._gp(msr, data, "bit 3 needs KVM_FEATURE_ASYNC_PF_INT")
        if not self.lapic_in_kernel:
            if data:
                raise self._gp(msr, data, "async PF needs the in-kernel LAPIC (kernel-irqchip)")
            return
        want = ASYNC_PF_ENABLED | ASYNC_PF_DELIVERY_AS_INT
        if data & want != want:
            self.msr_en = data
            self._flush()
            self.state = (HostApfState.NO_EVENTS if data & ASYNC_PF_ENABLED
                          else HostApfState.DISABLED)
            return
        gpa = data & ~0x3F
        if gpa + 64 > self.memory_bytes:
            raise self._gp(msr, data, f"control block GPA {gpa:#x} outside guest memory")
        self.msr_en = data
        self.area = ControlBlock(gpa)
        self.send_user_only = not data & ASYNC_PF_SEND_ALWAYS
        self.state = HostApfState.ENABLED
        self._wakeup_all()

    # ------------------------------------------------------------------ arm64 RFC SMCCC
    def smccc_enable(self, control_block_gpa: int) -> None:
        """The RFC's SMCCC call handing the host the per-CPU control block (arm64 only)."""
        if self.x86:
            raise ModelError(errno.EOPNOTSUPP, "SMCCC exists on arm64 only")
        if not self.rules.supported or SMCCC_KVM_RFC_APF not in self.smccc_funcs:
            raise ModelError(errno.EOPNOTSUPP, "async PF: unsupported (no APF function in the "
                             "KVM vendor hypervisor service; upstream arm64 has none)")
        if control_block_gpa % 64:
            raise ModelError(errno.EINVAL, f"control block {control_block_gpa:#x} is not "
                             "64-byte aligned")
        if control_block_gpa + 64 > self.memory_bytes:
            raise ModelError(errno.EINVAL, f"control block {control_block_gpa:#x} outside "
                             "guest memory")
        if self.state is HostApfState.ENABLED:
            raise ModelError(errno.EBUSY, f"async PF already enabled on vCPU {self.vcpu_id}")
        self.area = ControlBlock(control_block_gpa)
        self.area.enabled = True
        self.state = HostApfState.ENABLED
        self._wakeup_all()

    def smccc_disable(self) -> None:
        """Disable APF on this vCPU; faults in flight will not be delivered."""
        if self.x86:
            raise ModelError(errno.EOPNOTSUPP, "SMCCC exists on arm64 only")
        if self.area is not None:
            self.area.enabled = False
        self._flush()
        self.state = HostApfState.DISABLED

    # ------------------------------------------------------------------ protocol
    def _flush(self) -> None:
        self.flushed |= self.inflight
        self.dropped += len(self.inflight) + len(self.done)
        self.inflight.clear()
        self.done.clear()

    def _wakeup_all(self) -> None:
        # kvm_async_pf_wakeup_all(): only when nothing is waiting on the done list.
        if self.rules.wake_all_on_enable and not self.done:
            self.done.append(WAKE_ALL_TOKEN)

    def fault(self, ctx: FaultContext) -> int | SyncReason:
        """A guest access to a non-resident page: the new token, or why it must block.

        On success the not-present signal is already in the control block (``reason = 1``)
        and the caller owes the guest a not-present exception carrying the token.
        """
        state = self.state
        if state is not HostApfState.ENABLED:
            reason = (SyncReason.NO_INT_DELIVERY if state is HostApfState.NO_EVENTS
                      else SyncReason.DISABLED)
        elif self.x86:
            if ctx is not _USER and self.send_user_only:
                reason = SyncReason.KERNEL_MODE
            elif ctx is not _USER and ctx is not _KERNEL:
                reason = SyncReason.IRQS_DISABLED
            elif len(self.inflight) + len(self.done) >= self.rules.max_outstanding:
                reason = SyncReason.QUEUE_FULL
            else:
                return self._start()
        elif ctx is _VECTORS:
            reason = SyncReason.NO_APF_WINDOW
        elif self.area.reason:  # type: ignore[union-attr]
            reason = SyncReason.SIGNAL_PENDING
        elif len(self.inflight) + len(self.done) >= self.rules.max_outstanding:
            reason = SyncReason.QUEUE_FULL
        else:
            if ctx is _OTHER:
                self.unsafe_deliveries += 1
            return self._start()
        self.sync[reason] += 1
        return reason

    def _start(self) -> int:
        token = self.tokens.next()
        self.inflight.add(token)
        self.area.reason = PAGE_NOT_PRESENT  # type: ignore[union-attr]
        self.not_present_sent += 1
        return token

    def page_arrived(self, token: int) -> bool:
        """The swap-in worker for ``token`` finished; False if APF was disabled meanwhile."""
        try:
            self.inflight.remove(token)
        except KeyError:
            if token in self.flushed:
                self.flushed.discard(token)
                return False
            raise ModelError(errno.ENOENT, f"vCPU {self.vcpu_id}: no async page fault in "
                             f"flight with token {token:#x}") from None
        self.done.append(token)
        self.completed += 1
        return True

    def pop_ready(self, blocked: bool = False) -> int | None:
        """The next page-ready token to inject now, or None if none may be delivered yet.

        ``blocked`` says the vCPU thread is stuck in a synchronous fault and cannot enter the
        guest.  The token is written to the control block (x86 ``token``; arm64 ``reason =
        2`` with the token as fault address); x86 injects it on :attr:`int_vector`.
        """
        done = self.done
        while done:
            if self.state is not HostApfState.ENABLED:
                done.popleft()
                self.dropped += 1
                continue
            area = self.area
            if blocked:
                return None
            if self.x86:
                if area.token or not self.lapic_in_kernel:  # type: ignore[union-attr]
                    return None
                token = done.popleft()
                area.token = token  # type: ignore[union-attr]
            else:
                if area.reason:  # type: ignore[union-attr]
                    return None
                token = done.popleft()
                area.reason = PAGE_READY  # type: ignore[union-attr]
            if token == WAKE_ALL_TOKEN:
                self.wake_all_sent += 1
            else:
                self.ready_sent += 1
            return token
        return None
