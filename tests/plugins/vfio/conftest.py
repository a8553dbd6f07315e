"""Fixtures for the VFIO plugin tests: a QEMU-like process, a host with IOMMU groups, and
a container session set up the way QEMU does it."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from vmctl_vfio.model import uapi as u
from vmctl_vfio.model.container import Container, Group, GroupDevice, VfioHost
from vmctl_vfio.model.mm import Process

MiB = 1 << 20
GiB = 1 << 30
RAM = 0x7F0000000000          #: where the test process maps its "guest RAM"
NIC = "0000:03:00.0"


@pytest.fixture
def process() -> Process:
    """A process with 64 MiB RLIMIT_MEMLOCK, no CAP_IPC_LOCK, 2 GiB of anonymous memory."""
    p = Process(64 * MiB)
    p.mmap(RAM, 2 * GiB)
    return p


@pytest.fixture
def host(process: Process) -> VfioHost:
    """Group 7 holds a NIC on vfio-pci; group 1 a GPU on vfio-pci and its audio function
    still on snd_hda_intel (not viable)."""
    return VfioHost([
        Group(7, [GroupDevice(NIC)]),
        Group(1, [GroupDevice("0000:01:00.0"),
                  GroupDevice("0000:01:00.1", driver="snd_hda_intel")]),
    ], process)


@dataclass
class Session:
    host: VfioHost
    container: Container
    group: Group


@pytest.fixture
def session(host: VfioHost) -> Session:
    """Container with group 7 attached and TYPE1v2 set, nothing mapped yet."""
    c = host.open_container()
    g = host.open_group(7)
    g.set_container(c)
    c.set_iommu(u.VFIO_TYPE1v2_IOMMU)
    return Session(host, c, g)
