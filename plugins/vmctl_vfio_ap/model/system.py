"""The whole AP host as one model: bus + vfio_ap driver + lock checker + journal.

:class:`ApSystem` answers kernel paths the way sysfs does — :meth:`ApSystem.write` performs
``echo VALUE > PATH`` (raising ``ModelError`` with the kernel's errno) and
:meth:`ApSystem.read` returns the attribute's text — so the fake-kernel handlers, the
simulator and the tests all drive the same state machine.  Every write runs as a lock-checked
operation (:func:`vmctl_vfio_ap.model.locks.run`); :meth:`ApSystem.op` hands out the underlying
generator for the :class:`~vmctl_vfio_ap.model.locks.Interleaver`.

Example::

    ap = ApSystem(config=ApConfig(apm=from_ids([1, 2]), aqm=from_ids([5, 6, 7])),
                  apmask=0, aqmask=0)
    ap.write(TYPE_DIR + "/create", UUID_A)
    ap.write(f"{MATRIX}/{UUID_A}/assign_adapter", "1")
    ap.read(f"{MATRIX}/{UUID_A}/matrix")        # "01.\\n": adapters only, no domain yet
"""

from __future__ import annotations

import errno
import functools
import itertools
from collections.abc import Callable
from typing import Any

from vmctl.api import ModelError

from . import masks as M
from .apbus import CARD_DRIVER, QUEUE_DRIVERS, VFIO_AP_DRIVER, ApBus, ApConfig, Card
from .events import Journal
from .filter import filtered_out
from .locks import LockChecker, LockingModel, Op, run
from .matrix import ASSIGNABLE, MAX_INSTANCES, MatrixDev
from .mdev import Mdev

AP_BUS = "/sys/bus/ap"
MATRIX = "/sys/devices/vfio_ap/matrix"
MDEV_TYPE = "vfio_ap-passthrough"
TYPE_DIR = f"{MATRIX}/mdev_supported_types/{MDEV_TYPE}"
MDEV_NAME = "VFIO AP Passthrough Device"
MDEV_ATTRS = tuple(f"{verb}_{what}" for what in ASSIGNABLE for verb in ("assign", "unassign"))


