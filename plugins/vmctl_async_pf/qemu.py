"""Lowering ``[async-pf]`` to QEMU. Pure.

x86_64 only (aarch64 has nothing to lower: there is no upstream interface):

* ``mode = "on"``  → ``-cpu MODEL,kvm-asyncpf=on,kvm-asyncpf-int=on`` (both: Linux >= 5.8
  guests use async PF only with interrupt-based page-ready, and QEMU does not turn
  ``kvm-asyncpf-int`` on by default for named models);
* ``mode = "off"`` → ``kvm-asyncpf=off,kvm-asyncpf-int=off``, and ``no-kvmapf`` on the guest
  command line when there is a ``boot.kernel`` to pass it to (QEMU refuses ``-append``
  without ``-kernel``);
* ``mode = "auto"`` → nothing: QEMU's and the CPU model's defaults.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from vmctl.api import CpuProp, KernelArg

from .settings import read

if TYPE_CHECKING:  # pragma: no cover
    from vmctl.api import Machine
    from vmctl.api import QemuFragment

__all__ = ["qemu_args"]


def qemu_args(machine: Machine) -> list[QemuFragment]:
    """The ``-cpu`` properties and guest command-line words for ``machine``."""
    s = read(machine)
    if not s.x86 or s.mode == "auto":
        return []
    key = "async-pf.mode"
    out: list[QemuFragment] = [CpuProp("kvm-asyncpf", s.mode, key=key),
                               CpuProp("kvm-asyncpf-int", s.mode, key=key)]
    if s.mode == "off" and s.has_kernel and not s.append_disables:
        out.append(KernelArg("no-kvmapf", key=key))
    return out
