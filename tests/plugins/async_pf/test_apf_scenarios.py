"""semantics.md §3.7 scenarios, end to end: host and guest halves together, then whole guests."""

from __future__ import annotations

import errno
from dataclasses import replace

import pytest

from vmctl.model import ModelError
from vmctl_async_pf.model.config import ApfConfig, GuestProfile, HostProfile
from vmctl_async_pf.model.guest import GuestApf
from vmctl_async_pf.model.kvm import HostApf, HostApfState
from vmctl_async_pf.model.machine import AsyncPfModel
from vmctl_async_pf.model.protocol import (
    ARM64_RFCV2, ARM64_UPSTREAM, PAGE_NOT_PRESENT, SMCCC_KVM_RFC_APF, WAKE_ALL_TOKEN, FaultContext,
)
from vmctl_async_pf.model.vcpu import TaskState, VcpuState
from vmctl_async_pf.model.workload import ContextMix, MemoryPressure, SwapInLatency, Workload

MS = 1_000_000
USER_ONLY = ContextMix(user=1.0, kernel=0.0)


def workload(tasks: int = 2, *, latency_ns: int = 100_000, gap_ns: int = 20_000,
             contexts: ContextMix = USER_ONLY) -> Workload:
    """Tasks that fault about every ``gap_ns`` of compute; each swap-in takes ``latency_ns``."""
    return Workload(tasks_per_vcpu=tasks, contexts=contexts, pressure=MemoryPressure(
        swapped_share=0.1, touch_interval_ns=gap_ns // 10, latency=SwapInLatency.fixed(latency_ns)))


# ---------------------------------------------------------------- protocol steps (host + guest)

def test_3_user_fault_round_trip_with_ack(x86_host: HostApf) -> None:
    guest = GuestApf(x86_host.rules, 1)
    area = x86_host.area
    assert x86_host.pop_ready() == WAKE_ALL_TOKEN
    assert guest.x86_ready_interrupt(0, area, current=None) == []   # boot wake-all: table empty
    x86_host.ack()
    token = x86_host.fault(FaultContext.USER)
    assert area.reason == PAGE_NOT_PRESENT             # flags = 1, #PF with CR2 = token
    node = guest.x86_async_pf(0, area, token, "task")
    assert node is not None and area.reason == 0
    a2 = x86_host.fault(FaultContext.USER)
    guest.x86_async_pf(0, area, a2, "task2")
    x86_host.page_arrived(token)
    x86_host.page_arrived(a2)
    assert x86_host.pop_ready() == token and area.token == token
    assert x86_host.pop_ready() is None                # slot busy until the guest is done
    assert guest.x86_ready_interrupt(0, area, current="other") == [node]
    x86_host.ack()
    assert x86_host.pop_ready() == a2                  # ACK lets the next one through


def test_4_page_ready_overtakes_not_present(x86_host: HostApf) -> None:
    guest = GuestApf(x86_host.rules, 1)
    area = x86_host.area
    x86_host.pop_ready()
    guest.x86_ready_interrupt(0, area, current=None)   # boot wake-all
    token = x86_host.fault(FaultContext.USER)          # not-present posted, not yet handled
    x86_host.page_arrived(token)
    # the page-ready is handled first (e.g. on another CPU): a dummy is left behind
    area.token = token
    assert guest.x86_ready_interrupt(0, area, current=None) == []
    assert guest.dummies == 1
    assert guest.x86_async_pf(0, area, token, "task") is None       # the wait does not sleep
    assert guest.dummies_consumed == 1 and guest.waiters(0)["dummy"] == 0


def test_7_guest_that_never_clears_the_token_blocks_every_later_ready(x86_host: HostApf) -> None:
    assert x86_host.pop_ready() == WAKE_ALL_TOKEN      # delivered, token never zeroed
    tokens = [x86_host.fault(FaultContext.USER) for _ in range(5)]
    for t in tokens:
        x86_host.page_arrived(t)
    assert x86_host.pop_ready() is None
    assert x86_host.outstanding == 5 and x86_host.ready_sent == 0


# ---------------------------------------------------------------- whole guests

def test_1_boot_enables_and_the_wake_all_wakes_nothing() -> None:
    model = AsyncPfModel(ApfConfig(vcpus=3, workload=workload(tasks=0)), seed=1)
    c = model.counters()
    assert [model.host(i).state for i in range(3)] == [HostApfState.ENABLED] * 3
    assert (c.wake_alls, c.acks, c.dummy_entries, c.bad_vector_injections) == (3, 3, 0, 0)
    assert c.outstanding == 0


def test_1_enabling_before_the_vector_loses_page_ready_for_good() -> None:
    config = ApfConfig(vcpus=1, guest=GuestProfile(vector_first=False),
                       workload=workload(tasks=70, latency_ns=1_000_000))
    model = AsyncPfModel(config, seed=1)
    model.run_until(50 * MS)
    c = model.counters()
    assert c.bad_vector_injections == 1                # the boot wake-all, on vector 0
    assert c.async_faults == 64 and c.ready_events == 0
    assert c.waiting_tasks == 64 and c.outstanding == 64
    assert c.sync_by_reason.get("queue-full", 0) > 0


def test_2_pre_5_8_guest_on_a_5_8_host_gets_no_async_faults() -> None:
    model = AsyncPfModel(ApfConfig(guest=GuestProfile(linux_5_8=False), workload=workload()), 1)
    model.run_until(20 * MS)
    c = model.counters()
    assert model.host(0).state is HostApfState.NO_EVENTS
    assert c.async_faults == 0 and c.sync_stalls > 0
    assert c.sync_by_reason == {"no-int-delivery": c.sync_stalls}


def test_3_every_page_ready_is_acked_and_wakes_its_task() -> None:
    model = AsyncPfModel(ApfConfig(workload=workload(tasks=3)), seed=2)
    model.run_until(20 * MS)
    c = model.counters()
    assert c.async_faults > 100 and c.sync_stalls == 0
    assert c.acks == c.ready_events + c.wake_alls
    assert c.async_faults == c.ready_events + c.outstanding
    assert c.idle_halts > 0                            # sometimes every task waited at once


def test_5_the_65th_outstanding_fault_on_one_vcpu_blocks_it() -> None:
    config = ApfConfig(vcpus=1, workload=workload(tasks=70, latency_ns=1_000 * MS))
    model = AsyncPfModel(config, seed=3)
    model.run_until(100 * MS)
    c = model.counters()
    assert c.async_faults == 64 and c.outstanding == 64
    assert c.sync_by_reason == {"queue-full": 1}
    assert model.vcpu_state(0) is VcpuState.SYNC_STALLED


def test_6_kernel_mode_faults_on_x86_are_synchronous() -> None:
    config = ApfConfig(workload=workload(contexts=ContextMix(user=0.0, kernel=1.0)))
    model = AsyncPfModel(config, seed=4)
    model.run_until(20 * MS)
    c = model.counters()
    assert c.async_faults == 0 and c.sync_by_reason == {"kernel-mode": c.sync_stalls}
    assert c.sync_stalls > 0


def test_8_rfc_halted_waiter_woken_in_its_own_context_never_resumes() -> None:
    config = ApfConfig(rules=ARM64_RFCV2, vcpus=1,
                       workload=workload(contexts=ContextMix(user=0.0, kernel=0.0, atomic=1.0)))
    model = AsyncPfModel(config, seed=5)
    model.run_until(50 * MS)                           # 500 swap-in latencies later
    c = model.counters()
    assert c.halted_waits == 1 and c.async_faults == 1 and c.ready_events == 1
    assert c.delayed_wakes == 1 and c.stuck_vcpus == 1
    assert model.vcpu_state(0) is VcpuState.APF_HALTED
    assert c.halted_ns > 49 * MS


def test_8_rfc_user_mode_waiters_are_never_delayed() -> None:
    model = AsyncPfModel(ApfConfig(rules=ARM64_RFCV2, workload=workload(tasks=3)), seed=6)
    model.run_until(20 * MS)
    c = model.counters()
    assert c.async_faults > 100 and c.delayed_wakes == 0 and c.stuck_vcpus == 0
    assert c.acks == 0                                 # no ACK MSR on arm64


def test_8_rfc_faults_in_the_guessed_window_are_sync_and_outside_it_unsafe() -> None:
    mix = ContextMix(user=0.5, kernel=0.0, exception_vectors=0.25, exception_other=0.25)
    model = AsyncPfModel(ApfConfig(rules=ARM64_RFCV2, workload=workload(tasks=4, contexts=mix)), 7)
    model.run_until(20 * MS)
    c = model.counters()
    assert c.sync_by_reason.get("no-apf-window", 0) > 0
    assert c.unsafe_deliveries > 0


def test_9_rfc_guest_booted_with_no_kvmapf_never_enables() -> None:
    config = ApfConfig(rules=ARM64_RFCV2, guest=GuestProfile(async_pf=False), workload=workload())
    model = AsyncPfModel(config, seed=8)
    model.run_until(10 * MS)
    assert SMCCC_KVM_RFC_APF in model.host(0).smccc_funcs
    assert model.host(0).state is HostApfState.DISABLED
    c = model.counters()
    assert c.async_faults == 0 and c.sync_by_reason == {"disabled": c.sync_stalls}


def test_10_upstream_arm64_reports_unsupported() -> None:
    model = AsyncPfModel(ApfConfig(rules=ARM64_UPSTREAM, workload=workload()), seed=9)
    model.run_until(10 * MS)
    host = model.host(0)
    assert SMCCC_KVM_RFC_APF not in host.smccc_funcs and host.state is HostApfState.DISABLED
    assert model.counters().async_faults == 0
    with pytest.raises(ModelError) as exc:
        host.smccc_enable(0x10_0000)
    assert exc.value.errno == errno.EOPNOTSUPP and "async PF: unsupported" in exc.value.strerror


# ---------------------------------------------------------------- pre-launch knobs (§3.6)

def test_kvm_asyncpf_without_int_has_no_effect_on_a_5_8_guest() -> None:
    config = ApfConfig(host=HostProfile(kvm_asyncpf=True, kvm_asyncpf_int=False), workload=workload())
    model = AsyncPfModel(config, seed=10)
    model.run_until(10 * MS)
    c = model.counters()
    assert model.host(0).state is HostApfState.DISABLED
    assert c.async_faults == 0 and c.sync_by_reason == {"disabled": c.sync_stalls}


def test_kernel_irqchip_off_makes_the_guest_enable_fail_with_a_gp() -> None:
    config = ApfConfig(vcpus=2, host=HostProfile(lapic_in_kernel=False), workload=workload())
    model = AsyncPfModel(config, seed=11)
    model.run_until(10 * MS)
    assert len(model.boot_warnings) == 2 and "kernel-irqchip" in model.boot_warnings[0]
    assert model.counters().async_faults == 0


def test_tasks_parked_on_a_token_resume_after_it() -> None:
    config = ApfConfig(vcpus=1, workload=workload(tasks=2, latency_ns=5 * MS, gap_ns=1_000))
    model = AsyncPfModel(config, seed=12)
    model.run_until(1 * MS)
    assert [t.state for t in model.tasks] == [TaskState.APF_WAIT] * 2
    assert model.vcpu_state(0) is VcpuState.IDLE
    model.run_until(49 * MS // 10)
    assert model.counters().ready_events == 0
    model.run_until(51 * MS // 10)                     # both pages are back: both ran and faulted again
    c = model.counters()
    assert (c.ready_events, c.async_faults) == (2, 4)


def test_x86_kernel_fault_share_splits_exactly_into_sync_and_async() -> None:
    mix = ContextMix(user=0.7, kernel=0.2, atomic=0.1)
    model = AsyncPfModel(replace(ApfConfig(), workload=workload(tasks=2, contexts=mix)), seed=13)
    model.run_until(50 * MS)
    c = model.counters()
    assert set(c.sync_by_reason) == {"kernel-mode"}
    assert 0.2 < c.sync_stalls / c.faults < 0.4
