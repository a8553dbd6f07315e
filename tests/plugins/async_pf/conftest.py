"""Fixtures for the async-pf plugin's model tests."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

# The built-in plugins live under plugins/; make them importable when vmctl is not installed.
_PLUGINS = Path(__file__).resolve().parents[3] / "plugins"
if str(_PLUGINS) not in sys.path:
    sys.path.insert(0, str(_PLUGINS))

from vmctl_async_pf.model.config import ApfConfig  # noqa: E402
from vmctl_async_pf.model.kvm import HostApf  # noqa: E402
from vmctl_async_pf.model.protocol import (  # noqa: E402
    ARM64_RFCV2, ASYNC_PF_DELIVERY_AS_INT, ASYNC_PF_ENABLED, HYPERVISOR_CALLBACK_VECTOR,
    MSR_KVM_ASYNC_PF_EN, MSR_KVM_ASYNC_PF_INT, X86_64_MERGED,
)

GPA = 0x10_0000
EN_VALUE = GPA | ASYNC_PF_ENABLED | ASYNC_PF_DELIVERY_AS_INT


@pytest.fixture
def x86_host() -> HostApf:
    """An x86 vCPU 0 as a Linux >= 5.8 guest leaves it: vector 0xEC, then EN with bit 3."""
    host = HostApf(X86_64_MERGED, 0, memory_bytes=1 << 30)
    host.write_msr(MSR_KVM_ASYNC_PF_INT, HYPERVISOR_CALLBACK_VECTOR)
    host.write_msr(MSR_KVM_ASYNC_PF_EN, EN_VALUE)
    return host


@pytest.fixture
def arm64_host() -> HostApf:
    """An arm64 vCPU 0 with the RFCv2 protocol enabled through SMCCC."""
    host = HostApf(ARM64_RFCV2, 0, memory_bytes=1 << 30)
    host.smccc_enable(GPA)
    return host


@pytest.fixture
def x86_config() -> ApfConfig:
    return ApfConfig()
