"""The AP bus: adapters, domains, queue devices, and which driver owns each queue.

Ownership (semantics.md §4.2): a queue ``AA.DDDD`` belongs to the host's default (zcrypt)
driver ``cex4queue`` iff bit ``AA`` is set in ``apmask`` **and** bit ``DDDD`` in ``aqmask``;
otherwise it is for ``vfio_ap``.  Writing a mask re-probes the queues whose ownership flipped,
after asking vfio_ap whether a queue about to go back to the host is assigned to an mdev
(``in_use``): if so the write fails with ``EBUSY`` (``ap_bus.c``: ``apmask_store``).

Queue devices exist for every adapter × usage domain in the host AP configuration (``QCI``,
:class:`ApConfig`) up to ``ap_max_adapter_id``/``ap_max_domain_id``; a bus scan with a new
configuration adds and removes them and tells vfio_ap before (``on_config_changed``) and after
(``on_scan_complete``).  Every operation here is a generator of lock requests, see
:mod:`vmctl_vfio_ap.model.locks`.
"""

from __future__ import annotations

import errno
from dataclasses import dataclass
from typing import Protocol

from vmctl.api import ModelError

from . import masks as M
from .events import Journal
from .locks import LOCK_AP_PERMS, Op, UNLOCK_AP_PERMS

DEFAULT_QUEUE_DRIVER = "cex4queue"
"""The zcrypt driver that owns host queues of CEX4 and newer adapters."""
CARD_DRIVER = "cex4card"
VFIO_AP_DRIVER = "vfio_ap"
QUEUE_DRIVERS = (DEFAULT_QUEUE_DRIVER, VFIO_AP_DRIVER)
MIN_VFIO_AP_HWTYPE = 10
"""Only queues of CEX4 (hwtype 10) and newer adapters bind to vfio_ap."""



@dataclass(frozen=True)
class ApConfig:
    """The host AP configuration (what QCI reports): adapters, usage and control domains."""

    apm: int = 0
    aqm: int = 0
    adm: int = 0


@dataclass
class Card:
    """An adapter (``cardXX``).  ``hwtype`` 10..14 are CEX4..CEX8; ``mode`` C (CCA
    coprocessor), A (accelerator) or P (EP11)."""

    apid: int
    hwtype: int = 13
    mode: str = "C"
    driver: str | None = CARD_DRIVER

    @property
    def name(self) -> str:
        return f"card{self.apid:02x}"

    @property
    def type_name(self) -> str:
        return f"CEX{self.hwtype - 6}{self.mode}"


@dataclass
class Queue:
    """A queue device ``AA.DDDD``.

    ``driver`` is ``cex4queue``, ``vfio_ap`` or ``None`` (unbound).  For vfio_ap queues,
    ``mdev`` is the UUID of the mdev the queue is linked to, ``irq_enabled`` whether the
    guest enabled AP interrupts (PQAP AQIC), ``reset_rc`` the response code of the last reset
    (non-zero keeps the adapter out of the guest).  ``next_reset_rc`` injects a failure into
    the next reset.
    """

    apid: int
    apqi: int
    driver: str | None = DEFAULT_QUEUE_DRIVER
    mdev: str | None = None
    irq_enabled: bool = False
    reset_rc: int = 0
    next_reset_rc: int = 0

    @property
    def apqn(self) -> int:
        return (self.apid << 8) | self.apqi

    @property
    def name(self) -> str:
        return f"{self.apid:02x}.{self.apqi:04x}"


class VfioApCallbacks(Protocol):
    """What the AP bus calls in the vfio_ap driver (``struct ap_driver`` callbacks)."""

    def in_use_op(self, apm: int, aqm: int) -> Op[tuple[int, str]]: ...
    def probe_queue_op(self, q: Queue) -> Op[None]: ...
    def remove_queue_op(self, q: Queue) -> Op[None]: ...
    def on_cfg_changed_op(self, cur: ApConfig, prev: ApConfig) -> Op[None]: ...
    def on_scan_complete_op(self, cur: ApConfig, prev: ApConfig) -> Op[None]: ...


