"""The host (KVM) half: MSR/SMCCC negotiation, async-vs-sync decisions, page-ready gating."""

from __future__ import annotations

import errno

import pytest

from vmctl.model import ModelError
from vmctl_async_pf.model.kvm import HostApf, HostApfState
from vmctl_async_pf.model.protocol import (
    ARM64_RFCV2, ARM64_UPSTREAM, ASYNC_PF_DELIVERY_AS_INT, ASYNC_PF_ENABLED, ASYNC_PF_SEND_ALWAYS,
    HYPERVISOR_CALLBACK_VECTOR, KVM_FEATURE_ASYNC_PF, MSR_KVM_ASYNC_PF_ACK, MSR_KVM_ASYNC_PF_EN,
    MSR_KVM_ASYNC_PF_INT, PAGE_NOT_PRESENT, PAGE_READY, SMCCC_KVM_RFC_APF, WAKE_ALL_TOKEN,
    X86_64_MERGED, FaultContext, SyncReason,
)

GPA = 0x10_0000
EN = GPA | ASYNC_PF_ENABLED | ASYNC_PF_DELIVERY_AS_INT
USER, KERNEL, ATOMIC = FaultContext.USER, FaultContext.KERNEL, FaultContext.ATOMIC


def new_x86(**kw: object) -> HostApf:
    return HostApf(X86_64_MERGED, kw.pop("vcpu_id", 0), memory_bytes=1 << 30, **kw)  # type: ignore[arg-type]


# ---------------------------------------------------------------- x86 enable sequence

def test_vector_then_enable_queues_one_wake_all_on_the_programmed_vector() -> None:
    host = new_x86()
    host.write_msr(MSR_KVM_ASYNC_PF_INT, HYPERVISOR_CALLBACK_VECTOR)
    host.write_msr(MSR_KVM_ASYNC_PF_EN, EN)
    assert host.state is HostApfState.ENABLED
    assert host.outstanding == 1                     # the wake-all counts against the cap
    assert host.pop_ready() == WAKE_ALL_TOKEN
    assert host.int_vector == HYPERVISOR_CALLBACK_VECTOR
    assert host.area.token == WAKE_ALL_TOKEN and host.outstanding == 0
    assert host.read_msr(MSR_KVM_ASYNC_PF_EN) == EN


def test_enable_before_vector_injects_page_ready_on_vector_0() -> None:
    host = new_x86()
    host.write_msr(MSR_KVM_ASYNC_PF_EN, EN)
    assert host.pop_ready() == WAKE_ALL_TOKEN
    assert host.int_vector == 0                      # msr.rst: not rejected by KVM


def test_enable_without_bit_3_keeps_the_value_but_sends_nothing() -> None:
    host = new_x86()
    host.write_msr(MSR_KVM_ASYNC_PF_EN, GPA | ASYNC_PF_ENABLED | ASYNC_PF_SEND_ALWAYS)
    assert host.state is HostApfState.NO_EVENTS
    assert host.read_msr(MSR_KVM_ASYNC_PF_EN) & ASYNC_PF_ENABLED
    assert host.fault(USER) is SyncReason.NO_INT_DELIVERY
    assert host.pop_ready() is None and host.not_present_sent == 0


@pytest.mark.parametrize("value, why", [
    (EN | 0x10, "reserved bits 5:4"),
    (EN | 0x20, "reserved bits 5:4"),
    ((1 << 30) | ASYNC_PF_ENABLED | ASYNC_PF_DELIVERY_AS_INT, "outside guest memory"),
])
def test_bad_enable_values_are_a_gp(value: int, why: str) -> None:
    host = new_x86()
    with pytest.raises(ModelError) as exc:
        host.write_msr(MSR_KVM_ASYNC_PF_EN, value)
    assert exc.value.errno == errno.EINVAL and why in exc.value.strerror and "#GP" in str(exc.value)
    assert host.state is HostApfState.DISABLED


def test_vector_msr_takes_8_bits_only() -> None:
    with pytest.raises(ModelError) as exc:
        new_x86().write_msr(MSR_KVM_ASYNC_PF_INT, 0x1EC)
    assert exc.value.errno == errno.EINVAL


