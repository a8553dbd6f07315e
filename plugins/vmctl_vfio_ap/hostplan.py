"""Preparing the host for a machine's vfio-ap device: the journaled steps and their checks.

The plan (``vmctl host apply``), from the state read at plan time, in a safe order:

1. **masks** — APQNs reserved for the host (apmask bit AND aqmask bit set) are handed to
   vfio_ap by clearing bits, in whichever mask takes fewer queues away from the host; the
   write is relative (``-5,-6``) and so is its undo (``+5-6``).  The plan never *sets* mask
   bits, so it never asks for a queue a live mdev holds; the model run below would refuse
   that with EBUSY as the kernel does.
2. **mdev** — ``create`` with the machine's UUID, undone by ``remove``.
3. **assignments** — on an existing mdev first unassign what the machine no longer lists,
   then assign adapters, domains, control domains; each undone by its opposite write.

Before returning, the whole plan is run on the model of the host (:mod:`vmctl_vfio_ap.model.system`)
so every kernel refusal — EADDRINUSE, EADDRNOTAVAIL, ENODEV, EBUSY — is reported before
anything is written, naming the step, the APQN and the other owner.  :mod:`.predict` runs
the same steps for ``vmctl plan --host``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from vmctl.api import HostStep, HostWrite, ModelError, VmctlError

from .host import ApHost, few, read_host, system_from_host
from .model import masks as M
from .model.system import AP_BUS, MATRIX, TYPE_DIR, ApSystem
from .settings import ApDevice, ap_devices

if TYPE_CHECKING:  # pragma: no cover
    from vmctl.api import Machine
    from vmctl.api import Sysfs

PLUGIN = "vfio-ap"
_FMT = {"adapter": "0x{:02x}", "domain": "0x{:04x}", "control_domain": "0x{:04x}"}


def check_usable(host: ApHost) -> None:
    """Raise a VmctlError when the host has no AP bus or no vfio_ap module."""
    if not host.present:
        raise VmctlError("this host has no AP bus (/sys/bus/ap): vfio-ap needs an IBM Z host "
                         "with crypto adapters", "run on the s390 host, or pass --sysfs-root DIR")
    if not host.vfio_ap_loaded:
        raise VmctlError("the vfio_ap module is not loaded (/sys/devices/vfio_ap/matrix is missing)",
                         "modprobe vfio_ap, then plan again")


def _mask_step(host: ApHost, dev: ApDevice) -> HostStep | None:
    owned = [(a, d) for a, d in dev.apqns if host.host_owned(a, d)]
    if not owned:
        return None
    aps, aqs = sorted({a for a, _ in owned}), sorted({d for _, d in owned})
    lost_ap = [q.name for q in host.queues if q.apid in aps and host.host_owned(q.apid, q.apqi)]
    lost_aq = [q.name for q in host.queues if q.apqi in aqs and host.host_owned(q.apid, q.apqi)]
    if len(lost_aq) < len(lost_ap):
        which, bits, lost, what = "aqmask", aqs, lost_aq, "domains"
    else:
        which, bits, lost, what = "apmask", aps, lost_ap, "adapters"
    old = host.apmask if which == "apmask" else host.aqmask
    new = old & ~M.from_ids(bits)
    names = ", ".join(f"{b:02x}" if which == "apmask" else f"{b:04x}" for b in bits)
    extra = sorted(set(lost) - {M.format_apqn(a, d) for a, d in owned})
    note = f"; also hands the host's {few(extra)} to vfio_ap" if extra else ""
    return HostStep(f"{which}: give {what} {names} to vfio_ap{note}",
                    HostWrite(f"{AP_BUS}/{which}", M.relative_edits(old, new)),
                    (HostWrite(f"{AP_BUS}/{which}", M.relative_edits(new, old)),),
                    key=dev.key, plugin=PLUGIN)


def _assign(dev: ApDevice, verb: str, what: str, n: int) -> HostStep:
    other = "unassign" if verb == "assign" else "assign"
    base = f"{MATRIX}/{dev.uuid}"
    value = _FMT[what].format(n)
    return HostStep(f"mdev {dev.uuid}: {verb} {what.replace('_', ' ')} {value}",
                    HostWrite(f"{base}/{verb}_{what}", value),
                    (HostWrite(f"{base}/{other}_{what}", value),), key=dev.key, plugin=PLUGIN)


def steps_for(host: ApHost, dev: ApDevice) -> list[HostStep]:
    """The steps still needed for ``dev`` on ``host`` (not yet checked on the model)."""
    steps: list[HostStep] = []
    mask = _mask_step(host, dev)
    if mask is not None:
        steps.append(mask)
    have = next((m for m in host.mdevs if m.uuid == dev.uuid), None)
    if have is None:
        steps.append(HostStep(f"create mdev {dev.uuid} (vfio_ap-passthrough)",
                              HostWrite(f"{TYPE_DIR}/create", dev.uuid),
                              (HostWrite(f"{MATRIX}/{dev.uuid}/remove", "1"),), key=dev.key, plugin=PLUGIN))
    cur = {"adapter": have.apm, "domain": have.aqm, "control_domain": have.adm} if have else \
        {"adapter": 0, "domain": 0, "control_domain": 0}
    want = {"adapter": dev.apm, "domain": dev.aqm, "control_domain": dev.adm}
    for what in ("control_domain", "domain", "adapter"):
        steps += [_assign(dev, "unassign", what, n) for n in M.ids(cur[what] & ~want[what])]
    for what in ("adapter", "domain", "control_domain"):
        steps += [_assign(dev, "assign", what, n) for n in M.ids(want[what] & ~cur[what])]
    return steps


def rehearse(host: ApHost, steps: list[HostStep]) -> ApSystem:
    """Run ``steps`` on a model of ``host``; a kernel refusal becomes a VmctlError."""
    ap = system_from_host(host)
    for i, step in enumerate(steps, 1):
        try:
            ap.write(step.write.path, step.write.value)
        except ModelError as err:
            raise VmctlError(f"step {i} ({step.description}) would fail: writing "
                             f"{step.write.value!r} to {step.write.path} gives {err}",
                             "nothing was written; " + _hint(err)) from None
    return ap


def _hint(err: ModelError) -> str:
    return {"EADDRINUSE": "unassign the APQN from the other mdev (`vmctl ap show` lists them)",
            "EADDRNOTAVAIL": "the APQN is still reserved for the host by apmask/aqmask",
            "ENODEV": "the id is above this machine's ap_max_adapter_id/ap_max_domain_id",
            "EBUSY": "a mask change may not take a queue from a live mdev: unassign it first"}.get(
        err.errno_name, "see `vmctl ap show` for the host's AP configuration")


def host_steps(machine: Machine, sysfs: Sysfs) -> list[HostStep]:
    """``vmctl_host_steps``: the checked plan for the machine's vfio-ap device."""
    devs = ap_devices(machine)
    if not devs:
        return []
    host = read_host(sysfs)
    check_usable(host)
    steps = steps_for(host, devs[0])
    rehearse(host, steps)
    return steps
