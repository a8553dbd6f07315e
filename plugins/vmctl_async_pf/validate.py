"""Pre-launch checks of ``[async-pf]`` (semantics.md §3.6).

Notes only appear when the machine has an ``[async-pf]`` table; errors come from values the
user wrote.  Codes (stable, documented in ``docs/async-pf.md``):

================================  ========  ===============================================
code                              severity  when
================================  ========  ===============================================
``async-pf-needs-kvm``            error     x86 ``mode = "on"`` with ``accel`` not ``kvm``
``async-pf-tcg``                  note      x86 ``mode = "auto"`` with ``accel = "tcg"``
``async-pf-int-off``              note      x86 ``auto`` with a named CPU model: QEMU leaves
                                            ``kvm-asyncpf-int`` off, Linux >= 5.8 will not use APF
``no-kvmapf-in-append``           warning   ``boot.append`` has ``no-kvmapf`` and ``mode = "on"``
                                            (a note with ``auto``)
``no-kvmapf-needs-kernel``        note      x86 ``mode = "off"`` without ``boot.kernel``: the
                                            CPU properties still turn APF off
``experimental-ignored``          note      ``experimental = true`` on x86 (merged there)
``arm64-apf-needs-experimental``  error     aarch64 ``mode = "on"`` without ``experimental``
``arm64-apf-unsupported``         note      aarch64 ``auto`` without ``experimental``
``arm64-apf-simulator-only``      note      aarch64 with ``experimental`` on the simulator
``arm64-apf-not-upstream``        error     aarch64 ``mode = "on"`` + ``experimental`` with
                                            ``--backend qemu`` (a note with ``auto``)
================================  ========  ===============================================
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .settings import PASSTHROUGH_CPUS, ApfSettings, read

if TYPE_CHECKING:  # pragma: no cover
    from vmctl.api import Machine
    from vmctl.api import Diagnostic, ValidationContext

__all__ = ["validate_machine", "ARM64_NOT_UPSTREAM", "ARM64_HINT"]

#: Why real QEMU/KVM cannot run arm64 async PF: the series and what its reviewers said.
ARM64_NOT_UPSTREAM = (
    "async page faults on aarch64 were never merged: the RFC series (Gavin Shan, RFCv2 2020, "
    "v4 2021 on top of SDEI virtualization, stalled 2022) has no KVM or QEMU interface to "
    "configure. Reviewers objected to its delayed-wake hook in the entry assembly, its "
    "open-coded idle loop, and its guessed 'vector base .. max handler offset + 4096' no-APF "
    "window (NAK), and asked for page-ready as an interrupt")
ARM64_HINT = ('run it on the simulator (vmctl run --backend sim) or set mode = "off"; '
              "docs/async-pf.md explains the objections")


def validate_machine(machine: Machine, ctx: ValidationContext | None = None) -> list[Diagnostic]:
    """Every finding about ``machine``'s ``[async-pf]`` settings."""
    s = read(machine)
    backend = ctx.backend if ctx is not None else "sim"
    if s.x86:
        return _x86(machine, s)
    if s.aarch64:
        return _aarch64(machine, s, backend)
    return []


def _append(machine: Machine, s: ApfSettings) -> list[Diagnostic]:
    if not s.append_disables or s.mode == "off":
        return []
    msg = ("the guest command line has no-kvmapf, so the guest never enables async page "
           f'faults although mode = "{s.mode}"')
    hint = 'remove no-kvmapf from boot.append, or set [async-pf] mode = "off" to say so'
    if s.mode == "on":
        return [machine.warning("no-kvmapf-in-append", "boot.append", msg, hint)]
    return [machine.note("no-kvmapf-in-append", "boot.append", msg, hint)] if s.written else []


def _x86(machine: Machine, s: ApfSettings) -> list[Diagnostic]:
    out: list[Diagnostic] = []
    key = "async-pf.mode"
    if s.mode == "on" and s.accel != "kvm":
        out.append(machine.error(
            "async-pf-needs-kvm", key,
            f'mode = "on" needs KVM: kvm-asyncpf and kvm-asyncpf-int are KVM paravirtual '
            f'features and have no effect with machine.accel = "{s.accel}"'
            + (" (TCG when KVM is not usable)" if s.accel == "auto" else ""),
            'set machine.accel = "kvm", or mode = "auto" to use async PF only where it exists'))
    elif s.written and s.mode == "auto" and s.accel == "tcg":
        out.append(machine.note(
            "async-pf-tcg", key, 'mode = "auto" under accel = "tcg": TCG has no async page '
            "faults, the machine runs without them", 'use machine.accel = "kvm" to get them'))
    elif s.written and s.mode == "auto" and s.cpu not in PASSTHROUGH_CPUS:
        out.append(machine.note(
            "async-pf-int-off", key,
            f'mode = "auto" with machine.cpu = "{s.cpu}": QEMU enables kvm-asyncpf but not '
            "kvm-asyncpf-int for named CPU models, and Linux >= 5.8 guests use async PF only "
            "with interrupt delivery, so the guest will run without it",
            'set mode = "on" (adds kvm-asyncpf-int=on), or use cpu = "host"'))
    if s.mode == "off" and not s.has_kernel and not s.append_disables:
        out.append(machine.note(
            "no-kvmapf-needs-kernel", key,
            'mode = "off" adds no-kvmapf to the guest command line only with boot.kernel; '
            "kvm-asyncpf=off,kvm-asyncpf-int=off still hide the feature from the guest",
            "nothing to do unless the guest's own boot loader passes a command line"))
    if s.experimental:
        out.append(machine.note(
            "experimental-ignored", "async-pf.experimental",
            "experimental = true only matters on aarch64; x86 async PF is merged upstream",
            "remove async-pf.experimental"))
    return out + _append(machine, s)


def _aarch64(machine: Machine, s: ApfSettings, backend: str) -> list[Diagnostic]:
    key = "async-pf.mode"
    if s.mode == "off":
        return []
    if not s.experimental:
        if s.mode == "on":
            return [machine.error(
                "arm64-apf-needs-experimental", key,
                "async PF: unsupported on aarch64 upstream (no APF function in KVM's SMCCC vendor "
                "hypervisor service); only the unmerged RFC protocol can be simulated",
                "set [async-pf] experimental = true to simulate it, or mode = \"off\"")]
        return [machine.note(
            "arm64-apf-unsupported", key, 'async PF: unsupported on aarch64 upstream; mode = "auto" '
            "runs without it", "set experimental = true to simulate the unmerged RFC protocol")
        ] if s.written else []
    if backend == "qemu":
        if s.mode == "on":
            return [machine.error("arm64-apf-not-upstream", key, ARM64_NOT_UPSTREAM, ARM64_HINT)]
        return [machine.note("arm64-apf-not-upstream", key,
                             'mode = "auto" runs without async PF on real QEMU: ' + ARM64_NOT_UPSTREAM,
                             ARM64_HINT)]
    return [machine.note(
        "arm64-apf-simulator-only", "async-pf.experimental",
        "simulating the unmerged arm64 async PF RFC (RFCv2, 2020); real QEMU and KVM have no "
        "such feature", "vmctl validate --backend qemu refuses this machine")] + _append(machine, s)