def test_without_in_kernel_lapic_only_zero_may_be_written() -> None:
    host = new_x86(lapic_in_kernel=False)
    host.write_msr(MSR_KVM_ASYNC_PF_EN, 0)
    for msr, value in ((MSR_KVM_ASYNC_PF_EN, EN), (MSR_KVM_ASYNC_PF_INT, 0xEC)):
        with pytest.raises(ModelError, match="kernel-irqchip"):
            host.write_msr(msr, value)


def test_cpuid_is_only_enforced_with_enforce_pv_cpuid() -> None:
    no_int = frozenset({KVM_FEATURE_ASYNC_PF})
    lax = new_x86(cpuid=no_int)
    lax.write_msr(MSR_KVM_ASYNC_PF_EN, EN)
    assert lax.enabled
    strict = new_x86(cpuid=no_int, enforce_pv_cpuid=True)
    for msr, value in ((MSR_KVM_ASYNC_PF_EN, EN), (MSR_KVM_ASYNC_PF_INT, 0xEC),
                       (MSR_KVM_ASYNC_PF_ACK, 1)):
        with pytest.raises(ModelError, match="KVM_FEATURE_ASYNC_PF_INT"):
            strict.write_msr(msr, value)


def test_unknown_msr_and_arm64_msr_access_are_refused() -> None:
    with pytest.raises(ModelError) as exc:
        new_x86().write_msr(0x4B564D03, 1)
    assert exc.value.errno == errno.EINVAL
    with pytest.raises(ModelError) as exc:
        HostApf(ARM64_RFCV2, 0, memory_bytes=1 << 30).write_msr(MSR_KVM_ASYNC_PF_EN, EN)
    assert exc.value.errno == errno.EOPNOTSUPP


# ---------------------------------------------------------------- x86 faults

def test_user_fault_goes_async_with_flags_1_and_a_unique_nonzero_token(x86_host: HostApf) -> None:
    x86_host.pop_ready()
    x86_host.area.token = 0
    tokens = []
    for _ in range(3):
        token = x86_host.fault(USER)
        assert isinstance(token, int) and token != 0
        assert x86_host.area.reason == PAGE_NOT_PRESENT
        x86_host.area.reason = 0                     # the guest's #PF handler reads and zeroes
        tokens.append(token)
    assert len(set(tokens)) == 3
    assert x86_host.not_present_sent == 3 and x86_host.outstanding == 3


def test_token_carries_the_vcpu_id_in_the_low_12_bits() -> None:
    host = new_x86(vcpu_id=5)
    host.write_msr(MSR_KVM_ASYNC_PF_INT, 0xEC)
    host.write_msr(MSR_KVM_ASYNC_PF_EN, EN)
    token = host.fault(USER)
    assert token & 0xFFF == 5 and token >> 12 == 1


def test_kernel_mode_faults_are_synchronous_for_a_linux_5_8_guest(x86_host: HostApf) -> None:
    assert x86_host.fault(KERNEL) is SyncReason.KERNEL_MODE
    assert x86_host.fault(ATOMIC) is SyncReason.KERNEL_MODE
    assert x86_host.sync[SyncReason.KERNEL_MODE] == 2 and x86_host.not_present_sent == 0


def test_send_always_allows_kernel_faults_with_interrupts_on_only() -> None:
    host = new_x86()
    host.write_msr(MSR_KVM_ASYNC_PF_INT, 0xEC)
    host.write_msr(MSR_KVM_ASYNC_PF_EN, EN | ASYNC_PF_SEND_ALWAYS)
    assert isinstance(host.fault(KERNEL), int)
    assert host.fault(ATOMIC) is SyncReason.IRQS_DISABLED


def test_65th_outstanding_fault_is_synchronous_and_completed_ones_still_count(x86_host: HostApf) -> None:
    x86_host.pop_ready()                             # wake-all out of the queue
    tokens = [x86_host.fault(USER) for _ in range(64)]
    assert all(isinstance(t, int) for t in tokens)
    assert x86_host.fault(USER) is SyncReason.QUEUE_FULL
    assert x86_host.page_arrived(tokens[0]) is True
    assert x86_host.fault(USER) is SyncReason.QUEUE_FULL   # completed, not yet delivered
    x86_host.area.token = 0
    assert x86_host.pop_ready() == tokens[0]
    assert isinstance(x86_host.fault(USER), int)


