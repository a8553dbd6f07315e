"""Reading an s390 host's AP configuration under a sysfs root.

Everything goes through :class:`vmctl.host.sysfs.Sysfs` with kernel paths:

* ``/sys/bus/ap``: ``apmask``, ``aqmask``, ``ap_max_adapter_id``, ``ap_max_domain_id``, the
  QCI masks ``ap_adapter_mask``/``ap_usage_domain_mask``/``ap_control_domain_mask``, and the
  devices ``cardXX`` and ``XX.YYYY`` with their ``driver`` links;
* ``/sys/devices/vfio_ap/matrix``: the ``vfio_ap-passthrough`` mdev type and each mdev's
  ``matrix``, ``guest_matrix`` and ``control_domains``.

:func:`read_host` gives an immutable :class:`ApHost` snapshot (what ``vmctl ap show``,
validation and planning look at); :func:`load_system` turns it into a live
:class:`~vmctl_vfio_ap.model.system.ApSystem` model (what the fake-kernel handlers mutate);
:func:`host_of` reads it once per validation run; :func:`host_check` gives ``vmctl host
check`` its lines.
"""

from __future__ import annotations

import errno
import re
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

from vmctl.api import HostFact, ModelError, Sysfs

from .model import masks as M
from .model.apbus import VFIO_AP_DRIVER, ApConfig, Card, Queue
from .model.mdev import Mdev
from .model.system import AP_BUS, MATRIX, TYPE_DIR, ApSystem

if TYPE_CHECKING:  # pragma: no cover
    from vmctl.api import ValidationContext

PLUGIN = "vfio-ap"

_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


@dataclass(frozen=True)
class CardInfo:
    apid: int
    type_name: str
    hwtype: int
    driver: str | None


@dataclass(frozen=True)
class QueueInfo:
    """A queue device; ``status`` is vfio_ap's ``in use``/``assigned``/``unassigned`` or None."""

    apid: int
    apqi: int
    driver: str | None
    status: str | None = None

    @property
    def name(self) -> str:
        return M.format_apqn(self.apid, self.apqi)


@dataclass(frozen=True)
class MdevInfo:
    """One matrix mdev as sysfs shows it."""

    uuid: str
    apm: int
    aqm: int
    adm: int
    guest_apm: int
    guest_aqm: int
    iommu_group: int | None = None
    in_use: bool = False

    @property
    def apqns(self) -> list[str]:
        return [M.format_apqn(a, q) for a in M.ids(self.apm) for q in M.ids(self.aqm)]


@dataclass(frozen=True)
class ApHost:
    """The AP configuration of a host.  ``present`` is false without an AP bus (not s390)."""

    present: bool
    apmask: int = M.FULL
    aqmask: int = M.FULL
    max_adapter_id: int = 63
    max_domain_id: int = 15
    config: ApConfig = ApConfig()
    cards: tuple[CardInfo, ...] = ()
    queues: tuple[QueueInfo, ...] = ()
    vfio_ap_loaded: bool = False
    available_instances: int | None = None
    mdevs: tuple[MdevInfo, ...] = ()
    scans: int = 0

    @cached_property
    def _by_apqn(self) -> dict[int, QueueInfo]:
        return {(q.apid << 8) | q.apqi: q for q in self.queues}

    def queue(self, apid: int, apqi: int) -> QueueInfo | None:
        return self._by_apqn.get((apid << 8) | apqi)

    def host_owned(self, apid: int, apqi: int) -> bool:
        return M.test(self.apmask, apid) and M.test(self.aqmask, apqi)

    def to_json(self) -> dict[str, object]:
        """The host as ``vmctl ap show --format json`` prints it (masks in the kernel's form)."""
        if not self.present:
            return {"present": False}
        return {
            "present": True, "apmask": M.format_mask(self.apmask), "aqmask": M.format_mask(self.aqmask),
            "ap_max_adapter_id": self.max_adapter_id, "ap_max_domain_id": self.max_domain_id,
            "config": {"adapters": M.format_mask(self.config.apm), "usage_domains": M.format_mask(self.config.aqm),
                       "control_domains": M.format_mask(self.config.adm)},
            "cards": [{"name": f"card{c.apid:02x}", "type": c.type_name, "hwtype": c.hwtype,
                       "driver": c.driver} for c in self.cards],
            "queues": [{"name": q.name, "driver": q.driver, "status": q.status,
                        "host_owned": self.host_owned(q.apid, q.apqi)} for q in self.queues],
            "vfio_ap_loaded": self.vfio_ap_loaded, "available_instances": self.available_instances,
            "mdevs": [{"uuid": m.uuid, "in_use": m.in_use, "iommu_group": m.iommu_group,
                       "matrix": M.matrix_text(m.apm, m.aqm, self.max_adapter_id, self.max_domain_id).split(),
                       "guest_matrix": M.matrix_text(m.guest_apm, m.guest_aqm, self.max_adapter_id,
                                                     self.max_domain_id).split(),
                       "control_domains": M.control_domains_text(m.adm, self.max_domain_id).split()}
                      for m in self.mdevs]}

    def mdev_owning(self, apid: int, apqi: int) -> MdevInfo | None:
        """The mdev whose matrix contains the APQN, if any."""
        for m in self.mdevs:
            if M.test(m.apm, apid) and M.test(m.aqm, apqi):
                return m
        return None


