"""Pre-launch checks of ``vfio-ap`` devices (semantics.md §4.10), alone and across machines.

==============================  ========  ====================================================
code                            severity  when
==============================  ========  ====================================================
``ap-no-apqn``                  error     no adapter or no domain: the guest gets no queue
``ap-duplicate-id``             warning   an id is listed twice
``ap-needs-kvm``                error     ``--backend qemu`` and ``accel`` is not ``"kvm"``
``ap-tcg-simulated``            note      the simulator runs it without KVM; QEMU would not
``ap-no-ap-bus``                error     (``--host``) no ``/sys/bus/ap``: not an s390 host
``ap-vfio-ap-missing``          error     (``--host``) the vfio_ap module is not loaded
``ap-id-above-max``             error     (``--host``) an id above ``ap_max_*_id`` (ENODEV)
``ap-host-owned``               note      (``--host``) APQNs reserved for the host: ``host apply``
                                          changes apmask/aqmask first
``ap-filtered``                 warning   (``--host``) a queue is missing: its adapter will be
                                          filtered from the guest
``ap-apqn-shared``              error     (fleet) an APQN in two machines (EADDRINUSE)
``ap-apqn-in-use``              error     (fleet, ``--host``) an APQN in a live mdev the machine
                                          does not own (EADDRINUSE)
``ap-uuid-shared``              error     (fleet) two machines ask for one mdev UUID
``ap-control-domain-shared``    note      (fleet) a control domain in several machines: allowed
==============================  ========  ====================================================

The AP CPU features (``ap``, ``apqci``, ``apft``) are not checked: vmctl adds them to ``-cpu``
itself, and ``machine.cpu`` cannot carry properties (so ``apft=off`` cannot be written).
A second vfio-ap device is refused by the schema (``max_per_machine = 1``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from .host import ApHost, host_of
from .model import masks as M
from .settings import ApDevice, ap_devices

if TYPE_CHECKING:  # pragma: no cover
    from vmctl.api import Machine
    from vmctl.api import Diagnostic, ValidationContext

AP_MASKS_HINT = "see them with `vmctl ap show`; `vmctl host apply` plans the changes"


def validate_machine(machine: Machine, ctx: ValidationContext) -> list[Diagnostic]:
    out: list[Diagnostic] = []
    for dev in ap_devices(machine):
        out += _alone(machine, dev)
        out += _backend(machine, dev, ctx.backend)
        host = host_of(ctx)
        if host is not None:
            out += _against_host(machine, dev, host)
    return out


def _alone(machine: Machine, dev: ApDevice) -> list[Diagnostic]:
    out = []
    for field, ids in (("adapters", dev.adapters), ("domains", dev.domains)):
        if not ids:
            out.append(machine.error(
                "ap-no-apqn", f"{dev.key}.{field}",
                f"{field} is empty: the guest would get no AP queue (APQNs are adapters × domains)",
                f"list at least one {field[:-1]}, e.g. {field} = [5]"))
    for field, ids in (("adapters", dev.adapters), ("domains", dev.domains),
                       ("control-domains", dev.control_domains)):
        if len(set(ids)) == len(ids):
            continue
        dups = sorted({i for i in ids if ids.count(i) > 1})
        if dups:
            out.append(machine.warning(
                "ap-duplicate-id", f"{dev.key}.{field}",
                f"{field} lists {', '.join(f'0x{i:02x}' for i in dups)} more than once",
                "each id is assigned once; remove the repetition"))
    return out


def _backend(machine: Machine, dev: ApDevice, backend: str) -> list[Diagnostic]:
    accel = str(machine.section("machine").get("accel", "auto"))
    if accel == "kvm":
        return []
    if backend == "qemu":
        return [machine.error(
            "ap-needs-kvm", "machine.accel",
            f"accel = {accel!r}: QEMU offers AP passthrough ({dev.key}) only under KVM on an "
            "s390 host; under TCG it refuses the AP CPU features and has no 'ap-bus' for "
            "-device vfio-ap",
            'set accel = "kvm" and run on an IBM Z host with the vfio_ap module loaded')]
    return [machine.note(
        "ap-tcg-simulated", "machine.accel",
        f"accel = {accel!r}: the simulator models {dev.key}, but real QEMU runs vfio-ap only "
        "with KVM", 'set accel = "kvm" before `vmctl run --backend qemu`')]


def _against_host(machine: Machine, dev: ApDevice, host: ApHost) -> list[Diagnostic]:
    if not host.present:
        return [machine.error(
            "ap-no-ap-bus", dev.key, "this host has no AP bus (/sys/bus/ap): it is not an s390 "
            "host with crypto adapters", "run vmctl on the IBM Z host (or pass --sysfs-root)")]
    out = []
    if not host.vfio_ap_loaded:
        out.append(machine.error(
            "ap-vfio-ap-missing", dev.key, "the vfio_ap module is not loaded "
            "(/sys/devices/vfio_ap/matrix is missing)", "modprobe vfio_ap"))
    too_high = False
    for field, ids, limit, name in (
            ("adapters", dev.adapters, host.max_adapter_id, "ap_max_adapter_id"),
            ("domains", dev.domains, host.max_domain_id, "ap_max_domain_id"),
            ("control-domains", dev.control_domains, host.max_domain_id, "ap_max_domain_id")):
        high = sorted({i for i in ids if i > limit})
        if high:
            too_high = True
            out.append(machine.error(
                "ap-id-above-max", f"{dev.key}.{field}",
                f"{field} {', '.join(f'0x{i:02x} ({i})' for i in high)} above this host's "
                f"{name} {limit}: the kernel refuses the assignment with ENODEV",
                f"this machine has ids 0..{limit}; {AP_MASKS_HINT}"))
    if too_high:
        return out
    owned = [M.format_apqn(a, d) for a, d in dev.apqns if host.host_owned(a, d)]
    if owned:
        out.append(machine.note(
            "ap-host-owned", dev.key,
            f"{len(owned)} APQN{'s' if len(owned) != 1 else ''} ({_few(owned)}) "
            "reserved for the host's zcrypt drivers by apmask/aqmask",
            "`vmctl host apply` clears the mask bits first (dry run without --apply)"))
    cfg = host.config
    for a in sorted(set(dev.adapters)):
        missing = [M.format_apqn(a, d) for d in sorted(set(dev.domains))
                   if host.queue(a, d) is None]
        if missing:
            why = ("the adapter is not in the host's AP configuration" if not M.test(cfg.apm, a)
                   else f"no queue device {_few(missing)}")
            out.append(machine.warning(
                "ap-filtered", f"{dev.key}.adapters",
                f"adapter 0x{a:02x} will be filtered from the guest: {why}",
                "the guest gets it once every queue of the adapter exists and is bound to "
                "vfio_ap (hot plug); " + AP_MASKS_HINT))
    return out


def _few(names: list[str], n: int = 3) -> str:
    return ", ".join(names[:n]) + (f" and {len(names) - n} more" if len(names) > n else "")


def validate_fleet(machines: Sequence[Machine], ctx: ValidationContext) -> list[Diagnostic]:
    """APQN exclusivity across machines and live mdevs, in time linear in the APQNs."""
    host = host_of(ctx)
    live: dict[int, str] = {}
    if host is not None and host.present:
        for mi in host.mdevs:
            for a in M.ids(mi.apm):
                for d in M.ids(mi.aqm):
                    live.setdefault((a << 8) | d, mi.uuid)
    owner: dict[int, tuple[Machine, ApDevice]] = {}
    uuids: dict[str, tuple[Machine, ApDevice]] = {}
    cdoms: dict[int, list[tuple[Machine, ApDevice]]] = {}
    out: list[Diagnostic] = []
    for m in machines:
        for dev in ap_devices(m):
            first_uuid = uuids.setdefault(dev.uuid, (m, dev))
            if first_uuid[0] is not m:
                out.append(m.error(
                    "ap-uuid-shared", f"{dev.key}.uuid" if dev.uuid_given else dev.key,
                    f"mdev {dev.uuid} is also asked for by machine {first_uuid[0].name!r} "
                    f"({_where(*first_uuid)})", "give each machine its own uuid (or leave it "
                    "out: vmctl derives one from the machine name)"))
            shared: dict[int, tuple[tuple[Machine, ApDevice], list[str]]] = {}
            in_use: dict[str, list[str]] = {}
            mine = (m, dev)
            for a, d in dev.apqns:
                apqn = (a << 8) | d
                first = owner.setdefault(apqn, mine)
                if first[0] is not m:
                    shared.setdefault(id(first[0]), (first, []))[1].append(M.format_apqn(a, d))
                mdev = live.get(apqn)
                if mdev is not None and mdev != dev.uuid:
                    in_use.setdefault(mdev, []).append(M.format_apqn(a, d))
            for (om, od), names in shared.values():
                out.append(m.error(
                    "ap-apqn-shared", dev.key,
                    f"APQN {_few(names)} also given to machine {om.name!r} ({_where(om, od)}): "
                    "an AP queue belongs to one guest (the kernel refuses with EADDRINUSE)",
                    "change adapters or domains so the two machines' adapters × domains do "
                    "not overlap (control domains may be shared)"))
            for mdev, names in in_use.items():
                out.append(m.error(
                    "ap-apqn-in-use", dev.key,
                    f"APQN {_few(names)} already assigned to live mdev {mdev}, which is not this "
                    f"machine's ({dev.uuid}): the kernel refuses with EADDRINUSE",
                    f"unassign it from {mdev} (or remove that mdev) first; `vmctl ap show` lists "
                    "the mdevs"))
            for c in sorted(set(dev.control_domains)):
                cdoms.setdefault(c, []).append((m, dev))
    for c, users in sorted(cdoms.items()):
        (m, dev), others = users[0], [u[0].name for u in users[1:] if u[0] is not users[0][0]]
        if others:
            out.append(m.note(
                "ap-control-domain-shared", f"{dev.key}.control-domains",
                f"control domain 0x{c:02x} is also given to {_few(others)}: allowed, "
                "control domains are not exclusive"))
    return out


def _where(m: Machine, dev: ApDevice) -> str:
    src = m.source(dev.key)
    return f"{src.file}:{src.line}, {dev.key}"
