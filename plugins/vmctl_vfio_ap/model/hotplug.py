"""Guests and hot plug: open/close of an mdev, and every change while a guest runs (§4.3, §4.6).

* **open** (QEMU realises ``-device vfio-ap``): needs a KVM (else ``EINVAL``); only one mdev
  per guest (a second → ``EPERM``); installs the PQAP hook, then loads the shadow APCB into
  the guest's CRYCB.  Faithful to ``vfio_ap_mdev_set_kvm``: the hook is installed *before*
  the ``EPERM`` check, so a refused second mdev leaves the guest's PQAP hook pointing at it.
* **close**: removes the hook, clears the guest's masks, resets every linked queue.
* **hot plug/unplug**: after an assignment, a queue probe/remove, or a host configuration
  change, the guest's CRYCB is updated if its view changed; each update is a
  :class:`~vmctl_vfio_ap.model.events.HotplugEvent` counted by trigger, and queues that left the
  guest are reset.
* **PQAP(AQIC)**: the guest enabling/disabling interrupts for a queue, through the hook.

Lock usage follows the merged ``vfio_ap_ops.c``; see :mod:`vmctl_vfio_ap.model.locks`.
"""

from __future__ import annotations

import errno
from collections.abc import Iterable
from typing import TYPE_CHECKING

from vmctl.api import ModelError

from . import masks as M
from .apbus import ApBus, ApConfig, Queue
from .events import HotplugEvent, Journal, ResetEvent, Trigger
from .filter import apqns, linked_queue, refilter, refilter_cdoms
from .locks import Acquire, LOCK_GUESTS, LOCK_MDEVS, LockClass, Op, Release, UNLOCK_GUESTS, UNLOCK_MDEVS
from .mdev import Mdev

AP_RESPONSE_NORMAL = 0x00
AP_RESPONSE_Q_NOT_AVAIL = 0x01


