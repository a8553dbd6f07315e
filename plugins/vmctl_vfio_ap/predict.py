"""What ``vmctl plan`` shows under ``predictions["vfio-ap"]``.

Without ``--host``: the mdev (UUID and ``sysfsdev``), the APQNs and control domains the
machine asks for, and the CPU features vmctl adds.  With ``--host``: the host steps
(:mod:`.hostplan`) run on a model of the host, and the guest matrix the kernel would
compute from it, with every filtered APQN and why.  Nothing is written.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from vmctl.api import VmctlError

from .host import host_of
from .hostplan import check_usable, rehearse, steps_for
from .model import masks as M
from .model.filter import filtered_out
from .settings import CPU_FEATURES, ap_devices

if TYPE_CHECKING:  # pragma: no cover
    from vmctl.api import Machine
    from vmctl.api import ValidationContext


def predict(machine: Machine, ctx: ValidationContext) -> dict[str, Any] | None:
    """``vmctl_predict``: what the guest will see; with ``--host``, after the planned steps."""
    devs = ap_devices(machine)
    if not devs:
        return None
    dev = devs[0]
    apqns = [M.format_apqn(a, d) for a, d in dev.apqns]
    out: dict[str, Any] = {"uuid": dev.uuid, "sysfsdev": dev.sysfsdev, "apqns": apqns,
                           "control_domains": [f"{c:04x}" for c in sorted(set(dev.control_domains))],
                           "cpu_features": list(CPU_FEATURES), "guest_apqns": apqns, "filtered": []}
    if ctx.sysfs is None:
        return out
    host = host_of(ctx)
    try:
        if host is None:
            raise VmctlError("no host")
        check_usable(host)
        steps = steps_for(host, dev)
        ap = rehearse(host, steps)
    except VmctlError as err:
        out["host"] = {"ok": False, "error": err.message, "hint": err.hint}
        return out
    m = ap.mdev(dev.uuid)
    out["guest_apqns"] = [M.format_apqn(a, d) for a in M.ids(m.shadow_apm) for d in M.ids(m.shadow_aqm)]
    out["filtered"] = [f.to_json() for f in filtered_out(m, ap.bus)]
    out["host"] = {"ok": True, "steps": len(steps)}
    return out
