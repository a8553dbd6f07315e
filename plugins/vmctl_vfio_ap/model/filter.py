"""The guest's view of an mdev: the shadow APCB, filtered as the kernel filters it.

The guest's CRYCB is a cross product (adapters × usage domains), so single APQNs cannot be
hidden; the kernel filters whole adapters (semantics.md §4.5, ``vfio_ap_mdev_filter_matrix``
and ``vfio_ap_mdev_filter_cdoms`` in Linux 6.0–6.3):

1. keep only adapters and domains that are in the host AP configuration;
2. drop an adapter if **any** of its queues (adapter × each remaining domain) is not bound to
   vfio_ap and linked to this mdev, or its last reset failed;
3. keep only control domains in the host configuration.

The result is what ``guest_matrix`` prints and what a running guest is given.  Unassignment
and queue removal do not re-run the filter: they clear just the affected bits (see
:mod:`vmctl_vfio_ap.model.hotplug`), which is why the shadow is stored, not recomputed.
:func:`filtered_out` explains every assigned APQN the guest does not get.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import masks as M
from .apbus import VFIO_AP_DRIVER, ApBus, Queue
from .mdev import Mdev


def linked_queue(bus: ApBus, uuid: str, apid: int, apqi: int) -> Queue | None:
    """The queue ``apid.apqi`` if it is bound to vfio_ap and linked to mdev ``uuid``."""
    q = bus.queues.get((apid << 8) | apqi)
    if q is None or q.driver != VFIO_AP_DRIVER or q.mdev != uuid:
        return None
    return q


def filter_matrix(mdev: Mdev, bus: ApBus) -> tuple[int, int]:
    """The shadow ``(apm, aqm)`` the kernel computes for ``mdev`` now."""
    apm = mdev.apm & bus.config.apm
    aqm = mdev.aqm & bus.config.aqm
    domains = M.ids(aqm)
    for apid in M.ids(apm):
        for apqi in domains:
            q = linked_queue(bus, mdev.uuid, apid, apqi)
            if q is None or q.reset_rc:
                apm &= ~M.bit(apid)
                break
    return apm, aqm


def refilter(mdev: Mdev, bus: ApBus) -> bool:
    """Recompute the shadow adapters and domains; whether they changed."""
    apm, aqm = filter_matrix(mdev, bus)
    changed = (apm, aqm) != (mdev.shadow_apm, mdev.shadow_aqm)
    mdev.shadow_apm, mdev.shadow_aqm = apm, aqm
    return changed


def refilter_cdoms(mdev: Mdev, bus: ApBus) -> bool:
    """Recompute the shadow control domains; whether they changed."""
    adm = mdev.adm & bus.config.adm
    changed = adm != mdev.shadow_adm
    mdev.shadow_adm = adm
    return changed


def apqns(apm: int, aqm: int) -> list[str]:
    """The APQNs (``AA.DDDD``) of a cross product, adapter-major, ascending."""
    domains = M.ids(aqm)
    return [M.format_apqn(a, q) for a in M.ids(apm) for q in domains]


@dataclass(frozen=True)
class Filtered:
    """An APQN assigned to the mdev that the guest does not get, and why."""

    apqn: str
    reason: str

    def to_json(self) -> dict[str, str]:
        return {"apqn": self.apqn, "reason": self.reason}


def _queue_problem(bus: ApBus, uuid: str, apid: int, apqi: int) -> str | None:
    q = bus.queues.get((apid << 8) | apqi)
    name = M.format_apqn(apid, apqi)
    if q is None:
        return f"queue {name} does not exist on the host"
    if q.driver != VFIO_AP_DRIVER:
        return f"queue {name} is bound to {q.driver or 'no driver'}, not vfio_ap"
    if q.mdev != uuid:
        return f"queue {name} is not linked to this mdev"
    if q.reset_rc:
        return f"the last reset of queue {name} failed (response code 0x{q.reset_rc:02x})"
    return None


def filtered_out(mdev: Mdev, bus: ApBus) -> list[Filtered]:
    """Every APQN of the mdev's matrix that is not in its guest matrix, with the reason."""
    out: list[Filtered] = []
    domains = M.ids(mdev.aqm)
    for apid in M.ids(mdev.apm):
        in_cfg_ap = M.test(bus.config.apm, apid)
        problems = {apqi: _queue_problem(bus, mdev.uuid, apid, apqi) for apqi in domains}
        culprit = next((p for p in problems.values() if p), None)
        for apqi in domains:
            if M.test(mdev.shadow_apm, apid) and M.test(mdev.shadow_aqm, apqi):
                continue
            name = M.format_apqn(apid, apqi)
            if not in_cfg_ap:
                reason = f"adapter {apid:02x} is not in the host AP configuration"
            elif not M.test(bus.config.aqm, apqi):
                reason = f"domain {apqi:04x} is not in the host AP configuration"
            elif problems[apqi]:
                reason = problems[apqi] or ""
            elif culprit and not M.test(mdev.shadow_apm, apid):
                reason = f"adapter {apid:02x} filtered out: {culprit}"
            else:
                reason = "removed from the guest by a hot unplug; filtered again on the next change"
            out.append(Filtered(name, reason))
    return out