class ApSystem:
    """An s390 host's AP configuration and vfio_ap driver, modelled.

    ``locking`` selects the merged design (default) or the seed's v18 proposal, which is
    unmerged and therefore needs ``experimental=True``.
    """

    def __init__(self, *, max_adapter_id: int = 255, max_domain_id: int = 255,
                 config: ApConfig = ApConfig(), apmask: int = M.FULL, aqmask: int = M.FULL,
                 hardware: dict[int, Card] | None = None, vfio_ap_loaded: bool = True,
                 locking: LockingModel = LockingModel.MERGED, experimental: bool = False,
                 available_instances: int = MAX_INSTANCES, populate: bool = True) -> None:
        if locking is not LockingModel.MERGED and not experimental:
            raise ValueError("the v18 locking proposal was never merged; pass experimental=True "
                             "to model it")
        self.journal = Journal()
        self.locks = LockChecker(locking)
        self.bus = ApBus(self.journal, max_adapter_id=max_adapter_id,
                         max_domain_id=max_domain_id, config=config, apmask=apmask,
                         aqmask=aqmask, hardware=hardware)
        self.vfio: MatrixDev | None = None
        if vfio_ap_loaded:
            self.vfio = MatrixDev(self.bus, self.journal, locking, available_instances)
        if populate:
            self.bus.populate()
        self._ctx = itertools.count(1)

    # -- running operations -------------------------------------------------------------
    def run(self, name: str, op: Op[Any]) -> Any:
        """Run one operation alone through the lock checker."""
        return run(self.locks, f"{name}#{next(self._ctx)}", op)

    @property
    def driver(self) -> MatrixDev:
        if self.vfio is None:
            raise ModelError(errno.ENOENT, "the vfio_ap module is not loaded")
        return self.vfio

    def mdev(self, uuid: str) -> Mdev:
        return self.driver.mdev(uuid)

    def op(self, kpath: str, value: str) -> tuple[str, Op[Any]]:
        """The operation a write of ``value`` to ``kpath`` performs: ``(name, generator)``."""
        parts = _split(kpath)
        if parts[:3] == ["sys", "bus", "ap"]:
            rest = parts[3:]
            if rest in (["apmask"], ["aqmask"]):
                return rest[0], self.bus.store_mask_op(rest[0], value)
            if rest == ["scans"]:
                return "scan", self.bus.scan_op()
            if len(rest) == 3 and rest[0] == "drivers" and rest[2] in ("bind", "unbind"):
                drv = rest[1]
                if drv not in (CARD_DRIVER,) + QUEUE_DRIVERS or (drv == VFIO_AP_DRIVER and self.vfio is None):
                    raise FileNotFoundError(errno.ENOENT, "no such sysfs attribute", kpath)
                fn = self.bus.bind_op if rest[2] == "bind" else self.bus.unbind_op
                return f"{rest[2]}", fn(drv, value)
        elif self.vfio is not None:
            if kpath.rstrip("/") == f"{TYPE_DIR}/create":
                return "create", self.vfio.create_op(value)
            uuid, attr = _mdev_attr(parts)
            if uuid in self.vfio.mdevs:
                if attr == "remove":
                    return "remove", self._remove_op(uuid, value)
                if attr in MDEV_ATTRS:
                    verb, _, what = attr.partition("_")
                    fn2 = self.vfio.assign_op if verb == "assign" else self.vfio.unassign_op
                    return attr, fn2(uuid, what, value)
        raise FileNotFoundError(errno.ENOENT, "no such writable sysfs attribute", kpath)

    def _remove_op(self, uuid: str, value: str) -> Op[None]:
        if M.kstrtoul(value):
            yield from self.driver.remove_op(uuid)

    def write(self, kpath: str, value: str) -> None:
        """``echo VALUE > KPATH`` (raises the kernel's errno as ``ModelError``)."""
        name, op = self.op(kpath, value)
        self.run(name, op)

    # -- guest side and host events -----------------------------------------------------
    def open_mdev(self, uuid: str, guest: str | None) -> None:
        self.run("open", self.driver.open_op(uuid, guest))

    def close_mdev(self, uuid: str) -> None:
        self.run("close", self.driver.close_op(uuid))

    def reset_mdev(self, uuid: str) -> None:
        self.run("reset", self.driver.reset_device_op(uuid))

    def pqap_aqic(self, guest: str, apqn: str, enable: bool) -> int:
        apid, apqi = M.parse_apqn(apqn)
        return int(self.run("pqap", self.driver.pqap_aqic_op(guest, apid, apqi, enable)))

    def config_change(self, apm: int | None = None, aqm: int | None = None,
                      adm: int | None = None) -> None:
        """The host AP configuration changed (SE/HMC): rescan with the new QCI masks."""
        c = self.bus.config
        new = ApConfig(c.apm if apm is None else apm, c.aqm if aqm is None else aqm,
                       c.adm if adm is None else adm)
        self.run("config-change", self.bus.scan_op(new))

    def inject_reset_failure(self, apqn: str, rc: int) -> None:
        """Make the next reset of ``apqn`` fail with AP response code ``rc``."""
        apid, apqi = M.parse_apqn(apqn)
        q = self.bus.queue(apid, apqi)
        if q is None:
            raise ModelError(errno.ENODEV, f"no queue {apqn}")
        q.next_reset_rc = rc

    # -- reads ----------------------------------------------------------------------------
    def read(self, kpath: str) -> str:
        """The text of a readable attribute, exactly as the kernel prints it."""
        parts = _split(kpath)
        b = self.bus
        if parts[:3] == ["sys", "bus", "ap"] and len(parts) == 4:
            readers: dict[str, Callable[[], str]] = {
                "apmask": lambda: M.format_mask(b.apmask),
                "aqmask": lambda: M.format_mask(b.aqmask),
                "ap_adapter_mask": lambda: M.format_mask(b.config.apm),
                "ap_usage_domain_mask": lambda: M.format_mask(b.config.aqm),
                "ap_control_domain_mask": lambda: M.format_mask(b.config.adm),
                "ap_max_adapter_id": lambda: str(b.max_adapter_id),
                "ap_max_domain_id": lambda: str(b.max_domain_id),
            }
            if parts[3] in readers:
                return readers[parts[3]]() + "\n"
        elif self.vfio is not None:
            v = self.vfio
            if parts[:6] == _split(TYPE_DIR) and len(parts) == 7:
                simple = {"name": MDEV_NAME, "device_api": "vfio-ap",
                          "available_instances": str(v.available_instances)}
                if parts[6] in simple:
                    return simple[parts[6]] + "\n"
            uuid, attr = _mdev_attr(parts)
            if uuid in v.mdevs:
                m = v.mdevs[uuid]
                if attr == "matrix":
                    return M.matrix_text(m.apm, m.aqm, b.max_adapter_id, b.max_domain_id)
                if attr == "guest_matrix":
                    return M.matrix_text(m.shadow_apm, m.shadow_aqm, b.max_adapter_id, b.max_domain_id)
                if attr == "control_domains":
                    return M.control_domains_text(m.adm, b.max_domain_id)
        raise FileNotFoundError(errno.ENOENT, "no such readable sysfs attribute", kpath)

    def queue_status(self, apid: int, apqi: int) -> str | None:
        """A vfio_ap queue's ``status`` attribute: ``in use``, ``assigned`` or ``unassigned``."""
        q = self.bus.queue(apid, apqi)
        if q is None or q.driver != VFIO_AP_DRIVER or self.vfio is None:
            return None
        for m in self.vfio.in_list_order():
            if M.test(m.apm, apid) and M.test(m.aqm, apqi):
                return "in use" if m.guest is not None else "assigned"
        return "unassigned"

    def status(self) -> dict[str, Any]:
        """The live state as JSON-able data: host masks, queues, each mdev's view, counters."""
        b = self.bus
        out: dict[str, Any] = {
            "apmask": M.format_mask(b.apmask), "aqmask": M.format_mask(b.aqmask),
            "max_adapter_id": b.max_adapter_id, "max_domain_id": b.max_domain_id,
            "queues": {q.name: q.driver for _, q in sorted(b.queues.items())},
            "locking": self.locks.model.value, "mdevs": [],
            "counters": self.journal.counters.to_json()}
        for m in (self.vfio.mdevs.values() if self.vfio else ()):
            out["mdevs"].append({
                "uuid": m.uuid, "state": m.state.value, "guest": m.guest,
                "matrix": M.matrix_text(m.apm, m.aqm).split(),
                "guest_matrix": M.matrix_text(m.shadow_apm, m.shadow_aqm).split(),
                "control_domains": M.control_domains_text(m.adm).split(),
                "filtered": [f.to_json() for f in filtered_out(m, b)]})
        return out


@functools.lru_cache(maxsize=1024)
def _parts(kpath: str) -> tuple[str, ...]:
    return tuple(p for p in kpath.split("/") if p)


def _split(kpath: str) -> list[str]:
    return list(_parts(kpath))


def _mdev_attr(parts: list[str]) -> tuple[str, str]:
    """``(uuid, attribute)`` for ``…/vfio_ap/matrix/UUID/ATTR`` or ``/sys/bus/mdev/devices/UUID/ATTR``."""
    if len(parts) == 6 and parts[:4] == ["sys", "devices", "vfio_ap", "matrix"]:
        return parts[4].lower(), parts[5]
    if len(parts) == 6 and parts[:4] == ["sys", "bus", "mdev", "devices"]:
        return parts[4].lower(), parts[5]
    return "", ""
