"""Fake AP hosts: sysfs trees in the kernel's layout, driven by the model.

A fake tree is rendered from an :class:`~vmctl_vfio_ap.model.system.ApSystem` (:func:`render`), so
it always shows what the modelled kernel would show.  The fake-kernel handlers
(:func:`fake_kernel`, returned by the plugin's ``vmctl_fake_kernel`` hook) react to a
write by loading the model from the tree (:func:`vmctl_vfio_ap.host.load_system`), applying
the write — or raising the kernel's ``OSError`` — and syncing the tree back.

Layout written (kernel paths; links are stored relative, as sysfs does)::

    /sys/bus/ap/{apmask,aqmask,ap_adapter_mask,ap_usage_domain_mask,ap_control_domain_mask,
                 ap_max_adapter_id,ap_max_domain_id,bindings,scans}
    /sys/bus/ap/devices/{cardXX,XX.YYYY} -> ../../../devices/ap/cardXX[/XX.YYYY]
    /sys/bus/ap/drivers/{cex4card,cex4queue,vfio_ap}/{bind,unbind,<bound devices>}
    /sys/devices/ap/cardXX/{type,hwtype,raw_hwtype,online,config,chkstop,driver,subsystem}
    /sys/devices/ap/cardXX/XX.YYYY/{online,config,chkstop,driver,subsystem[,status]}
    /sys/devices/vfio_ap/matrix/{driver,subsystem}
    /sys/devices/vfio_ap/matrix/mdev_supported_types/vfio_ap-passthrough/
        {create,name,device_api,available_instances,devices/<uuid>}
    /sys/devices/vfio_ap/matrix/<uuid>/{assign_*,unassign_*,matrix,guest_matrix,
        control_domains,remove,mdev_type,driver,subsystem,iommu_group}
    /sys/bus/mdev/{devices,drivers/vfio_ap_mdev}/<uuid>
    /sys/kernel/iommu_groups/N/devices/<uuid>
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from pathlib import Path

from vmctl.api import FakeHost, FakeKernelHandler, Sysfs, mark_fake, tree_snapshot

from .host import load_system
from .model import masks as M
from .model.apbus import CARD_DRIVER, DEFAULT_QUEUE_DRIVER, VFIO_AP_DRIVER, ApConfig, Card
from .model.locks import LockingModel
from .model.system import AP_BUS, MATRIX, MDEV_ATTRS, TYPE_DIR, ApSystem

PLUGIN = "vfio-ap"
AP_DEV = "/sys/devices/ap"
MDEV_BUS = "/sys/bus/mdev"
MATRIX_BUS = "/sys/bus/matrix"
IOMMU_GROUPS = "/sys/kernel/iommu_groups"


@dataclass(frozen=True)
class Link:
    """A symlink to a kernel path."""

    target: str


Entry = str | Link | None
"""File text, a symlink, or ``None`` for a directory."""
Tree = dict[str, Entry]


def desired_tree(ap: ApSystem) -> Tree:
    """Every AP path the modelled kernel shows, with its content."""
    t: Tree = {}
    b = ap.bus
    for name in ("apmask", "aqmask", "ap_adapter_mask", "ap_usage_domain_mask",
                 "ap_control_domain_mask", "ap_max_adapter_id", "ap_max_domain_id"):
        t[f"{AP_BUS}/{name}"] = ap.read(f"{AP_BUS}/{name}")
    bound = sum(1 for q in b.queues.values() if q.driver)
    t[f"{AP_BUS}/scans"] = f"{b.scans}\n"
    t[f"{AP_BUS}/bindings"] = (f"{bound}/{len(b.queues)}"
                               f"{' (complete)' if b.scans and bound == len(b.queues) else ''}\n")
    drivers = [CARD_DRIVER, DEFAULT_QUEUE_DRIVER] + ([VFIO_AP_DRIVER] if ap.vfio else [])
    t[f"{AP_BUS}/devices"] = None
    t[IOMMU_GROUPS] = None
    for drv in drivers:
        t[f"{AP_BUS}/drivers/{drv}"] = None
        t[f"{AP_BUS}/drivers/{drv}/bind"] = ""
        t[f"{AP_BUS}/drivers/{drv}/unbind"] = ""
    for apid, card in sorted(b.cards.items()):
        base = f"{AP_DEV}/{card.name}"
        t[base] = None
        t[f"{AP_BUS}/devices/{card.name}"] = Link(base)
        for attr, value in (("type", card.type_name), ("hwtype", str(card.hwtype)),
                            ("raw_hwtype", str(card.hwtype)), ("online", "1"), ("config", "1"),
                            ("chkstop", "0")):
            t[f"{base}/{attr}"] = value + "\n"
        t[f"{base}/subsystem"] = Link(AP_BUS)
        if card.driver:
            t[f"{base}/driver"] = Link(f"{AP_BUS}/drivers/{card.driver}")
            t[f"{AP_BUS}/drivers/{card.driver}/{card.name}"] = Link(base)
    for _, q in sorted(b.queues.items()):
        base = f"{AP_DEV}/card{q.apid:02x}/{q.name}"
        t[base] = None
        t[f"{AP_BUS}/devices/{q.name}"] = Link(base)
        for attr in ("online", "config"):
            t[f"{base}/{attr}"] = "1\n"
        t[f"{base}/chkstop"] = "0\n"
        t[f"{base}/subsystem"] = Link(AP_BUS)
        if q.driver:
            t[f"{base}/driver"] = Link(f"{AP_BUS}/drivers/{q.driver}")
            t[f"{AP_BUS}/drivers/{q.driver}/{q.name}"] = Link(base)
        status = ap.queue_status(q.apid, q.apqi)
        if status is not None:
            t[f"{base}/status"] = status + "\n"
    if ap.vfio is not None:
        _matrix_tree(ap, t)
    return t


def _matrix_tree(ap: ApSystem, t: Tree) -> None:
    v = ap.driver
    t[MATRIX] = None
    t[f"{MATRIX}/driver"] = Link(f"{MATRIX_BUS}/drivers/vfio_ap")
    t[f"{MATRIX}/subsystem"] = Link(MATRIX_BUS)
    t[f"{MATRIX_BUS}/drivers/vfio_ap/matrix"] = Link(MATRIX)
    t[f"{MATRIX_BUS}/devices/matrix"] = Link(MATRIX)
    t[f"{TYPE_DIR}/create"] = ""
    for attr in ("name", "device_api", "available_instances"):
        t[f"{TYPE_DIR}/{attr}"] = ap.read(f"{TYPE_DIR}/{attr}")
    t[f"{TYPE_DIR}/devices"] = None
    t[f"{MDEV_BUS}/devices"] = None
    t[f"{MDEV_BUS}/drivers/vfio_ap_mdev"] = None
    for uuid, m in v.mdevs.items():
        base = f"{MATRIX}/{uuid}"
        t[base] = None
        for attr in MDEV_ATTRS + ("remove",):
            t[f"{base}/{attr}"] = ""
        for attr in ("matrix", "guest_matrix", "control_domains"):
            t[f"{base}/{attr}"] = ap.read(f"{base}/{attr}")
        t[f"{base}/mdev_type"] = Link(TYPE_DIR)
        t[f"{base}/driver"] = Link(f"{MDEV_BUS}/drivers/vfio_ap_mdev")
        t[f"{base}/subsystem"] = Link(MDEV_BUS)
        t[f"{base}/iommu_group"] = Link(f"{IOMMU_GROUPS}/{m.iommu_group}")
        t[f"{TYPE_DIR}/devices/{uuid}"] = Link(base)
        t[f"{MDEV_BUS}/devices/{uuid}"] = Link(base)
        t[f"{MDEV_BUS}/drivers/vfio_ap_mdev/{uuid}"] = Link(base)
        t[f"{IOMMU_GROUPS}/{m.iommu_group}"] = None
        t[f"{IOMMU_GROUPS}/{m.iommu_group}/devices"] = None
        t[f"{IOMMU_GROUPS}/{m.iommu_group}/devices/{uuid}"] = Link(base)


def sync_tree(sysfs: Sysfs, old: Tree, new: Tree) -> None:
    """Turn a tree showing ``old`` into one showing ``new``, touching only what differs.

    Entries equal in both are assumed to be on disk already (``old`` is what the tree was
    rendered from); a missing or different file or link is (re)written.
    """
    for path in sorted(set(old) - set(new), key=lambda p: -p.count("/")):
        p = sysfs.path(path)
        if old[path] is None:
            if p.is_dir() and not p.is_symlink() and not any(p.iterdir()):
                p.rmdir()
        else:
            sysfs.raw_unlink(path)
    for path, entry in sorted(new.items()):
        if path in old and old[path] == entry:
            continue
        p = sysfs.path(path)
        if entry is None:
            sysfs.raw_mkdir(path)
        elif isinstance(entry, Link):
            want = os.path.relpath(sysfs.path(entry.target), p.parent)
            if not p.is_symlink() or os.readlink(p) != want:
                sysfs.raw_symlink(path, entry.target)
        elif not p.is_file() or p.read_text() != entry:
            sysfs.raw_write(path, entry)


def render(sysfs: Sysfs, ap: ApSystem, old: Tree | None = None) -> None:
    """Write the model's state into the tree (``old``: what the tree showed before)."""
    sync_tree(sysfs, old or {}, desired_tree(ap))