class ApBus:
    """State of ``/sys/bus/ap`` and its devices, with the bus-level operations."""

    def __init__(self, journal: Journal, *, max_adapter_id: int = 255, max_domain_id: int = 255,
                 config: ApConfig = ApConfig(), apmask: int = M.FULL, aqmask: int = M.FULL,
                 hardware: dict[int, Card] | None = None) -> None:
        if not (0 <= max_adapter_id <= 255 and 0 <= max_domain_id <= 255):
            raise ValueError("ap_max_adapter_id and ap_max_domain_id must be 0..255")
        self.journal = journal
        self.max_adapter_id = max_adapter_id
        self.max_domain_id = max_domain_id
        self.config = config
        self.apmask = apmask
        self.aqmask = aqmask
        self.hardware = dict(hardware or {})
        self.cards: dict[int, Card] = {}
        self.queues: dict[int, Queue] = {}
        self.scans = 0
        self.vfio: VfioApCallbacks | None = None

    # -- queries ------------------------------------------------------------------------
    def host_owned(self, apid: int, apqi: int) -> bool:
        """Whether ``apmask``/``aqmask`` reserve the APQN for the host's zcrypt drivers."""
        return M.test(self.apmask, apid) and M.test(self.aqmask, apqi)

    def owned_by_def_drv(self, apm: int, aqm: int) -> list[str]:
        """The APQNs of ``apm`` × ``aqm`` reserved for the host (``ap_apqn_in_matrix_owned_by_def_drv``)."""
        aps, aqs = apm & self.apmask, aqm & self.aqmask
        if not aps or not aqs:
            return []
        return [M.format_apqn(a, q) for a in M.ids(aps) for q in M.ids(aqs)]

    def queue(self, apid: int, apqi: int) -> Queue | None:
        return self.queues.get((apid << 8) | apqi)

    def find_device(self, name: str) -> Card | Queue | None:
        """A card (``card05``) or queue (``05.0004``) device by its sysfs name."""
        name = name.strip()
        if name.startswith("card") and len(name) == 6:
            try:
                return self.cards.get(int(name[4:], 16))
            except ValueError:
                return None
        try:
            apid, apqi = M.parse_apqn(name)
        except ValueError:
            return None
        return self.queue(apid, apqi)

    def vfio_ap_capable(self, q: Queue) -> bool:
        card = self.cards.get(q.apid)
        return card is not None and card.hwtype >= MIN_VFIO_AP_HWTYPE

    def expected_driver(self, q: Queue) -> str | None:
        """The driver a probe binds: the host's when reserved, else vfio_ap when loaded."""
        if self.host_owned(q.apid, q.apqi):
            return DEFAULT_QUEUE_DRIVER
        return VFIO_AP_DRIVER if self.vfio is not None and self.vfio_ap_capable(q) else None

    def populate(self) -> None:
        """Create the devices of the current configuration as at boot (no mdev exists yet)."""
        self.scans = 1
        for apid in M.ids(self.config.apm):
            if apid > self.max_adapter_id:
                continue
            self.cards[apid] = self.hardware.get(apid) or Card(apid)
            for apqi in M.ids(self.config.aqm):
                if apqi <= self.max_domain_id:
                    q = Queue(apid, apqi, driver=None)
                    q.driver = self.expected_driver(q)
                    self.queues[q.apqn] = q

    # -- mask writes ----------------------------------------------------------------------
    def store_mask_op(self, which: str, text: str) -> Op[None]:
        """``echo TEXT > /sys/bus/ap/{apmask,aqmask}``: parse, check in_use, commit, re-probe."""
        yield LOCK_AP_PERMS
        err: ModelError | None = None
        cur = self.apmask if which == "apmask" else self.aqmask
        new = cur
        try:
            new = M.parse_mask(text, cur)
        except ModelError as e:
            err = e
        if err is None and new != cur:
            reserved = new & ~cur
            if reserved and self.vfio is not None:
                apm, aqm = (reserved, self.aqmask) if which == "apmask" else (self.apmask, reserved)
                rc, why = yield from self.vfio.in_use_op(apm, aqm)
                if rc:
                    err = ModelError(errno.EBUSY, f"{which} {text.strip()!r} refused: {why}")
            if err is None:
                if which == "apmask":
                    self.apmask = new
                else:
                    self.aqmask = new
        yield UNLOCK_AP_PERMS
        if err is not None:
            self.journal.counters.mask_writes_refused[err.errno_name] += 1
            raise err
        if new != cur:
            yield from self.revise_bindings_op()

    def revise_bindings_op(self) -> Op[None]:
        """``ap_bus_revise_bindings``: re-probe bound queues whose ownership no longer matches.

        Unbound queues are left alone: the kernel reads the missing driver's flags through a
        NULL pointer there (lowcore on s390), so what happens to them is not defined.
        """
        for apqn in sorted(self.queues):
            q = self.queues[apqn]
            if q.driver is None:
                continue
            yield LOCK_AP_PERMS
            devres = self.host_owned(q.apid, q.apqi)
            yield UNLOCK_AP_PERMS
            if devres != (q.driver == DEFAULT_QUEUE_DRIVER):
                yield from self.detach_op(q)
                yield from self.probe_op(q)

    # -- driver binding -------------------------------------------------------------------
    def probe_op(self, q: Queue) -> Op[None]:
        """Bus probe of an unbound queue: ``ap_device_probe`` checks ownership, then the driver."""
        yield LOCK_AP_PERMS
        driver = self.expected_driver(q)
        yield UNLOCK_AP_PERMS
        q.driver = driver
        if driver == VFIO_AP_DRIVER and self.vfio is not None:
            yield from self.vfio.probe_queue_op(q)

    def detach_op(self, q: Queue) -> Op[None]:
        """Unbind a queue from its driver (vfio_ap's remove callback unplugs and resets it)."""
        if q.driver == VFIO_AP_DRIVER and self.vfio is not None:
            yield from self.vfio.remove_queue_op(q)
        q.driver = None
        q.mdev = None
        q.irq_enabled = False

    def bind_op(self, driver: str, name: str) -> Op[None]:
        """``echo NAME > /sys/bus/ap/drivers/DRIVER/bind``."""
        dev = self.find_device(name)
        if isinstance(dev, Card):
            if driver != CARD_DRIVER:
                raise ModelError(errno.ENODEV, f"{driver} does not drive adapters ({dev.name})")
            if dev.driver is not None:
                raise ModelError(errno.EBUSY, f"{dev.name} is already bound to {dev.driver}")
            dev.driver = driver
            return
        if dev is None or driver not in QUEUE_DRIVERS:
            raise ModelError(errno.ENODEV, f"no AP queue {name.strip()!r} that {driver} can drive")
        if dev.driver is not None:
            raise ModelError(errno.EBUSY, f"queue {dev.name} is already bound to {dev.driver}")
        if driver == VFIO_AP_DRIVER and not self.vfio_ap_capable(dev):
            raise ModelError(errno.ENODEV, f"queue {dev.name}: vfio_ap drives CEX4 and newer only")
        yield LOCK_AP_PERMS
        devres = self.host_owned(dev.apid, dev.apqi)
        yield UNLOCK_AP_PERMS
        if devres != (driver == DEFAULT_QUEUE_DRIVER):
            owner = "reserved for the host" if devres else "not reserved for the host"
            raise ModelError(errno.ENODEV, f"{driver} probe rejects {dev.name}: it is {owner} "
                             f"by /sys/bus/ap/apmask and aqmask")
        dev.driver = driver
        if driver == VFIO_AP_DRIVER and self.vfio is not None:
            yield from self.vfio.probe_queue_op(dev)

    def unbind_op(self, driver: str, name: str) -> Op[None]:
        """``echo NAME > /sys/bus/ap/drivers/DRIVER/unbind``."""
        dev = self.find_device(name)
        if dev is None or dev.driver != driver:
            raise ModelError(errno.ENODEV, f"{name.strip()!r} is not bound to {driver}")
        if isinstance(dev, Card):
            dev.driver = None
            return
        yield from self.detach_op(dev)

    # -- configuration changes ------------------------------------------------------------
    def scan_op(self, config: ApConfig | None = None) -> Op[None]:
        """An AP bus scan (``ap_scan_bus``), optionally after the host configuration changed.

        Adapters or domains that left the configuration lose their devices (vfio_ap unplugs
        them first, ``on_config_changed``); new ones get devices, probed like at boot, and
        vfio_ap hot-plugs them into guests once the scan is complete (``on_scan_complete``).
        """
        prev = self.config
        self.scans += 1
        if config is not None:
            self.config = config
        cur = self.config
        changed = cur != prev
        if changed and self.vfio is not None:
            yield from self.vfio.on_cfg_changed_op(cur, prev)
        apm = cur.apm & M.up_to(self.max_adapter_id)
        aqm = cur.aqm & M.up_to(self.max_domain_id)
        for apqn in sorted(self.queues):
            q = self.queues[apqn]
            if not (M.test(apm, q.apid) and M.test(aqm, q.apqi)):
                yield from self.detach_op(q)
                del self.queues[apqn]
        for apid in [a for a in self.cards if not M.test(apm, a)]:
            del self.cards[apid]
        for apid in M.ids(apm):
            if apid not in self.cards:
                self.cards[apid] = self.hardware.get(apid) or Card(apid)
            for apqi in M.ids(aqm):
                if (apid << 8 | apqi) not in self.queues:
                    q = Queue(apid, apqi, driver=None)
                    self.queues[q.apqn] = q
                    yield from self.probe_op(q)
        if changed and self.vfio is not None:
            yield from self.vfio.on_scan_complete_op(cur, prev)