class GuestOps:
    """Guest-facing operations of :class:`~vmctl_vfio_ap.model.matrix.MatrixDev` (a mixin)."""

    bus: ApBus
    journal: Journal
    mdevs: dict[str, Mdev]
    hooks: dict[str, str]

    if TYPE_CHECKING:  # pragma: no cover
        def mdev(self, uuid: str) -> Mdev: ...
        def update_locks_op(self, m: Mdev | None) -> Op[str | None]: ...
        def release_update_locks_op(self, kvm: str | None) -> Op[None]: ...

    # -- effects ----------------------------------------------------------------------------
    def update_guest(self, m: Mdev, trigger: Trigger) -> None:
        """Load the shadow APCB into the running guest, recording what it gained and lost."""
        if m.guest is None:
            return
        new = (m.shadow_apm, m.shadow_aqm, m.shadow_adm)
        old = m.crycb
        if new == old:
            return
        m.crycb = new
        before, after = set(apqns(old[0], old[1])), set(apqns(new[0], new[1]))
        plugged, unplugged = sorted(after - before), sorted(before - after)
        cd_plug, cd_unplug = M.ids(new[2] & ~old[2]), M.ids(old[2] & ~new[2])
        if not (plugged or unplugged or cd_plug or cd_unplug):
            return
        c = self.journal.counters
        if plugged or cd_plug:
            c.hotplug[trigger.value] += 1
        if unplugged or cd_unplug:
            c.hotunplug[trigger.value] += 1
        self.journal.hotplugs.append(HotplugEvent(
            self.journal.next_seq(), m.uuid, m.guest, trigger, tuple(plugged), tuple(unplugged),
            tuple(cd_plug), tuple(cd_unplug)))

    def reset_queues(self, queues: Iterable[Queue], reason: str) -> None:
        """Reset (zeroize) queues; an injected failure keeps its response code in ``reset_rc``."""
        c = self.journal.counters
        for q in sorted(queues, key=lambda q: q.apqn):
            rc, q.next_reset_rc = q.next_reset_rc, 0
            q.reset_rc = rc
            q.irq_enabled = False
            c.resets += 1
            if rc:
                c.reset_failures += 1
            self.journal.resets.append(ResetEvent(self.journal.next_seq(), q.name, reason, rc))

    # -- open / close ---------------------------------------------------------------------
    def open_op(self, uuid: str, guest: str | None) -> Op[None]:
        """QEMU opens the mdev for ``guest`` (the KVM it is associated with)."""
        m = self.mdev(uuid)
        if not guest:
            raise ModelError(errno.EINVAL, f"mdev {m.uuid} opened without a KVM association")
        if m.guest is not None:
            if m.guest != guest:
                raise ModelError(errno.EBUSY, f"mdev {m.uuid} is already in use by guest {m.guest}")
            m.open_count += 1
            return
        yield Acquire(LockClass.PQAP_HOOK, guest)
        self.hooks[guest] = m.uuid
        yield Release(LockClass.PQAP_HOOK, guest)
        yield LOCK_GUESTS
        yield Acquire(LockClass.KVM, guest)
        yield LOCK_MDEVS
        other = next((o for o in self.mdevs.values() if o is not m and o.guest == guest), None)
        if other is None:
            m.guest, m.open_count = guest, 1
            m.crycb = (m.shadow_apm, m.shadow_aqm, m.shadow_adm)
        yield UNLOCK_MDEVS
        yield Release(LockClass.KVM, guest)
        yield UNLOCK_GUESTS
        if other is not None:
            raise ModelError(errno.EPERM, f"guest {guest} already uses mdev {other.uuid}: "
                             "one vfio-ap device per guest")

    def close_op(self, uuid: str) -> Op[None]:
        """The guest releases the mdev (QEMU exits or unplugs ``vfio-ap``)."""
        m = self.mdev(uuid)
        if m.guest is None:
            raise ModelError(errno.EINVAL, f"mdev {m.uuid} is not open")
        if m.open_count > 1:
            m.open_count -= 1
            return
        guest = m.guest
        yield Acquire(LockClass.PQAP_HOOK, guest)
        self.hooks.pop(guest, None)
        yield Release(LockClass.PQAP_HOOK, guest)
        yield LOCK_GUESTS
        yield Acquire(LockClass.KVM, guest)
        yield LOCK_MDEVS
        m.crycb = (0, 0, 0)
        self.reset_queues([q for q in self.bus.queues.values() if q.mdev == m.uuid], "close")
        m.guest, m.open_count = None, 0
        yield UNLOCK_MDEVS
        yield Release(LockClass.KVM, guest)
        yield UNLOCK_GUESTS

    def reset_device_op(self, uuid: str) -> Op[None]:
        """``VFIO_DEVICE_RESET`` (guest reset): every linked queue is reset."""
        m = self.mdev(uuid)
        yield LOCK_MDEVS
        self.reset_queues([q for q in self.bus.queues.values() if q.mdev == m.uuid], "device-reset")
        yield UNLOCK_MDEVS

    # -- queue probe / remove (driver callbacks) -----------------------------------------
    def probe_queue_op(self, q: Queue) -> Op[None]:
        """A queue was bound to vfio_ap: link it to the mdev that has it and hot-plug."""
        yield LOCK_GUESTS
        owner = next((m for m in reversed(list(self.mdevs.values()))
                      if M.test(m.apm, q.apid) and M.test(m.aqm, q.apqi)), None)
        kvm = owner.guest if owner is not None else None
        if kvm is not None:
            yield Acquire(LockClass.KVM, kvm)
        yield LOCK_MDEVS
        q.reset_rc = 0
        if owner is not None:
            q.mdev = owner.uuid
            pending = owner.apm_add or owner.aqm_add
            if not pending and refilter(owner, self.bus):
                self.update_guest(owner, Trigger.QUEUE_PROBE)
        yield from self.release_update_locks_op(kvm)

    def remove_queue_op(self, q: Queue) -> Op[None]:
        """A queue leaves vfio_ap: unplug its adapter from the guest, then reset it."""
        owner = self.mdevs.get(q.mdev) if q.mdev else None
        kvm = yield from self.update_locks_op(owner)
        if owner is not None and linked_queue(self.bus, owner.uuid, q.apid, q.apqi) is q:
            if M.test(owner.shadow_apm, q.apid) and M.test(owner.shadow_aqm, q.apqi):
                owner.shadow_apm &= ~M.bit(q.apid)
                self.update_guest(owner, Trigger.QUEUE_REMOVE)
        self.reset_queues([q], "unbind")
        q.mdev = None
        yield from self.release_update_locks_op(kvm)

    # -- host configuration changes -------------------------------------------------------
    def on_cfg_changed_op(self, cur: ApConfig, prev: ApConfig) -> Op[None]:
        """Adapters/domains left the host config: unplug them; remember additions for later."""
        rem = ApConfig(prev.apm & ~cur.apm, prev.aqm & ~cur.aqm, prev.adm & ~cur.adm)
        add = ApConfig(cur.apm & ~prev.apm, cur.aqm & ~prev.aqm, cur.adm & ~prev.adm)
        yield LOCK_GUESTS
        for m in reversed(list(self.mdevs.values())):
            kvm = m.guest
            if kvm is not None:
                yield Acquire(LockClass.KVM, kvm)
            yield LOCK_MDEVS
            aprem, aqrem, cdrem = rem.apm & m.apm, rem.aqm & m.aqm, rem.adm & m.adm
            if aprem or aqrem or cdrem:
                m.shadow_apm &= ~aprem
                m.shadow_aqm &= ~aqrem
                m.shadow_adm &= ~cdrem
                self.update_guest(m, Trigger.CONFIG_CHANGE)
            m.apm_add, m.aqm_add, m.adm_add = m.apm & add.apm, m.aqm & add.aqm, m.adm & add.adm
            yield UNLOCK_MDEVS
            if kvm is not None:
                yield Release(LockClass.KVM, kvm)
        yield UNLOCK_GUESTS

    def on_scan_complete_op(self, cur: ApConfig, prev: ApConfig) -> Op[None]:
        """The scan created the new devices: refilter and hot-plug what was added."""
        yield LOCK_GUESTS
        for m in reversed(list(self.mdevs.values())):
            if not (m.apm_add or m.aqm_add or m.adm_add):
                continue
            kvm = m.guest
            if kvm is not None:
                yield Acquire(LockClass.KVM, kvm)
            yield LOCK_MDEVS
            changed = refilter(m, self.bus) if (m.apm_add or m.aqm_add) else False
            if m.adm_add:
                changed = refilter_cdoms(m, self.bus) or changed
            if changed:
                self.update_guest(m, Trigger.SCAN_COMPLETE)
            m.apm_add = m.aqm_add = m.adm_add = 0
            yield UNLOCK_MDEVS
            if kvm is not None:
                yield Release(LockClass.KVM, kvm)
        yield UNLOCK_GUESTS

    # -- PQAP(AQIC) intercept ---------------------------------------------------------------
    def pqap_aqic_op(self, guest: str, apid: int, apqi: int, enable: bool) -> Op[int]:
        """The guest enables/disables interrupts for a queue; returns the AP response code."""
        yield Acquire(LockClass.PQAP_HOOK, guest, shared=True)
        yield LOCK_MDEVS
        rc = AP_RESPONSE_Q_NOT_AVAIL
        m = self.mdevs.get(self.hooks.get(guest, ""))
        if m is None or m.guest is None:
            self.journal.kmsg(f"vfio_ap: handle_pqap: no mdev in use by guest {guest}: "
                              f"apqn=0x{apid << 8 | apqi:04x}")
        else:
            q = linked_queue(self.bus, m.uuid, apid, apqi)
            if q is None:
                self.journal.kmsg(f"vfio_ap: handle_pqap: Queue {apid:02x}.{apqi:04x} "
                                  "not bound to the vfio_ap driver")
            else:
                q.irq_enabled = enable
                self.journal.counters.aqic["enable" if enable else "disable"] += 1
                rc = AP_RESPONSE_NORMAL
        yield UNLOCK_MDEVS
        yield Release(LockClass.PQAP_HOOK, guest)
        return rc