def test_page_ready_waits_for_the_guest_to_free_the_token_slot(x86_host: HostApf) -> None:
    assert x86_host.pop_ready() == WAKE_ALL_TOKEN
    a, b = x86_host.fault(USER), x86_host.fault(USER)
    x86_host.page_arrived(a)
    x86_host.page_arrived(b)
    assert x86_host.pop_ready() is None              # wake-all still in the slot, never ACKed
    assert x86_host.outstanding == 2
    x86_host.area.token = 0
    x86_host.ack()
    assert x86_host.pop_ready() == a
    assert x86_host.pop_ready() is None
    x86_host.area.token = 0
    assert x86_host.pop_ready() == b
    assert x86_host.acks == 1


def test_nothing_is_delivered_while_the_vcpu_is_blocked(x86_host: HostApf) -> None:
    assert x86_host.pop_ready(blocked=True) is None
    assert x86_host.pop_ready() == WAKE_ALL_TOKEN


def test_disable_drops_faults_in_flight(x86_host: HostApf) -> None:
    token = x86_host.fault(USER)
    x86_host.write_msr(MSR_KVM_ASYNC_PF_EN, 0)
    assert x86_host.state is HostApfState.DISABLED and x86_host.outstanding == 0
    assert x86_host.page_arrived(token) is False     # finished, but never delivered
    assert x86_host.fault(USER) is SyncReason.DISABLED


def test_unknown_token_completion_is_enoent(x86_host: HostApf) -> None:
    with pytest.raises(ModelError) as exc:
        x86_host.page_arrived(0x1234)
    assert exc.value.errno == errno.ENOENT


# ---------------------------------------------------------------- arm64 RFC / upstream

def test_upstream_arm64_has_no_apf_function_and_refuses_to_enable() -> None:
    host = HostApf(ARM64_UPSTREAM, 0, memory_bytes=1 << 30)
    assert SMCCC_KVM_RFC_APF not in host.smccc_funcs and "PTP" in host.smccc_funcs
    with pytest.raises(ModelError) as exc:
        host.smccc_enable(GPA)
    assert exc.value.errno == errno.EOPNOTSUPP and "unsupported" in exc.value.strerror
    assert host.fault(USER) is SyncReason.DISABLED


def test_rfc_enable_checks_alignment_and_double_enable() -> None:
    host = HostApf(ARM64_RFCV2, 0, memory_bytes=1 << 30)
    with pytest.raises(ModelError) as exc:
        host.smccc_enable(GPA + 8)
    assert exc.value.errno == errno.EINVAL
    host.smccc_enable(GPA)
    assert host.area.enabled and host.outstanding == 0      # no wake-all on arm64 enable
    with pytest.raises(ModelError) as exc:
        host.smccc_enable(GPA)
    assert exc.value.errno == errno.EBUSY


def test_rfc_delivers_kernel_faults_but_not_inside_the_guessed_window(arm64_host: HostApf) -> None:
    assert arm64_host.fault(FaultContext.EXCEPTION_VECTORS) is SyncReason.NO_APF_WINDOW
    token = arm64_host.fault(ATOMIC)
    assert isinstance(token, int) and arm64_host.area.reason == PAGE_NOT_PRESENT
    # the guest has not consumed the not-present yet: the block is busy
    assert arm64_host.fault(USER) is SyncReason.SIGNAL_PENDING
    arm64_host.area.reason = 0
    assert isinstance(arm64_host.fault(FaultContext.EXCEPTION_OTHER), int)
    assert arm64_host.unsafe_deliveries == 1


def test_rfc_page_ready_goes_through_the_reason_field(arm64_host: HostApf) -> None:
    token = arm64_host.fault(USER)
    arm64_host.page_arrived(token)
    assert arm64_host.pop_ready() is None            # reason still 1 (not-present unread)
    arm64_host.area.reason = 0
    assert arm64_host.pop_ready() == token
    assert arm64_host.area.reason == PAGE_READY


def test_rfc_disable_flushes(arm64_host: HostApf) -> None:
    token = arm64_host.fault(USER)
    arm64_host.smccc_disable()
    assert not arm64_host.area.enabled and arm64_host.page_arrived(token) is False
