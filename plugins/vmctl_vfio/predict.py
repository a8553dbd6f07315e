"""What ``vmctl plan`` shows for a machine's passthrough devices."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .settings import guest_memory, vfio_devices

if TYPE_CHECKING:  # pragma: no cover
    from vmctl.api import Machine, ValidationContext


def predict(machine: Machine, ctx: ValidationContext | None = None) -> dict[str, Any] | None:
    """Per device: backend and whether memory is pinned; overall: the memory locked.

    ``ctx`` is not needed: the prediction depends on the machine alone."""
    devs = vfio_devices(machine)
    if not devs:
        return None
    ram = guest_memory(machine)
    pinning = [d for d in devs if not d.iopf]
    reasons = []
    if pinning:
        reasons.append(f"{pinning[0].key}: the {pinning[0].iommu} backend pins all "
                       f"{ram >> 20} MiB of guest memory when the device is attached "
                       "(counts against RLIMIT_MEMLOCK)")
    for d in devs:
        if d.iopf:
            reasons.append(f"{d.key}: simulator only — guest memory is mapped on I/O page "
                           f"faults, {d.prefault} pages per fault (unmerged RFC); expect a "
                           "ramp-up of faults before the working set is mapped")
    return {"devices": [{"key": d.key, "host": d.address or d.host, "iommu": d.iommu,
                         "memory": "on-demand (IOPF RFC)" if d.iopf else "pinned"}
                        for d in devs],
            "locked_bytes": ram if pinning else 0,
            "reasons": reasons}
