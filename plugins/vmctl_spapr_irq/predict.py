"""``vmctl plan``'s ``predictions["spapr-irq"]``: the mode the guest negotiates at CAS.

Built from :func:`~vmctl_spapr_irq.model.cas.predict` with the machine's keys and what this host
can do. ``accel = "auto"`` resolves as on this host (TCG when it cannot run ppc64 KVM).
``accel = "kvm"`` on a host without KVM is predicted for the host it is meant for — POWER9
bare metal with ``KVM_CAP_PPC_IRQ_XIVE`` and Linux ≥ 5.2 — and says so in the reasons.
The guest is assumed to be a XIVE-capable Linux (≥ 4.16).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .host import cached_probe
from .model import cas
from .settings import read

if TYPE_CHECKING:  # pragma: no cover
    from vmctl.api import Machine
    from vmctl.api import ValidationContext


def predict(machine: Machine, ctx: ValidationContext | None = None) -> dict[str, Any] | None:
    """The prediction as JSON, or None for a machine without a pseries interrupt controller."""
    s = read(machine)
    if not s.pseries:
        return None
    host = cached_probe(str(ctx.sysfs.root) if ctx is not None and ctx.sysfs is not None else "/")
    notes = []
    kvm, xive_cap, release = host.kvm_available, host.xive_cap, host.can_release
    if s.accel == "kvm" and not host.kvm_available:
        kvm, xive_cap, release = True, True, True
        notes.append(f"this host cannot run it ({host.detail}); predicted for a POWER9 bare-metal KVM host "
                     "with KVM_CAP_PPC_IRQ_XIVE and Linux >= 5.2")
    elif s.accel != "tcg":
        notes.append(host.detail)
    p = cas.predict(s.ic_mode, s.cpu, s.max_cpu_compat, s.append, s.accel, s.kernel_irqchip, xive_cap,
                    kvm_available=kvm, host_can_release=release)
    out = p.to_json()
    out["reasons"] = notes + list(p.reasons)
    return out