def _lowest_free_group(sysfs: Sysfs, taken: set[int]) -> int:
    used = {int(n) for n in sysfs.listdir(IOMMU_GROUPS) if n.isdigit()} | taken
    return next(n for n in range(len(used) + 1) if n not in used)


def _handle(sysfs: Sysfs, kpath: str, value: str) -> None:
    ap = load_system(sysfs)
    old = desired_tree(ap)
    before = set(ap.vfio.mdevs) if ap.vfio else set()
    ap.write(kpath, value)
    if ap.vfio is not None:
        taken = {m.iommu_group for u, m in ap.vfio.mdevs.items() if u in before}
        for uuid, m in ap.vfio.mdevs.items():
            if uuid not in before:
                m.iommu_group = _lowest_free_group(sysfs, taken)
                taken.add(m.iommu_group)
    sync_tree(sysfs, old, desired_tree(ap))


def fake_kernel() -> list[FakeKernelHandler]:
    """``vmctl_fake_kernel``: handlers for every AP write a fake tree must react to, as the kernel would."""
    patterns = [f"{AP_BUS}/apmask", f"{AP_BUS}/aqmask", f"{AP_BUS}/scans",
                f"{AP_BUS}/drivers/*/bind", f"{AP_BUS}/drivers/*/unbind", f"{TYPE_DIR}/create"]
    for base in (MATRIX, f"{MDEV_BUS}/devices"):
        patterns += [f"{base}/*/{attr}" for attr in MDEV_ATTRS + ("remove",)]
    return [FakeKernelHandler(p, _handle, store=False, plugin=PLUGIN) for p in patterns]


