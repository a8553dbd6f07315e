"""What this host's KVM can do for a pseries guest: a read-only probe.

KVM for pseries guests needs a ppc64 host with ``/dev/kvm`` (``kvm_hv``). The in-kernel
XIVE device needs ``KVM_CAP_PPC_IRQ_XIVE``, which the kernel reports only on POWER9 or later
bare metal with XIVE in native mode (not in a nested guest); releasing a device without
destroying the VM (seed 000) needs Linux ≥ 5.2. The probe asks ``/dev/kvm`` with
``KVM_CHECK_EXTENSION``; on any other host it says why KVM is out of reach, so validation
can print that instead of QEMU failing at launch.
"""

from __future__ import annotations

import errno
import fcntl
import os
import platform
import re
import stat
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from .model.cas import KvmHost
from .model.constants import DEFAULT_KVM_MAX_VCPUS, KVM_CAP_PPC_IRQ_XIVE, MAX_SMT_THREADS

KVM_CHECK_EXTENSION = 0xAE03        # _IO(KVMIO, 0x03)
KVM_CAP_NR_VCPUS = 9
KVM_CAP_MAX_VCPUS = 66
KVM_CAP_MAX_VCPU_ID = 128
PPC64_MACHINES = ("ppc64le", "ppc64")

CheckExtension = Callable[[int], int]


@dataclass(frozen=True)
class HostProbe:
    """The probe's findings; ``detail`` says in words what was found or what is missing."""

    kvm_available: bool
    xive_cap: bool
    can_release: bool
    max_vcpus: int
    max_vcpu_ids: int
    detail: str

    @property
    def kvm_host(self) -> KvmHost:
        return KvmHost(self.kvm_available, self.xive_cap, self.can_release)

    def to_json(self) -> dict[str, object]:
        return {"kvm": self.kvm_available, "xive_cap": self.xive_cap, "can_release": self.can_release,
                "max_vcpus": self.max_vcpus, "max_vcpu_ids": self.max_vcpu_ids, "detail": self.detail}


def kernel_at_least(release: str, want: tuple[int, int]) -> bool:
    """``"6.1.0-50-powerpc64le"`` ≥ (5, 2)?"""
    m = re.match(r"(\d+)\.(\d+)", release)
    return bool(m) and (int(m[1]), int(m[2])) >= want


def _ioctl_checker(fd: int) -> CheckExtension:
    def check(cap: int) -> int:
        return fcntl.ioctl(fd, KVM_CHECK_EXTENSION, cap)
    return check


def probe(root: str | os.PathLike[str] = "/", *, machine: str | None = None, release: str | None = None,
          check_extension: CheckExtension | None = None) -> HostProbe:
    """Probe the host under ``root`` (``--sysfs-root``); arguments override what is read.

    ``machine`` is ``uname -m``, ``release`` the kernel release, ``check_extension`` stands
    in for ``ioctl(/dev/kvm, KVM_CHECK_EXTENSION, cap)`` (tests use them).
    """
    machine = machine or platform.machine()
    release = release or platform.release()
    unusable = HostProbe(False, False, True, DEFAULT_KVM_MAX_VCPUS, MAX_SMT_THREADS * DEFAULT_KVM_MAX_VCPUS, "")
    if machine not in PPC64_MACHINES:
        return _with(unusable, f"host is {machine}: KVM runs pseries guests only on a ppc64 (POWER) host")
    if check_extension is not None:
        return _from_caps(check_extension, release)
    dev = Path(root, "dev", "kvm")
    try:
        if not stat.S_ISCHR(dev.stat().st_mode):
            return _with(unusable, f"{dev} is not a character device")
        fd = os.open(dev, os.O_RDWR | os.O_CLOEXEC)
    except FileNotFoundError:
        return _with(unusable, f"no {dev}: load kvm_hv (POWER bare metal) or kvm_pr")
    except PermissionError:
        return _with(unusable, f"{dev} is not accessible: add the user to the 'kvm' group")
    try:
        return _from_caps(_ioctl_checker(fd), release)
    except OSError as exc:
        return _with(unusable, f"KVM_CHECK_EXTENSION failed on {dev}: {errno.errorcode.get(exc.errno, exc.errno)}")
    finally:
        os.close(fd)


def _from_caps(check: CheckExtension, release: str) -> HostProbe:
    xive = check(KVM_CAP_PPC_IRQ_XIVE) > 0
    max_vcpus = check(KVM_CAP_MAX_VCPUS) or check(KVM_CAP_NR_VCPUS) or DEFAULT_KVM_MAX_VCPUS
    max_ids = check(KVM_CAP_MAX_VCPU_ID) or MAX_SMT_THREADS * max_vcpus
    release_ok = kernel_at_least(release, (5, 2))
    detail = (f"KVM: KVM_CAP_PPC_IRQ_XIVE {'present' if xive else 'absent'}, "
              f"KVM_MAX_VCPUS {max_vcpus}, kernel {release}"
              + ("" if release_ok else " (< 5.2: cannot release an interrupt device)"))
    return HostProbe(True, xive, release_ok, max_vcpus, max_ids, detail)


def _with(p: HostProbe, detail: str) -> HostProbe:
    return HostProbe(p.kvm_available, p.xive_cap, p.can_release, p.max_vcpus, p.max_vcpu_ids, detail)


@lru_cache(maxsize=8)
def cached_probe(root: str) -> HostProbe:
    """:func:`probe`, once per root and process (a fleet of machines shares it)."""
    return probe(root)
