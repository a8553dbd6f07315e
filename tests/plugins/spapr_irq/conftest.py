"""Fixtures for the spapr-irq model tests: a host kernel, a VM with vCPUs, machines."""

from __future__ import annotations

import pytest

from vmctl_spapr_irq.model.kvm import HostKvm, KvmVm


@pytest.fixture
def host() -> HostKvm:
    """A POWER9 bare-metal host running Linux >= 5.2 (XIVE native, release operation)."""
    return HostKvm()


@pytest.fixture
def vm(host: HostKvm) -> KvmVm:
    """A VM with four vCPUs whose ids are 0..3."""
    vm = KvmVm(host, "guest")
    for i in range(4):
        vm.create_vcpu(i)
    return vm