# -- builders ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class MdevSpec:
    """An mdev to create in a built host; ``guest`` set means a running guest has it open."""

    uuid: str
    adapters: tuple[int, ...] = ()
    domains: tuple[int, ...] = ()
    control_domains: tuple[int, ...] = ()
    guest: str | None = None


def build_system(*, adapters: Iterable[int] = range(8), domains: Iterable[int] = range(16),
                 control_domains: Iterable[int] | None = None, max_adapter_id: int = 255,
                 max_domain_id: int = 255, apmask: int = M.FULL, aqmask: int = M.FULL,
                 card_types: dict[int, str] | None = None, vfio_ap_loaded: bool = True,
                 unbound: Iterable[str] = (), mdevs: Iterable[MdevSpec] = (),
                 locking: LockingModel = LockingModel.MERGED, experimental: bool = False) -> ApSystem:
    """A modelled host; every mdev is created and assigned through the kernel's rules.

    ``adapters``/``domains``/``control_domains`` form the host AP configuration (control
    domains default to the usage domains); ``card_types`` maps an adapter to ``"CEX7C"`` etc.;
    ``unbound`` queues are unbound from their driver; each :class:`MdevSpec` is created,
    assigned and, with a ``guest``, opened.
    """
    doms = tuple(domains)
    config = ApConfig(M.from_ids(adapters), M.from_ids(doms),
                      M.from_ids(doms if control_domains is None else control_domains))
    hardware = {a: Card(a, 6 + int(t[3:-1]), t[-1]) for a, t in (card_types or {}).items()}
    ap = ApSystem(max_adapter_id=max_adapter_id, max_domain_id=max_domain_id, config=config,
                  apmask=apmask, aqmask=aqmask, hardware=hardware, vfio_ap_loaded=vfio_ap_loaded,
                  locking=locking, experimental=experimental)
    for name in unbound:
        q = ap.bus.find_device(name)
        if q is not None and q.driver is not None:
            ap.write(f"{AP_BUS}/drivers/{q.driver}/unbind", name)
    for spec in mdevs:
        ap.write(f"{TYPE_DIR}/create", spec.uuid)
        for what, ids in (("adapter", spec.adapters), ("domain", spec.domains),
                          ("control_domain", spec.control_domains)):
            for n in ids:
                ap.write(f"{MATRIX}/{spec.uuid}/assign_{what}", str(n))
        if spec.guest:
            ap.open_mdev(spec.uuid, spec.guest)
    return ap


