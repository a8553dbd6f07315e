"""The matrix mdev: lifecycle (semantics.md §4.3) and assignment rules (§4.4).

States of one mdev::

    (none) --create--> DEFINED --assign_*--> CONFIGURED --open (KVM)--> IN_USE
    IN_USE --assign/unassign, queue bind/unbind, host config change--> IN_USE (hot plug/unplug)
    IN_USE --close--> CONFIGURED (guest masks cleared, queues reset)
    DEFINED/CONFIGURED --remove--> (none)

Assignment (Linux ≥ 6.0, ``assign_*_store`` in ``vfio_ap_ops.c``): the number is parsed with
``kstrtoul`` (``EINVAL``/``ERANGE``); above the machine's maximum → ``ENODEV``; already
assigned → success; the new APQNs (cross product with what is assigned) include one reserved
for the host → ``EADDRNOTAVAIL``; one assigned to another mdev → ``EADDRINUSE``; the bit is
reverted on error.  APQNs whose queues are not bound to vfio_ap yet may be assigned
("over-provisioning"): they stay out of the guest until they appear.  Control domains have
no exclusivity.  On success the queues are linked and the guest view refiltered and
hot-plugged.  Guest-facing operations (open, close, queue events) are in
:mod:`vmctl_vfio_ap.model.hotplug`; the mdev record itself (:class:`~vmctl_vfio_ap.model.mdev.Mdev`)
is in :mod:`vmctl_vfio_ap.model.mdev`, below both.
"""

from __future__ import annotations

import errno
import re
from collections.abc import Iterator

from vmctl.api import ModelError

from . import masks as M
from .apbus import ApBus
from .events import Journal, Trigger
from .filter import apqns, linked_queue, refilter, refilter_cdoms
from .hotplug import GuestOps
from .locks import Acquire, LOCK_AP_PERMS, LOCK_GUESTS, LOCK_MDEVS, LockClass, LockingModel, Op, Release, UNLOCK_AP_PERMS, UNLOCK_GUESTS, UNLOCK_MDEVS
from .mdev import Mdev

MAX_INSTANCES = 256 * 256
"""``MAX_ZDEV_ENTRIES_EXT``: the initial ``available_instances``."""
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
ASSIGNABLE = ("adapter", "domain", "control_domain")


def parse_uuid(text: str) -> str:
    """The mdev name for a write to ``create`` (36 characters, optional newline) or EINVAL."""
    s = text[:-1] if text.endswith("\n") else text
    if not _UUID.fullmatch(s):
        raise ModelError(errno.EINVAL, f"invalid mdev UUID {text.strip()!r}")
    return s.lower()


