"""Pre-launch checks of a pseries machine's interrupt settings (semantics.md §1.6, §1.8).

Every check names the TOML key the user wrote, quotes QEMU's own message where QEMU would
stop, and gives the fix. Codes (stable, documented):

============================  ========  ====================================================
code                          severity  when
============================  ========  ====================================================
``irq-needs-pseries``         error     ``[irq]``/``[pseries]`` on a machine type other than pseries
``vof-needs-pseries``         error     ``firmware = "vof"`` on a non-pseries ppc64 machine
``compat-above-cpu``          error     ``max-cpu-compat`` newer than ``machine.cpu``
``xive-needs-power9``         error     ``ic-mode = "xive"`` with a pre-POWER9 CPU or compat level
``dual-falls-back-to-xics``   note      ``ic-mode = "dual"`` with a pre-POWER9 CPU or compat level
``kernel-irqchip-split``      error     ``kernel-irqchip = "split"`` (pseries refuses it)
``kernel-irqchip-needs-kvm``  error     ``kernel-irqchip = "on"`` with ``accel = "tcg"`` (warning with ``auto``)
``kernel-irqchip-host``       error     ``on`` and this host cannot give the in-kernel controller
                                        (``--host``); a note without ``--host``
``xive-off-ignored``          note      ``xive=off`` in ``boot.append`` with ``ic-mode = "xive"``
``vcpus-above-kvm-limit``     error     ``max-cpus`` above the host's ``KVM_MAX_VCPUS`` (``--host``)
============================  ========  ====================================================
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .model.cas import (
    MSG_SPLIT, MSG_XIVE_NEEDS_P9, append_disables_xive, cpu_generation, effective_generation, predict,
)
from .host import HostProbe, cached_probe
from .settings import COMPAT_PVR, IrqSettings, read

if TYPE_CHECKING:  # pragma: no cover
    from vmctl.api import Machine
    from vmctl.api import Diagnostic, ValidationContext


def host_probe(ctx: ValidationContext | None) -> HostProbe | None:
    """The probe when validation looks at the host (``--host``), else None."""
    if ctx is None or ctx.sysfs is None:
        return None
    return cached_probe(str(ctx.sysfs.root))


def validate_machine(machine: Machine, ctx: ValidationContext | None = None) -> list[Diagnostic]:
    """Every finding about ``machine``'s interrupt controller settings."""
    s = read(machine)
    if s.arch != "ppc64":
        return []
    if not s.pseries:
        return _not_pseries(machine, s)
    out: list[Diagnostic] = []
    out += _cpu_level(machine, s)
    out += _kernel_irqchip(machine, s, host_probe(ctx))
    if s.ic_mode == "xive" and append_disables_xive(s.append):
        out.append(machine.note(
            "xive-off-ignored", "boot.append",
            'the guest ignores "xive=off" when ic-mode = "xive" offers XIVE only '
            "(Linux prints 'Ignoring cmdline option xive=off') and runs in XIVE mode",
            'to give the guest XICS, set [irq] ic-mode = "dual" (or "xics")'))
    return out


def _not_pseries(machine: Machine, s: IrqSettings) -> list[Diagnostic]:
    out = []
    for section in ("irq", "pseries"):
        if machine.has_section(section):
            out.append(machine.error(
                "irq-needs-pseries", section,
                f'[{section}] applies to pseries machines; machine.type is "{s.type}"',
                f'remove [{section}] or set machine.type = "pseries"'))
    if s.firmware == "vof":
        out.append(machine.error("vof-needs-pseries", s.firmware_key,
                                 f'firmware = "vof" is a pseries firmware; machine.type is "{s.type}"',
                                 f'remove {s.firmware_key} or set machine.type = "pseries"'))
    return out