def build_host(root: str | os.PathLike[str], description: str = "fake s390 AP host",
               **kwargs: object) -> Sysfs:
    """Build a fake tree at ``root`` (see :func:`build_system` for the arguments)."""
    ap = build_system(**kwargs)  # type: ignore[arg-type]
    return write_host(root, ap, description)


def write_host(root: str | os.PathLike[str], ap: ApSystem, description: str = "fake s390 AP host") -> Sysfs:
    """Mark ``root`` fake and render ``ap`` into it; returns a handler-equipped Sysfs."""
    mark_fake(root, description)
    sysfs = Sysfs(root, handlers=fake_kernel())
    render(sysfs, ap)
    return sysfs


def snapshot(root: str | os.PathLike[str]) -> dict[str, str]:
    """Every file's content and every link's target under ``root`` (for byte-for-byte checks)."""
    return tree_snapshot(root)


# -- the scenarios of semantics.md §4.11 ----------------------------------------------------
UUID_A = "62177883-f1bb-47f0-914d-32a22e3a8804"
UUID_B = "7e270a25-e163-4922-af60-757fc8ed48c6"
NOT_HOST = M.FULL & ~M.from_ids(range(8))
"""An apmask handing adapters 0–7 to vfio_ap."""


def _scenario_specs() -> dict[str, tuple[str, Callable[[], ApSystem]]]:
    return {
        "shared-apqn": ("§4.11.1: mdev A has 01–02 × 0005–0006; B is empty", lambda: build_system(
            adapters=range(4), domains=(5, 6, 7), apmask=NOT_HOST,
            mdevs=[MdevSpec(UUID_A, (1, 2), (5, 6)), MdevSpec(UUID_B)])),
        "host-owned-apqn": ("§4.11.2: 05.0004 belongs to the host; an empty mdev", lambda: build_system(
            adapters=(4, 5), domains=(4, 5), aqmask=M.bit(4), mdevs=[MdevSpec(UUID_A)])),
        "id-limits": ("§4.11.3: an empty mdev on an APXA machine (ids 0..255)", lambda: build_system(
            adapters=(3,), domains=(0,), apmask=NOT_HOST, mdevs=[MdevSpec(UUID_A)])),
        "unbound-queue": ("§4.11.4: 03–04 × 0047 assigned, 04.0047 unbound, guest running",
                          lambda: build_system(
                              adapters=(3, 4), domains=(0x47,), apmask=NOT_HOST, unbound=["04.0047"],
                              mdevs=[MdevSpec(UUID_A, (3, 4), (0x47,), guest="vm1")])),
        "mask-takes-assigned": ("§4.11.5: 03.0047 for vfio_ap (apmask bit 3 clear), assigned",
                                lambda: build_system(
                                    adapters=(3,), domains=(0x47,), apmask=M.FULL & ~M.bit(3),
                                    mdevs=[MdevSpec(UUID_A, (3,), (0x47,))])),
        "shared-control-domain": ("§4.11.8: two empty mdevs, control domain 0047 configured",
                                  lambda: build_system(adapters=(1,), domains=(0x47,), apmask=NOT_HOST,
                                                       mdevs=[MdevSpec(UUID_A), MdevSpec(UUID_B)])),
    }


SCENARIOS = tuple(_scenario_specs())


def scenario_system(name: str) -> ApSystem:
    """The model of a named §4.11 scenario (``SCENARIOS``)."""
    return _scenario_specs()[name][1]()


def build_scenario(root: str | os.PathLike[str], name: str) -> Sysfs:
    """A fake tree of a named §4.11 scenario."""
    desc, make = _scenario_specs()[name]
    return write_host(root, make(), desc)


def fake_host(root: str | os.PathLike[str], scenario: str | None = None, **options: Any) -> None:
    """The ``ap`` fake host of ``vmctl_fake_hosts``: ``build_host(**options)``, or a scenario."""
    if scenario is None:
        build_host(root, **options)
    elif scenario not in SCENARIOS:
        raise ValueError(f"unknown AP scenario {scenario!r}; one of {list(SCENARIOS)}")
    else:
        build_scenario(root, scenario)


def fake_hosts() -> list[FakeHost]:
    """``vmctl_fake_hosts``: the ``ap`` host (:func:`fake_host`) and its scenarios."""
    return [FakeHost("ap", "the s390 AP bus, masks and matrix mdevs", fake_host, tuple(SCENARIOS))]
