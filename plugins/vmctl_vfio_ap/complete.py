"""Shell completion of AP resources: free APQNs, adapters and usage domains of the host.

Runs on every TAB: it reads sysfs once and imports only this plugin's pure modules.
"""

from __future__ import annotations

from vmctl.api import Sysfs

from .host import read_host

KINDS = ("apqn", "adapter", "domain")


def complete(kind: str, incomplete: str, sysfs: Sysfs) -> list[tuple[str, str]] | None:
    """``(value, description)`` pairs for ``kind``; None for kinds this plugin does not know."""
    if kind not in KINDS:
        return None
    host = read_host(sysfs)
    if not host.present:
        return []
    out: list[tuple[str, str]] = []
    if kind == "apqn":
        for q in host.queues:
            owner = host.mdev_owning(q.apid, q.apqi)
            if host.host_owned(q.apid, q.apqi):
                desc = "host (apmask/aqmask)"
            elif owner is not None:
                desc = f"assigned to mdev {owner.uuid}"
            else:
                desc = f"free ({q.driver or 'unbound'})"
            out.append((q.name, desc))
    elif kind == "adapter":
        for c in host.cards:
            n = sum(1 for q in host.queues if q.apid == c.apid and q.driver == "vfio_ap")
            out.append((f"0x{c.apid:02x}", f"card{c.apid:02x} {c.type_name}, {n} queues on vfio_ap"))
    else:
        for d in sorted({q.apqi for q in host.queues}):
            n = sum(1 for q in host.queues if q.apqi == d and q.driver == "vfio_ap")
            out.append((f"0x{d:04x}", f"usage domain, {n} queues on vfio_ap"))
    return [(v, d) for v, d in out if v.startswith(incomplete)]
