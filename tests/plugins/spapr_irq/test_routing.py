"""Sources, event queues and delivery (semantics.md §1.4, §1.9 scenario 10)."""

from __future__ import annotations

import errno

import pytest

from vmctl.model import ModelError
from vmctl_spapr_irq.model.constants import (
    KVM_DEV_TYPE_XICS, KVM_DEV_TYPE_XIVE, PQ_OFF, PQ_PENDING, PQ_QUEUED, PQ_RESET,
)
from vmctl_spapr_irq.model.kvm import KvmVm
from vmctl_spapr_irq.model.routing import XicsRouting, XiveRouting


@pytest.fixture
def xive(vm: KvmVm) -> XiveRouting:
    """The native device's routing with vCPUs 0..3 connected, EQs at priority 6, sources 0x1000-1."""
    dev = vm.create_device(KVM_DEV_TYPE_XIVE)
    for v in vm.vcpus:
        vm.connect(v.index, dev, v.vcpu_id)
        dev.routing.config_eq(v.vcpu_id, 6, 16, 0x100000 + (v.index << 16))
    for irq in (0x1000, 0x1001):
        dev.routing.init_source(irq)
    return dev.routing


def errno_of(fn, *args, **kw) -> int:
    with pytest.raises(ModelError) as info:
        fn(*args, **kw)
    return info.value.errno


# -- §1.9.10 -----------------------------------------------------------------------------
def test_eq_size_other_than_64k_is_einval(xive: XiveRouting) -> None:
    assert errno_of(xive.config_eq, 0, 6, 12, 0x100000) == errno.EINVAL


def test_eq_without_always_notify_is_einval(xive: XiveRouting) -> None:
    assert errno_of(xive.config_eq, 0, 6, 16, 0x100000, flags=0) == errno.EINVAL


def test_eq_of_unknown_vcpu_is_enoent_and_unaligned_page_einval(xive: XiveRouting) -> None:
    assert errno_of(xive.config_eq, 9, 6, 16, 0x100000) == errno.ENOENT
    assert errno_of(xive.config_eq, 0, 6, 16, 0x101000) == errno.EINVAL


def test_priority_7_is_reserved_for_the_guest(xive: XiveRouting) -> None:
    assert errno_of(xive.config_source, 0x1000, 7, 0) == errno.EINVAL
    assert errno_of(xive.config_eq, 0, 7, 16, 0x100000) == errno.EINVAL
    xive.config_source(0x1000, 6, 0)


def test_source_number_beyond_1m_is_e2big_and_unknown_source_enoent(xive: XiveRouting) -> None:
    assert errno_of(xive.init_source, 1 << 20) == errno.E2BIG
    assert errno_of(xive.config_source, 0x1234, 6, 0) == errno.ENOENT


def test_source_routed_to_a_server_without_vcpu_is_einval(xive: XiveRouting) -> None:
    assert errno_of(xive.config_source, 0x1000, 6, 42) == errno.EINVAL


def test_xics_on_xive_clamps_guest_priorities_instead_of_refusing(vm: KvmVm) -> None:
    dev = vm.create_device(KVM_DEV_TYPE_XICS)
    vm.connect(0, dev, 0)
    routing = dev.routing
    assert isinstance(routing, XicsRouting)
    routing.init_source(0x1000)
    routing.set_source(0x1000, 0, 7)
    assert routing.sources[0x1000].priority == 6
    assert errno_of(routing.init_source, 3) == errno.E2BIG      # 0..15 are reserved on XICS


# -- delivery and counters -----------------------------------------------------------------
def test_deliveries_are_counted_per_source_and_per_vcpu(xive: XiveRouting) -> None:
    xive.config_source(0x1000, 6, 1, eisn=0x11)
    xive.config_source(0x1001, 6, 3, eisn=0x14)
    for _ in range(5):
        assert xive.deliver(0x1000) == 1
    assert xive.deliver(0x1001) == 3
    assert xive.per_source() == {0x1000: 5, 0x1001: 1}
    assert xive.per_vcpu() == {0: 0, 1: 5, 2: 0, 3: 1}
    assert xive.delivered == 6


def test_masked_source_delivers_nothing(xive: XiveRouting) -> None:
    xive.config_source(0x1000, 6, 0, masked=True)
    assert xive.deliver(0x1000) is None
    assert xive.sources[0x1000].pq == PQ_OFF and xive.delivered == 0


def test_pq_bits_coalesce_triggers_until_eoi(xive: XiveRouting) -> None:
    xive.config_source(0x1000, 6, 0)
    src = xive.sources[0x1000]
    assert xive.trigger(0x1000) and src.pq == PQ_PENDING
    assert not xive.trigger(0x1000) and src.pq == PQ_QUEUED
    assert not xive.trigger(0x1000) and xive.coalesced == 2
    assert xive.eoi(0x1000)                      # the queued trigger is forwarded again
    assert src.pq == PQ_PENDING
    assert not xive.eoi(0x1000) and src.pq == PQ_RESET
    assert xive.per_source() == {0x1000: 2}


def test_event_without_a_queue_is_dropped(xive: XiveRouting) -> None:
    xive.config_source(0x1000, 5, 0)            # the guest gave no EQ for priority 5
    assert xive.deliver(0x1000) is None
    assert xive.dropped == 1 and xive.delivered == 0


def test_event_queue_wraps_and_flips_its_generation(xive: XiveRouting) -> None:
    xive.config_source(0x1000, 6, 2, eisn=0x42)
    eq = xive.presenters[2].eqs[6]
    assert eq is not None and eq.entries == 16384 and eq.toggle == 1
    for _ in range(eq.entries + 3):
        xive.deliver(0x1000)
    assert eq.index == 3 and eq.toggle == 0
    assert eq.window() == [0x80000042, 0x80000042, 0x42, 0x42, 0x42, 0x80000042]


def test_reset_masks_everything_and_drops_queues(xive: XiveRouting) -> None:
    xive.config_source(0x1000, 6, 0)
    xive.reset()
    assert xive.sources[0x1000].masked and xive.sources[0x1000].pq == PQ_OFF
    assert all(eq is None for p in xive.presenters.values() for eq in p.eqs)
    assert xive.deliver(0x1000) is None


def test_xics_delivery_respects_cppr_and_masking() -> None:
    xics = XicsRouting()
    xics.add_presenter(0, 0)
    xics.init_source(0x1000)
    assert xics.deliver(0x1000) is None                 # masked (priority 0xff)
    xics.set_source(0x1000, 0, 5)
    assert xics.deliver(0x1000) is None                 # CPPR 0: the guest has not opened it
    xics.presenters[0].cppr = 0xFF
    assert xics.deliver(0x1000) == 0
    assert xics.ipi(0) == 0
    assert xics.per_source() == {2: 1, 0x1000: 1}
    assert xics.per_vcpu() == {0: 2}


def test_release_drops_routing_of_disconnected_presenters(vm: KvmVm) -> None:
    dev = vm.create_device(KVM_DEV_TYPE_XIVE)
    vm.connect(0, dev, 0)
    routing = dev.routing
    routing.init_source(0x1000)
    routing.config_eq(0, 6, 16, 0x100000)
    routing.config_source(0x1000, 6, 0)
    dev.close()
    assert routing.presenters == {} and routing.sources[0x1000].target is None
