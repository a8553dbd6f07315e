"""Guest workloads for the simulator (``[sim] workload``) and boot timings.

A workload says how busy the guest's vCPUs are once userspace is up, and whether the guest
gets that far.  vCPU load follows a seeded random walk around the workload's mean, so two
runs with the same ``[sim] seed`` and the same sequence of commands see the same loads.

========  ===============================================================================
name      guest behaviour
========  ===============================================================================
default   boots, then a moderate load (~30 %) that wanders
idle      boots, then stays nearly idle (~2 %)
busy      boots, then keeps every vCPU near 95 %
panic     panics at root mount at the end of the kernel phase, like a real kernel booted
          without a root file system (QEMU pauses it: ``-action panic=pause``)
========  ===============================================================================

Boot timings follow what the real pieces take under TCG: SLOF about a second before the
kernel, VOF (``firmware = "vof"``) about 0.1 s; the kernel reaches userspace (or root
mount) about 1.5 s later.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from vmctl.sim.lifecycle import BootTimes, Phase


@dataclass(frozen=True)
class Workload:
    """One guest behaviour: mean vCPU load, how much it wanders, and how boot ends."""

    name: str
    help: str
    load: float
    jitter: float
    panic_at_root: bool = False


WORKLOADS: dict[str, Workload] = {w.name: w for w in (
    Workload("default", "boots, then a moderate wandering load", 0.30, 0.08),
    Workload("idle", "boots, then stays nearly idle", 0.02, 0.01),
    Workload("busy", "boots, then keeps every vCPU near 95%", 0.95, 0.03),
    Workload("panic", "panics at root mount (no root file system)", 0.30, 0.08,
             panic_at_root=True),
)}

#: Names accepted by ``[sim] workload``.
WORKLOAD_NAMES: tuple[str, ...] = tuple(WORKLOADS)


def get_workload(name: str) -> Workload:
    """The workload called ``name``; ValueError naming the valid ones otherwise."""
    try:
        return WORKLOADS[name]
    except KeyError:
        raise ValueError(f"unknown workload {name!r}; choose one of "
                         f"{', '.join(WORKLOAD_NAMES)}") from None


def boot_times(arch: str, machine_type: str, firmware: str | None,
               workload: Workload, firmware_seconds: float | None = None) -> BootTimes:
    """Virtual boot timings for a machine (see the module docstring); ``firmware_seconds``
    is what a device said its firmware takes (:meth:`vmctl.types.SimDevice.firmware`)."""
    if firmware_seconds is not None:
        fw = firmware_seconds
    elif machine_type.startswith("pseries"):
        fw = 0.1 if firmware == "vof" else 1.0
    elif arch == "s390x":
        fw = 0.05
    elif arch == "x86_64":
        fw = 0.4
    else:
        fw = 0.2
    return BootTimes(firmware=fw, kernel=1.5, panic_at_root=workload.panic_at_root)


def next_load(workload: Workload, phase: Phase, cpu_index: int, online: bool,
              current: float, dt: float, rng: random.Random) -> float:
    """A vCPU's load after ``dt`` running seconds in ``phase``.

    Firmware runs on the boot CPU only; the kernel keeps every online vCPU busy while it
    boots; userspace follows the workload's seeded random walk.
    """
    if not online:
        return 0.0
    if phase is Phase.RESET:
        return 0.0
    if phase is Phase.FIRMWARE:
        return 1.0 if cpu_index == 0 else 0.0
    if phase is Phase.KERNEL:
        return 0.85
    step = rng.gauss(0.0, workload.jitter) * min(dt, 1.0) ** 0.5
    pull = (workload.load - current) * min(dt * 2.0, 1.0)
    return min(1.0, max(0.0, current + pull + step))