def _cpu_level(machine: Machine, s: IrqSettings) -> list[Diagnostic]:
    out = []
    cpu_gen, compat_gen = cpu_generation(s.cpu), cpu_generation(s.max_cpu_compat or "")
    if s.max_cpu_compat and cpu_gen is not None and compat_gen is not None and compat_gen > cpu_gen:
        out.append(machine.error(
            "compat-above-cpu", "pseries.max-cpu-compat",
            f'max-cpu-compat = "{s.max_cpu_compat}" is newer than machine.cpu = "{s.cpu}" '
            f'(QEMU: "Compatibility PVR {COMPAT_PVR.get(s.max_cpu_compat, 0):#010x} not valid for CPU")',
            f"lower max-cpu-compat to power{cpu_gen} or remove it"))
        return out
    gen = effective_generation(s.cpu, s.max_cpu_compat)
    if gen is None or gen >= 9:
        return out
    cause = (f'pseries.max-cpu-compat = "{s.max_cpu_compat}"' if compat_gen is not None and compat_gen == gen
             and (cpu_gen is None or cpu_gen > gen) else f'machine.cpu = "{s.cpu}"')
    if s.ic_mode == "xive":
        out.append(machine.error(
            "xive-needs-power9", "irq.ic-mode",
            f'ic-mode = "xive" needs ISA 3.0 (POWER9 or later) but {cause} is POWER{gen} '
            f'(QEMU: "{MSG_XIVE_NEEDS_P9}")',
            'use ic-mode = "dual" (the guest then runs XICS) or "xics", or a POWER9 CPU without '
            "a POWER8 compat level"))
    elif s.ic_mode == "dual":
        out.append(machine.note(
            "dual-falls-back-to-xics", "irq.ic-mode",
            f'ic-mode = "dual" runs as "xics": {cause} is POWER{gen}, which has no XIVE',
            'set ic-mode = "xics" to say so, or use a POWER9 CPU for XIVE'))
    return out


def _kernel_irqchip(machine: Machine, s: IrqSettings, host: HostProbe | None) -> list[Diagnostic]:
    key = "irq.kernel-irqchip"
    if s.kernel_irqchip == "split":
        return [machine.error("kernel-irqchip-split", key,
                              f'kernel-irqchip = "split" is not supported on pseries (QEMU: "{MSG_SPLIT}")',
                              'use "auto" (in-kernel when KVM can), "on" or "off"')]
    out = []
    if s.accel == "kvm" and host is not None and host.kvm_available:
        limit = s.max_cpus or s.cpus
        if limit > host.max_vcpus:
            field = "machine.max-cpus" if s.max_cpus else "machine.cpus"
            out.append(machine.error("vcpus-above-kvm-limit", field,
                                     f"{limit} vCPUs exceed this host's KVM_MAX_VCPUS ({host.max_vcpus})",
                                     f"lower {field.split('.')[1]} to {host.max_vcpus} or less"))
    if s.kernel_irqchip != "on":
        return out
    if s.accel == "tcg":
        return out + [machine.error("kernel-irqchip-needs-kvm", key,
                                    'kernel-irqchip = "on" needs machine.accel = "kvm"; under TCG the '
                                    "controller is always emulated (QEMU 7.2 silently ignores the setting)",
                                    'set accel = "kvm", or kernel-irqchip = "auto"')]
    if s.accel == "auto":
        out.append(machine.warning("kernel-irqchip-needs-kvm", key,
                                   'kernel-irqchip = "on" needs KVM, but accel = "auto" falls back to TCG '
                                   "where it is ignored", 'set accel = "kvm" to fail early instead'))
    if host is None:
        if s.accel == "kvm" and s.ic_mode != "xics":
            out.append(machine.note("kernel-irqchip-host", key,
                                    f'kernel-irqchip = "on" with ic-mode = "{s.ic_mode}" needs KVM_CAP_PPC_IRQ_XIVE '
                                    "on the host that runs the machine (POWER9+ bare metal, XIVE native, "
                                    "Linux >= 5.2)", "`vmctl validate --host` checks this host"))
        return out
    if s.accel != "kvm":
        return out
    p = predict(s.ic_mode, s.cpu, s.max_cpu_compat, s.append, "kvm", "on", host.xive_cap,
                kvm_available=host.kvm_available, host_can_release=host.can_release)
    if not host.kvm_available:
        out.append(machine.error("kernel-irqchip-host", key,
                                 f'kernel-irqchip = "on" needs KVM on this host: {host.detail}',
                                 'run on a POWER host with kvm_hv, or set accel = "tcg" and kernel-irqchip = "auto"'))
    elif p.error:
        out.append(machine.error("kernel-irqchip-host", key,
                                 f'kernel-irqchip = "on" with ic-mode = "{s.ic_mode}" fails on this host: '
                                 f'QEMU: "{p.error}" ({host.detail})',
                                 'use kernel-irqchip = "auto" (QEMU then emulates what KVM cannot) or "off"'))
    return out
