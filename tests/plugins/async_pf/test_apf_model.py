"""Whole-guest behaviour: determinism, time accounting, draining, and the no-APF shadow."""

from __future__ import annotations

import errno
from dataclasses import replace

import pytest

from vmctl.model import ModelError
from vmctl_async_pf.model.config import ApfConfig, ProtocolCosts
from vmctl_async_pf.model.machine import AsyncPfModel
from vmctl_async_pf.model.protocol import ARM64_RFCV2, X86_64_MERGED
from vmctl_async_pf.model.simulation import ApfSimulation
from vmctl_async_pf.model.workload import ContextMix, MemoryPressure, SwapInLatency, Workload

MS = 1_000_000
FREE = ProtocolCosts(not_present_ns=0, ready_ns=0)


def mixed(rules=X86_64_MERGED, tasks: int = 2, **kw: object) -> ApfConfig:  # type: ignore[no-untyped-def]
    wl = Workload(tasks_per_vcpu=tasks, contexts=ContextMix(user=0.8, kernel=0.15, atomic=0.05))
    return ApfConfig(rules=rules, vcpus=3, workload=wl, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize("rules", [X86_64_MERGED, ARM64_RFCV2], ids=["x86", "arm64"])
def test_same_seed_same_counters_other_seed_other_counters(rules) -> None:  # type: ignore[no-untyped-def]
    def run(seed: int) -> dict[str, object]:
        model = AsyncPfModel(mixed(rules), seed)
        model.run_until(30 * MS)
        return model.counters().to_json()

    assert run(7) == run(7)
    assert run(7) != run(8)


@pytest.mark.parametrize("rules", [X86_64_MERGED, ARM64_RFCV2], ids=["x86", "arm64"])
def test_vcpu_time_splits_exactly_into_the_six_buckets(rules) -> None:  # type: ignore[no-untyped-def]
    model = AsyncPfModel(mixed(rules), seed=3)
    for t in (1 * MS + 17, 9 * MS, 23 * MS + 5):       # also mid-way through protocol work
        model.run_until(t)
        c = model.counters()
        parts = (c.work_ns, c.overhead_ns, c.sync_ns, c.halted_ns, c.idle_wait_ns, c.idle_ns)
        assert all(p >= 0 for p in parts)
        assert sum(parts) == c.vcpus * t


def test_time_only_goes_forward() -> None:
    model = AsyncPfModel(mixed(), seed=1)
    model.run_until(5 * MS)
    with pytest.raises(ModelError) as exc:
        model.run_until(4 * MS)
    assert exc.value.errno == errno.EINVAL


def test_draining_answers_every_async_fault() -> None:
    model = AsyncPfModel(mixed(tasks=4), seed=5)
    model.run_until(40 * MS)
    assert model.counters().outstanding > 0
    model.drain()
    c = model.counters()
    assert c.async_faults == c.ready_events
    assert (c.outstanding, c.waiting_tasks) == (0, 0)


def test_async_pf_helps_when_other_tasks_can_run() -> None:
    sim = ApfSimulation(replace(mixed(tasks=4), vcpus=2), seed=1)
    sim.advance(200 * MS)
    cmp = sim.compare()
    assert cmp.verdict == "helps"
    assert cmp.with_apf.work_ns > cmp.without_apf.work_ns
    assert cmp.with_apf.stalled_ns < cmp.without_apf.stalled_ns


def test_async_pf_hurts_one_task_per_vcpu_by_its_own_overhead() -> None:
    wl = Workload(tasks_per_vcpu=1, contexts=ContextMix(user=1.0, kernel=0.0))
    sim = ApfSimulation(ApfConfig(vcpus=2, workload=wl), seed=2)
    sim.advance(200 * MS)
    cmp = sim.compare()
    assert cmp.verdict == "hurts"
    assert cmp.with_apf.overhead_ns > 0 and cmp.without_apf.overhead_ns == 0


def test_shadow_sees_the_same_faults_so_free_async_pf_with_nothing_else_to_run_is_neutral() -> None:
    wl = Workload(tasks_per_vcpu=1, contexts=ContextMix(user=1.0, kernel=0.0))
    sim = ApfSimulation(ApfConfig(vcpus=2, workload=wl, costs=FREE), seed=3)
    sim.advance(100 * MS)
    cmp = sim.compare()
    assert cmp.with_apf.async_faults > 100 and cmp.without_apf.async_faults == 0
    # idle-waiting for the page instead of blocking in the host: same faults, same time
    assert cmp.with_apf.faults == cmp.without_apf.faults
    assert cmp.with_apf.idle_wait_ns == cmp.without_apf.sync_ns
    assert cmp.with_apf.work_ns == cmp.without_apf.work_ns
    assert cmp.verdict == "neutral"


def test_the_shadow_is_the_same_guest_booted_with_no_kvmapf() -> None:
    sim = ApfSimulation(mixed(), seed=4)
    sim.advance(10 * MS)
    assert sim.now == 10 * MS and sim.shadow.now == 10 * MS
    c = sim.shadow.counters()
    assert c.async_faults == 0 and c.sync_by_reason == {"disabled": c.sync_stalls}
    assert sim.counters() == sim.machine.counters()


def test_no_swapped_pages_means_no_faults_and_all_work() -> None:
    wl = Workload(tasks_per_vcpu=3, pressure=MemoryPressure(swapped_share=0.0))
    model = AsyncPfModel(ApfConfig(vcpus=2, workload=wl), seed=1)
    model.run_until(50 * MS)
    c = model.counters()
    assert c.faults == 0
    # the only protocol work is each vCPU's boot wake-all
    assert c.overhead_ns == c.wake_alls * ProtocolCosts().ready_ns == 2 * 2_000
    assert c.work_ns == 2 * 50 * MS - c.overhead_ns


def test_slower_swap_in_costs_more_vcpu_time() -> None:
    def lost(median_ns: int) -> int:
        wl = Workload(pressure=MemoryPressure(latency=SwapInLatency(median_ns=median_ns)))
        model = AsyncPfModel(ApfConfig(workload=wl).without_async_pf(), seed=9)
        model.run_until(50 * MS)
        return model.counters().lost_ns

    assert lost(50_000) < lost(200_000)
