"""Reading a running machine's AP passthrough (``vmctl status``, the TUI).

* **sim**: ``__org.vmctl_query-device {"plugin": "vfio-ap"}`` — the device's state: matrix,
  guest matrix, APQNs filtered out and why, hot-plug counters by trigger, requests.
* **qemu**: QEMU keeps no AP state beyond the device itself; ``info qtree`` shows whether
  the ``vfio-ap`` device is realised on the guest's ``ap-bus`` and which mdev it uses
  (the guest's view is the mdev's ``guest_matrix`` on the host: ``vmctl ap show``).

:func:`tui_panels` declares the ``vmctl monitor`` panel (:mod:`.panel`, imported only by the
TUI) with :func:`headline`, ``vmctl top``'s column.  No Textual here.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from vmctl.api import LiveProbe, LiveState, PanelSpec

_DEV = re.compile(r'^(\s*)dev: vfio-ap, id "(.*)"$')
_SYSFSDEV = re.compile(r'^\s*sysfsdev = "(.*)"$')


def parse_sim(returns: list[Any]) -> dict[str, Any]:
    state = returns[0] if returns and isinstance(returns[0], dict) else {}
    return {"source": "sim", **state}


def parse_qtree(returns: list[Any]) -> dict[str, Any]:
    """``info qtree`` text → whether a vfio-ap device is realised, its id and sysfsdev."""
    text = returns[0] if returns and isinstance(returns[0], str) else ""
    out: dict[str, Any] = {"source": "info qtree", "present": False}
    lines = text.splitlines()
    for i, line in enumerate(lines):
        m = _DEV.match(line)
        if not m:
            continue
        out.update(present=True, id=m.group(2) or None)
        indent = len(m.group(1))
        for follow in lines[i + 1:]:
            if follow.strip() and len(follow) - len(follow.lstrip()) <= indent:
                break
            s = _SYSFSDEV.match(follow)
            if s:
                out["sysfsdev"] = s.group(1)
                out["uuid"] = s.group(1).rstrip("/").rsplit("/", 1)[-1]
        break
    return out


def live_probe(machine: Any, backend: str) -> LiveProbe | None:
    from .settings import ap_devices

    if not ap_devices(machine):
        return None
    if backend == "sim":
        return LiveProbe((("__org.vmctl_query-device", {"plugin": "vfio-ap"}),), parse_sim)
    return LiveProbe((("human-monitor-command", {"command-line": "info qtree"}),), parse_qtree)


def headline(state: LiveState) -> str:
    """``vmctl top``'s column: ``3/4 apqn`` (guest/assigned), ``vfio-ap`` on QEMU, or ``-``."""
    if state.backend == "qemu":
        return "vfio-ap" if state.get("present") else "-"
    matrix = state.get("matrix")
    if not isinstance(matrix, Sequence):
        return "-"
    guest = state.get("guest_apqns") or []
    return f"{len(guest)}/{len(matrix)} apqn"


def tui_panels(machine: Any) -> list[PanelSpec] | None:
    """``vmctl_tui_panels``: the AP passthrough panel, for machines with a vfio-ap device."""
    if not machine.devices_of("vfio-ap"):
        return None
    return [PanelSpec("AP crypto passthrough", "vmctl_vfio_ap.panel:ApPanel", headline=headline)]
