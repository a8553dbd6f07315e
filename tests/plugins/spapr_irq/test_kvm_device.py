"""The KVM device lifecycle (semantics.md §1.2, §1.3, §1.9 scenarios 1–6 and 11)."""

from __future__ import annotations

import errno

import pytest

from vmctl.model import ModelError
from vmctl_spapr_irq.model.constants import (
    KVM_CAP_IRQ_XICS, KVM_CAP_PPC_IRQ_XIVE, KVM_DEV_TYPE_XICS, KVM_DEV_TYPE_XIVE, IrqType, SlotState,
    slot_index,
)
from vmctl_spapr_irq.model.kvm import HostKvm, KvmVm


def errno_of(fn, *args) -> int:
    with pytest.raises(ModelError) as info:
        fn(*args)
    return info.value.errno


def connect_all(vm: KvmVm, dev) -> None:
    for vcpu in vm.vcpus:
        vm.connect(vcpu.index, dev, vcpu.vcpu_id)


# -- §1.9.1: one active device per VM -------------------------------------------------------
def test_second_create_while_xive_active_is_eexist(vm: KvmVm) -> None:
    vm.create_device(KVM_DEV_TYPE_XIVE)
    assert errno_of(vm.create_device, KVM_DEV_TYPE_XICS) == errno.EEXIST
    assert errno_of(vm.create_device, KVM_DEV_TYPE_XIVE) == errno.EEXIST


def test_native_xive_needs_a_xive_host() -> None:
    vm = KvmVm(HostKvm(xive_native=False))
    assert errno_of(vm.create_device, KVM_DEV_TYPE_XIVE) == errno.ENODEV
    vm.create_device(KVM_DEV_TYPE_XICS)          # XICS still works (POWER8 / nested host)


# -- §1.9.2 and §1.9.3: vCPU connect errors ---------------------------------------------------
def test_connect_same_vcpu_twice_is_ebusy_and_duplicate_server_is_eexist(vm: KvmVm) -> None:
    dev = vm.create_device(KVM_DEV_TYPE_XIVE)
    vm.connect(0, dev, 0)
    assert errno_of(vm.connect, 0, dev, 5) == errno.EBUSY
    assert errno_of(vm.connect, 1, dev, 0) == errno.EEXIST
    assert vm.vcpus[1].irq_type is IrqType.DEFAULT       # the failed connect left no trace
    assert vm.stats["connect_errors"] == {"EBUSY": 1, "EEXIST": 1}


def test_server_at_or_above_nr_servers_is_einval(vm: KvmVm) -> None:
    dev = vm.create_device(KVM_DEV_TYPE_XIVE)
    dev.set_nr_servers(4)
    assert errno_of(vm.connect, 0, dev, 8) == errno.EINVAL
    assert errno_of(vm.connect, 0, dev, 4) == errno.EINVAL
    vm.connect(0, dev, 3)


def test_server_beyond_kvm_max_vcpus_is_einval(vm: KvmVm, host: HostKvm) -> None:
    dev = vm.create_device(KVM_DEV_TYPE_XICS)
    assert errno_of(vm.connect, 0, dev, host.max_vcpus) == errno.EINVAL


def test_device_of_another_vm_is_eperm(host: HostKvm, vm: KvmVm) -> None:
    other = KvmVm(host, "other")
    other.create_vcpu(0)
    foreign = other.create_device(KVM_DEV_TYPE_XIVE)
    vm.create_device(KVM_DEV_TYPE_XIVE)
    assert errno_of(vm.enable_cap, 0, KVM_CAP_PPC_IRQ_XIVE, foreign.fd, 0) == errno.EPERM


def test_wrong_capability_for_the_device_is_eperm(vm: KvmVm) -> None:
    dev = vm.create_device(KVM_DEV_TYPE_XICS)
    assert errno_of(vm.enable_cap, 0, KVM_CAP_PPC_IRQ_XIVE, dev.fd, 0) == errno.EPERM


def test_closed_fd_is_ebadf(vm: KvmVm) -> None:
    dev = vm.create_device(KVM_DEV_TYPE_XIVE)
    dev.close()
    assert errno_of(vm.enable_cap, 0, KVM_CAP_PPC_IRQ_XIVE, dev.fd, 0) == errno.EBADF


def test_xive_capability_on_a_host_without_xive_is_enxio() -> None:
    vm = KvmVm(HostKvm(xive_native=False))
    vm.create_vcpu(0)
    dev = vm.create_device(KVM_DEV_TYPE_XICS)
    assert errno_of(vm.enable_cap, 0, KVM_CAP_PPC_IRQ_XIVE, dev.fd, 0) == errno.ENXIO
    vm.enable_cap(0, KVM_CAP_IRQ_XICS, dev.fd, 0)


def test_vp_pool_exhausted_is_enospc_and_release_gives_vps_back() -> None:
    host = HostKvm(vp_pool=8)
    first, second = KvmVm(host, "a"), KvmVm(host, "b")
    first.create_vcpu(0)
    second.create_vcpu(0)
    dev_a = first.create_device(KVM_DEV_TYPE_XIVE)
    dev_a.set_nr_servers(8)
    first.connect(0, dev_a, 0)
    assert host.vp_pool == 0
    dev_b = second.create_device(KVM_DEV_TYPE_XIVE)
    dev_b.set_nr_servers(4)
    assert errno_of(second.connect, 0, dev_b, 0) == errno.ENOSPC
    dev_a.close()
    assert host.vp_pool == 8
    second.connect(0, dev_b, 0)


def test_vcpu_ids_beyond_kvm_max_vcpu_ids_or_duplicated_are_refused(host: HostKvm, vm: KvmVm) -> None:
    assert errno_of(vm.create_vcpu, host.max_vcpu_ids) == errno.EINVAL
    assert errno_of(vm.create_vcpu, 2) == errno.EEXIST