class MatrixDev(GuestOps):
    """The vfio_ap driver's matrix device (``/sys/devices/vfio_ap/matrix``) and its mdevs."""

    def __init__(self, bus: ApBus, journal: Journal, locking: LockingModel = LockingModel.MERGED,
                 available_instances: int = MAX_INSTANCES) -> None:
        self.bus = bus
        self.journal = journal
        self.locking = locking
        self.available_instances = available_instances
        self.mdevs: dict[str, Mdev] = {}
        self.hooks: dict[str, str] = {}
        self.next_iommu_group = 0
        bus.vfio = self

    # -- lookups --------------------------------------------------------------------------
    def mdev(self, uuid: str) -> Mdev:
        m = self.mdevs.get(uuid.lower())
        if m is None:
            raise ModelError(errno.ENODEV, f"no mdev {uuid}")
        return m

    def in_list_order(self) -> Iterator[Mdev]:
        """mdevs as the driver's list walks them: newest first (``list_add``)."""
        return reversed(list(self.mdevs.values()))

    def limit(self, what: str) -> int:
        return self.bus.max_adapter_id if what == "adapter" else self.bus.max_domain_id

    def sharing_conflict(self, apm: int, aqm: int, skip: Mdev | None = None) -> tuple[Mdev, int, int] | None:
        """The first other mdev sharing an APQN with ``apm`` × ``aqm`` (``verify_no_sharing``)."""
        for m in self.in_list_order():
            if m is skip:
                continue
            ap, aq = apm & m.apm, aqm & m.aqm
            if ap and aq:
                return m, ap, aq
        return None

    def log_sharing(self, other: Mdev, ap: int, aq: int) -> str:
        names = apqns(ap, aq)
        for name in names:
            self.journal.kmsg(f"vfio_ap_mdev {other.uuid}: Userspace may not re-assign queue "
                              f"{name} already assigned to {other.uuid}")
        return names[0]

    # -- locks ----------------------------------------------------------------------------
    def update_locks_op(self, m: Mdev | None) -> Op[str | None]:
        """``get_update_locks_for_mdev``: guests_lock, the guest's kvm->lock, mdevs_lock."""
        yield LOCK_GUESTS
        kvm = m.guest if m is not None else None
        if kvm is not None:
            yield Acquire(LockClass.KVM, kvm)
        yield LOCK_MDEVS
        return kvm

    def release_update_locks_op(self, kvm: str | None) -> Op[None]:
        yield UNLOCK_MDEVS
        if kvm is not None:
            yield Release(LockClass.KVM, kvm)
        yield UNLOCK_GUESTS

    # -- lifecycle ------------------------------------------------------------------------
    def create_op(self, text: str) -> Op[Mdev]:
        """``echo UUID > …/mdev_supported_types/vfio_ap-passthrough/create``."""
        uuid = parse_uuid(text)
        if uuid in self.mdevs:
            raise ModelError(errno.EEXIST, f"mdev {uuid} already exists")
        if self.available_instances <= 0:
            raise ModelError(errno.EUSERS, "no available instances of vfio_ap-passthrough")
        yield LOCK_MDEVS
        self.available_instances -= 1
        m = Mdev(uuid, iommu_group=self.next_iommu_group)
        self.next_iommu_group += 1
        self.mdevs[uuid] = m
        yield UNLOCK_MDEVS
        return m

    def remove_op(self, uuid: str) -> Op[None]:
        """``echo 1 > …/UUID/remove``; refused (``EBUSY``) while a guest has it open."""
        m = self.mdev(uuid)
        if m.guest is not None:
            raise ModelError(errno.EBUSY, f"mdev {m.uuid} is in use by guest {m.guest}: "
                             "the guest must release it first")
        yield LOCK_GUESTS
        yield LOCK_MDEVS
        linked = [q for q in self.bus.queues.values() if q.mdev == m.uuid]
        self.reset_queues(linked, "mdev-remove")
        for q in linked:
            q.mdev = None
        del self.mdevs[m.uuid]
        self.available_instances += 1
        yield UNLOCK_MDEVS
        yield UNLOCK_GUESTS

    # -- assignment -----------------------------------------------------------------------
    def assign_op(self, uuid: str, what: str, text: str) -> Op[None]:
        """``echo N > …/UUID/assign_{adapter,domain,control_domain}``."""
        yield from self._change_op(uuid, what, text, assign=True)

    def unassign_op(self, uuid: str, what: str, text: str) -> Op[None]:
        """``echo N > …/UUID/unassign_{adapter,domain,control_domain}``."""
        yield from self._change_op(uuid, what, text, assign=False)

    def _change_op(self, uuid: str, what: str, text: str, assign: bool) -> Op[None]:
        if what not in ASSIGNABLE:
            raise ValueError(f"cannot assign {what!r}")
        m = self.mdev(uuid)
        perms_first = assign and what != "control_domain" and self.locking is LockingModel.MERGED
        if perms_first:
            yield LOCK_AP_PERMS
        kvm = yield from self.update_locks_op(m)
        err: ModelError | None = None
        try:
            if assign:
                yield from self._assign_locked(m, what, text)
            else:
                self._unassign_locked(m, what, text)
        except ModelError as e:
            err = e
        yield from self.release_update_locks_op(kvm)
        if perms_first:
            yield UNLOCK_AP_PERMS
        if err is not None:
            self.journal.counters.assignments_refused[err.errno_name] += 1
            raise err

    def _parse_id(self, what: str, text: str) -> int:
        n = M.kstrtoul(text)
        if n > self.limit(what):
            raise ModelError(errno.ENODEV, f"{what.replace('_', ' ')} {n} (0x{n:x}) is above the "
                             f"machine's maximum {self.limit(what)}")
        return n

    def _assign_locked(self, m: Mdev, what: str, text: str) -> Op[None]:
        n = self._parse_id(what, text)
        if M.test(m.mask(what), n):
            return
        m.set_mask(what, m.mask(what) | M.bit(n))
        if what == "control_domain":
            if refilter_cdoms(m, self.bus):
                self.update_guest(m, Trigger.ASSIGN)
            return
        if self.locking is LockingModel.SEED_V18:
            yield LOCK_AP_PERMS
        reserved = self.bus.owned_by_def_drv(m.apm, m.aqm)
        if self.locking is LockingModel.SEED_V18:
            yield UNLOCK_AP_PERMS
        if reserved:
            m.set_mask(what, m.mask(what) & ~M.bit(n))
            raise ModelError(errno.EADDRNOTAVAIL, f"APQN {reserved[0]} is reserved for the host by "
                             f"/sys/bus/ap/apmask and aqmask; free it with "
                             f"'-{int(reserved[0][:2], 16)}' to apmask or "
                             f"'-{int(reserved[0][3:], 16)}' to aqmask")
        conflict = self.sharing_conflict(m.apm, m.aqm, skip=m)
        if conflict is not None:
            m.set_mask(what, m.mask(what) & ~M.bit(n))
            first = self.log_sharing(*conflict)
            raise ModelError(errno.EADDRINUSE, f"APQN {first} is already assigned to mdev "
                             f"{conflict[0].uuid}")
        others = M.ids(m.aqm) if what == "adapter" else M.ids(m.apm)
        for o in others:
            apid, apqi = (n, o) if what == "adapter" else (o, n)
            q = self.bus.queue(apid, apqi)
            if q is not None and q.driver == "vfio_ap":
                q.mdev = m.uuid
        if refilter(m, self.bus):
            self.update_guest(m, Trigger.ASSIGN)

    def _unassign_locked(self, m: Mdev, what: str, text: str) -> None:
        n = self._parse_id(what, text)
        if not M.test(m.mask(what), n):
            return
        m.set_mask(what, m.mask(what) & ~M.bit(n))
        if what == "control_domain":
            if M.test(m.shadow_adm, n):
                m.shadow_adm &= ~M.bit(n)
                self.update_guest(m, Trigger.UNASSIGN)
            return
        to_reset = []
        others = M.ids(m.aqm) if what == "adapter" else M.ids(m.apm)
        for o in others:
            apid, apqi = (n, o) if what == "adapter" else (o, n)
            q = linked_queue(self.bus, m.uuid, apid, apqi)
            if q is None:
                continue
            q.mdev = None
            if M.test(m.shadow_apm, apid) and M.test(m.shadow_aqm, apqi):
                to_reset.append(q)
        shadow = m.shadow_apm if what == "adapter" else m.shadow_aqm
        if M.test(shadow, n):
            if what == "adapter":
                m.shadow_apm &= ~M.bit(n)
            else:
                m.shadow_aqm &= ~M.bit(n)
            self.update_guest(m, Trigger.UNASSIGN)
        self.reset_queues(to_reset, "unassign")

    # -- the AP bus's in_use callback -----------------------------------------------------
    def in_use_op(self, apm: int, aqm: int) -> Op[tuple[int, str]]:
        """Whether an APQN of ``apm`` × ``aqm`` is assigned to an mdev (apmask/aqmask stores).

        Merged: guests_lock → mdevs_lock.  Seed v18: both try-locked; contention → ``EBUSY``.
        """
        if self.locking is LockingModel.SEED_V18:
            if not (yield Acquire(LockClass.GUESTS, trylock=True)):
                return errno.EBUSY, "vfio_ap is busy (in_use could not try-lock guests_lock)"
            if not (yield Acquire(LockClass.MDEVS, trylock=True)):
                yield UNLOCK_GUESTS
                return errno.EBUSY, "vfio_ap is busy (in_use could not try-lock mdevs_lock)"
        else:
            yield LOCK_GUESTS
            yield LOCK_MDEVS
        conflict = self.sharing_conflict(apm, aqm)
        result: tuple[int, str] = (0, "")
        if conflict is not None:
            first = self.log_sharing(*conflict)
            result = (errno.EADDRINUSE, f"queue {first} would go back to the host but is "
                      f"assigned to mdev {conflict[0].uuid}")
        yield UNLOCK_MDEVS
        yield UNLOCK_GUESTS
        return result