def _read_mask(sysfs: Sysfs, name: str, default: int) -> int:
    text = sysfs.read(f"{AP_BUS}/{name}", "")
    if not text or not text.startswith("0x"):
        return default
    return M.parse_mask(text, 0)


def _read_int(sysfs: Sysfs, kpath: str, default: int) -> int:
    try:
        return int(sysfs.read(kpath, str(default)).strip(), 0)
    except ValueError:
        return default


def read_host(sysfs: Sysfs) -> ApHost:
    """Snapshot the AP host under ``sysfs.root``; ``present=False`` when there is no AP bus."""
    if not sysfs.is_dir(AP_BUS):
        return ApHost(present=False)
    cards: list[CardInfo] = []
    queues: list[QueueInfo] = []
    for name in sysfs.listdir(f"{AP_BUS}/devices"):
        base = f"{AP_BUS}/devices/{name}"
        if name.startswith("card"):
            cards.append(CardInfo(int(name[4:], 16), sysfs.read(f"{base}/type", ""),
                                  _read_int(sysfs, f"{base}/hwtype", 0),
                                  sysfs.readlink_name(f"{base}/driver")))
            continue
        try:
            apid, apqi = M.parse_apqn(name)
        except ValueError:
            continue
        driver = sysfs.readlink_name(f"{base}/driver")
        status = (sysfs.read(f"{base}/status", "") or None) if driver == VFIO_AP_DRIVER else None
        queues.append(QueueInfo(apid, apqi, driver, status))
    max_ap = _read_int(sysfs, f"{AP_BUS}/ap_max_adapter_id", 63)
    max_dom = _read_int(sysfs, f"{AP_BUS}/ap_max_domain_id", 15)
    seen = ApConfig(M.from_ids({c.apid for c in cards}), M.from_ids({q.apqi for q in queues}), 0)
    config = ApConfig(_read_mask(sysfs, "ap_adapter_mask", seen.apm),
                      _read_mask(sysfs, "ap_usage_domain_mask", seen.aqm),
                      _read_mask(sysfs, "ap_control_domain_mask", seen.adm))
    loaded = sysfs.is_dir(MATRIX)
    mdevs: list[MdevInfo] = []
    by_apqn = {(q.apid << 8) | q.apqi: q for q in queues}
    for name in sysfs.listdir(MATRIX) if loaded else []:
        base = f"{MATRIX}/{name}"
        if not _UUID.fullmatch(name) or not sysfs.exists(f"{base}/matrix"):
            continue
        apm, aqm = M.parse_matrix_text(sysfs.read(f"{base}/matrix", ""))
        gapm, gaqm = M.parse_matrix_text(sysfs.read(f"{base}/guest_matrix", ""))
        adm = M.parse_control_domains_text(sysfs.read(f"{base}/control_domains", ""))
        group = sysfs.readlink_name(f"{base}/iommu_group")
        in_use = any(by_apqn.get((a << 8) | q, QueueInfo(0, 0, None)).status == "in use"
                     for a in M.ids(apm) for q in M.ids(aqm))
        mdevs.append(MdevInfo(name, apm, aqm, adm, gapm, gaqm,
                              int(group) if group and group.isdigit() else None, in_use))
    avail = sysfs.read(f"{TYPE_DIR}/available_instances", "") if loaded else ""
    return ApHost(present=True, apmask=_read_mask(sysfs, "apmask", M.FULL),
                  aqmask=_read_mask(sysfs, "aqmask", M.FULL), max_adapter_id=max_ap,
                  max_domain_id=max_dom, config=config,
                  cards=tuple(sorted(cards, key=lambda c: c.apid)),
                  queues=tuple(sorted(queues, key=lambda q: (q.apid, q.apqi))),
                  vfio_ap_loaded=loaded, available_instances=int(avail) if avail.isdigit() else None,
                  mdevs=tuple(sorted(mdevs, key=lambda m: m.uuid)),
                  scans=_read_int(sysfs, f"{AP_BUS}/scans", 0))


def guest_name(uuid: str) -> str:
    """The name given to the (unknown) guest of an mdev whose queues report ``in use``."""
    return f"guest-of-{uuid}"