# -- §1.9.4: NR_SERVERS ----------------------------------------------------------------------
def test_nr_servers_rules(vm: KvmVm, host: HostKvm) -> None:
    dev = vm.create_device(KVM_DEV_TYPE_XIVE)
    assert dev.get_nr_servers() == host.max_vcpus                     # default
    assert errno_of(dev.set_nr_servers, 0) == errno.EINVAL
    assert errno_of(dev.set_nr_servers, host.max_vcpu_ids + 1) == errno.EINVAL
    dev.set_nr_servers(host.max_vcpus + 1)                            # accepted, clamped
    assert dev.get_nr_servers() == host.max_vcpus
    dev.set_nr_servers(16)
    vm.connect(0, dev, 0)
    assert errno_of(dev.set_nr_servers, 32) == errno.EBUSY
    assert dev.get_nr_servers() == 16


# -- §1.9.5: release -------------------------------------------------------------------------
def test_release_returns_presenters_to_default_and_keeps_the_vm(vm: KvmVm) -> None:
    xive = vm.create_device(KVM_DEV_TYPE_XIVE)
    connect_all(vm, xive)
    assert {v.irq_type for v in vm.vcpus} == {IrqType.XIVE}
    xive.close()
    assert {v.irq_type for v in vm.vcpus} == {IrqType.DEFAULT}
    assert all(v.server is None for v in vm.vcpus)
    assert vm.active is None and not vm.destroyed
    assert vm.slot_states() == {"xics-on-xive": SlotState.UNALLOCATED, "xive-native": SlotState.CACHED_IDLE}
    xics = vm.create_device(KVM_DEV_TYPE_XICS)
    connect_all(vm, xics)
    assert {v.irq_type for v in vm.vcpus} == {IrqType.XICS}
    assert vm.slot_states() == {"xics-on-xive": SlotState.ACTIVE, "xive-native": SlotState.CACHED_IDLE}
    assert vm.stats["creates"] == 2 and vm.stats["releases"] == 1


# -- §1.9.6: slot reuse, zeroed ---------------------------------------------------------------
def test_recreate_reuses_the_slot_zeroed(vm: KvmVm, host: HostKvm) -> None:
    dev = vm.create_device(KVM_DEV_TYPE_XIVE)
    dev.set_nr_servers(8)
    connect_all(vm, dev)
    dev.routing.init_source(0x1000)
    dev.routing.config_eq(0, 6, 16, 0x30000)
    dev.routing.config_source(0x1000, 6, 0, eisn=0x11)
    dev.routing.deliver(0x1000)
    memory = dev.instance
    dev.close()
    again = vm.create_device(KVM_DEV_TYPE_XIVE)
    assert again.instance is memory                          # same slot memory
    assert again.routing.sources == {} and again.routing.presenters == {}
    assert again.routing.delivered == 0
    assert again.get_nr_servers() == host.max_vcpus          # back to the default
    assert again.instance.vp_block == 0                      # VP block lazily re-allocated


def test_slot_choice_compares_the_type_unlike_the_seed_typo(vm: KvmVm) -> None:
    """Seed v5 wrote ``type = KVM_DEV_TYPE_XIVE``: every device landed in the native slot."""
    assert (slot_index(KVM_DEV_TYPE_XICS), slot_index(KVM_DEV_TYPE_XIVE)) == (0, 1)
    xics = vm.create_device(KVM_DEV_TYPE_XICS)
    xics.close()
    xive = vm.create_device(KVM_DEV_TYPE_XIVE)
    assert vm.slots[0] is xics.instance and vm.slots[1] is xive.instance
    assert xics.instance is not xive.instance
    assert vm.slot_states() == {"xics-on-xive": SlotState.CACHED_IDLE, "xive-native": SlotState.ACTIVE}


def test_vm_destroy_frees_both_slots_and_the_vps(host: HostKvm, vm: KvmVm) -> None:
    pool = host.vp_pool
    dev = vm.create_device(KVM_DEV_TYPE_XICS)
    dev.set_nr_servers(4)
    connect_all(vm, dev)
    assert host.vp_pool == pool - 4
    vm.destroy()
    assert vm.slots == [None, None] and host.vp_pool == pool
    assert errno_of(vm.create_device, KVM_DEV_TYPE_XIVE) == errno.EBADF


# -- §1.9.11: a kernel without the release operation ------------------------------------------
def test_pre_5_2_kernel_keeps_the_closed_device_so_a_second_create_fails() -> None:
    vm = KvmVm(HostKvm(release_op=False))
    vm.create_vcpu(0)
    dev = vm.create_device(KVM_DEV_TYPE_XICS)
    vm.connect(0, dev, 0)
    dev.close()
    assert vm.active is dev and vm.vcpus[0].irq_type is IrqType.XICS
    assert errno_of(vm.create_device, KVM_DEV_TYPE_XICS) == errno.EEXIST


def test_5_2_kernel_recreates_after_close(vm: KvmVm) -> None:
    vm.create_device(KVM_DEV_TYPE_XICS).close()
    vm.create_device(KVM_DEV_TYPE_XICS)


def test_snapshot_reports_what_the_monitor_shows(vm: KvmVm) -> None:
    dev = vm.create_device(KVM_DEV_TYPE_XIVE)
    vm.connect(0, dev, 0)
    snap = vm.snapshot()
    assert snap["active"] == "xive-native"
    assert snap["vcpus"][0] == {"index": 0, "vcpu_id": 0, "irq_type": "xive", "server": 0}
    assert snap["vcpus"][1]["irq_type"] == "default"