def system_from_host(host: ApHost) -> ApSystem:
    """A live model of ``host``: the same masks, devices, bindings and mdevs."""
    if not host.present:
        raise ModelError(errno.ENODEV, "no AP bus on this host (/sys/bus/ap is missing)")
    hardware = {c.apid: Card(c.apid, c.hwtype or 13, (c.type_name or "C")[-1:]) for c in host.cards}
    ap = ApSystem(max_adapter_id=host.max_adapter_id, max_domain_id=host.max_domain_id,
                  config=host.config, apmask=host.apmask, aqmask=host.aqmask, hardware=hardware,
                  vfio_ap_loaded=host.vfio_ap_loaded,
                  available_instances=host.available_instances or 0, populate=False)
    ap.bus.scans = host.scans
    for c in host.cards:
        card = hardware[c.apid]
        card.driver = c.driver
        ap.bus.cards[c.apid] = card
    for qi in host.queues:
        q = Queue(qi.apid, qi.apqi, qi.driver)
        ap.bus.queues[q.apqn] = q
    if ap.vfio is not None:
        for mi in host.mdevs:
            m = ap.vfio.mdevs.setdefault(mi.uuid, _mdev(mi, host))
            for a in M.ids(mi.apm):
                for d in M.ids(mi.aqm):
                    q = ap.bus.queues.get((a << 8) | d)
                    if q is not None and q.driver == VFIO_AP_DRIVER:
                        q.mdev = m.uuid
        groups = [m.iommu_group for m in ap.vfio.mdevs.values()]
        ap.vfio.next_iommu_group = max(groups, default=-1) + 1
    return ap


def _mdev(mi: MdevInfo, host: ApHost) -> Mdev:
    m = Mdev(mi.uuid, mi.apm, mi.aqm, mi.adm, mi.guest_apm, mi.guest_aqm,
             mi.adm & host.config.adm, iommu_group=mi.iommu_group or 0)
    if mi.in_use:
        m.guest, m.open_count = guest_name(mi.uuid), 1
        m.crycb = (m.shadow_apm, m.shadow_aqm, m.shadow_adm)
    return m


def load_system(sysfs: Sysfs) -> ApSystem:
    """:func:`read_host` then :func:`system_from_host`."""
    return system_from_host(read_host(sysfs))


def host_of(ctx: ValidationContext | None) -> ApHost | None:
    """The AP host as ``ctx.sysfs`` shows it, read once per validation run."""
    if ctx is None or ctx.sysfs is None:
        return None
    sysfs: Sysfs = ctx.sysfs
    return ctx.memo("vfio-ap.host", lambda: read_host(sysfs))


def few(names: list[str], n: int = 4) -> str:
    """The first ``n`` names, and how many more."""
    return ", ".join(names[:n]) + (f" and {len(names) - n} more" if len(names) > n else "")


def host_check(sysfs: Sysfs) -> list[HostFact]:
    """``vmctl_host_check``: the AP bus, the vfio_ap module, and free queues."""
    host = read_host(sysfs)
    if not host.present:
        return [HostFact("AP bus", False, "no /sys/bus/ap: not an s390 host with crypto adapters",
                         "vfio-ap machines run on IBM Z hosts only", plugin=PLUGIN)]
    by_driver: dict[str, int] = {}
    for q in host.queues:
        by_driver[q.driver or "unbound"] = by_driver.get(q.driver or "unbound", 0) + 1
    facts = [HostFact("AP bus", True, f"{len(host.cards)} adapters, {len(host.queues)} queues "
                      f"({', '.join(f'{n} {d}' for d, n in sorted(by_driver.items())) or 'none'}); "
                      f"ap_max_adapter_id {host.max_adapter_id}, ap_max_domain_id {host.max_domain_id}",
                      plugin=PLUGIN)]
    if not host.vfio_ap_loaded:
        facts.append(HostFact("vfio_ap module", False, "not loaded", "modprobe vfio_ap", plugin=PLUGIN))
        return facts
    ours = [q for q in host.queues if q.driver == "vfio_ap"]
    free = [q.name for q in ours if host.mdev_owning(q.apid, q.apqi) is None]
    facts.append(HostFact("vfio_ap module", True, f"{len(host.mdevs)} mdevs, "
                          f"{host.available_instances} more can be created", plugin=PLUGIN))
    facts.append(HostFact("free vfio_ap queues", bool(free), f"{len(free)} ({few(free)})" if free
                          else "none: every vfio_ap queue is assigned" if ours
                          else "none: apmask/aqmask reserve every queue for the host",
                          "clear apmask/aqmask bits to give queues to vfio_ap", plugin=PLUGIN))
    return facts
