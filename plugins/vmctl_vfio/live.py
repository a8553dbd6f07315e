"""Reading VFIO from a running instance for ``vmctl status`` and the TUI.  Pure parsers.

The probe (:func:`live_probe`) per backend:

* **sim** — ``__org.vmctl_query-device {"plugin": "vfio"}``: the device model's state
  (:meth:`vmctl_vfio.sim.VfioSimDevice.state`): group, driver, pinned vs mapped pages,
  fault rate and its history.
* **qemu** — ``query-pci``: which of the machine's devices QEMU shows, at which guest
  address (matched by the TOML ``id``, which vmctl passes as the QEMU id).  Pinned or
  mapped pages are not visible over QMP.

:func:`tui_panels` declares the ``vmctl monitor`` panel (:mod:`vmctl_vfio.panel`, imported
by the TUI only) and :func:`headline` is ``vmctl top``'s column.  No Textual here.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from typing import TYPE_CHECKING, Any

from vmctl.api import LiveProbe, PanelSpec

from .settings import VfioDev, vfio_devices

if TYPE_CHECKING:  # pragma: no cover
    from vmctl.api import LiveState, Machine


def live_probe(machine: Machine, backend: str) -> LiveProbe | None:
    devs = [d for d in vfio_devices(machine) if d.address]
    if not devs:
        return None
    if backend == "sim":
        return LiveProbe((("__org.vmctl_query-device", {"plugin": "vfio"}),), parse_sim)
    return LiveProbe((("query-pci", {}),), partial(parse_query_pci, devs))


MiB = 1 << 20
PAGE = 4096
#: Per-second samples kept in ``fault_rate_history`` (the TUI's sparkline, ``status``).
HISTORY = 60
_DEVICE_KEYS = ("key", "id", "host", "group", "driver", "iommu", "memory", "guest_pages",
                "mapped_pages", "locked_pages", "faults", "fault_rate", "transfers",
                "aborted", "dma", "resets", "iopf")


def parse_sim(results: list[Any]) -> dict[str, Any]:
    """The device model's state, shaped for people first: one summary line per device
    (keyed by its id), then ``devices`` with the numbers and the recent fault rates."""
    state = results[0] if results else {}
    if not isinstance(state, dict):
        return {"value": state}
    if state.get("status") != "ok":
        return dict(state)
    out: dict[str, Any] = {"memory": f"{state.get('guest_bytes', 0) // MiB} MiB guest RAM, "
                                     f"{state.get('locked_bytes', 0) // MiB} MiB locked"}
    devices = []
    for d in state.get("devices", []):
        out[d.get("id") or d.get("key", "?")] = (
            f"{d.get('host')} group {d.get('group')} on {d.get('driver')}, {d.get('iommu')}, "
            f"{d.get('memory')}: mapped {d.get('mapped_pages', 0) * PAGE // MiB} MiB, locked "
            f"{d.get('locked_pages', 0) * PAGE // MiB} MiB, {d.get('fault_rate', 0)} faults/s")
        row = {k: d[k] for k in _DEVICE_KEYS if k in d}
        row["fault_rate_history"] = [h.get("faults_per_s", 0)
                                     for h in d.get("history", [])][-HISTORY:]
        devices.append(row)
    out["devices"] = devices
    if state.get("dropped_transfers"):
        out["dropped_transfers"] = state["dropped_transfers"]
    return out


def _walk(devices: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for dev in devices or ():
        out.append(dev)
        bridge = dev.get("pci_bridge") or {}
        out += _walk(bridge.get("devices") or [])
    return out


def parse_query_pci(devs: list[VfioDev], results: list[Any]) -> dict[str, Any]:
    """``{"devices": [{key, id, host, present, guest_address?, class?}], "memory": …}``."""
    seen = {}
    for bus in results[0] if results else ():
        for dev in _walk(bus.get("devices") or []):
            if dev.get("qdev_id"):
                seen[dev["qdev_id"]] = dev
    out = []
    for d in devs:
        row: dict[str, Any] = {"key": d.key, "id": d.id, "host": d.address,
                               "iommu": d.iommu}
        found = seen.get(d.id or "")
        if d.id is None:
            row["present"] = None
            row["note"] = "no id in the TOML: QEMU's device cannot be told apart"
        elif found is None:
            row["present"] = False
        else:
            row["present"] = True
            row["guest_address"] = (f"{found.get('bus', 0):02x}:{found.get('slot', 0):02x}"
                                    f".{found.get('function', 0)}")
            row["class"] = (found.get("class_info") or {}).get("desc")
        out.append(row)
    return {"devices": out,
            "memory": "pinned by QEMU's VFIO container (not visible over QMP)"}


# -- the TUI: panel declaration and vmctl top's headline ----------------------------------------
def tui_panels(machine: Machine) -> list[PanelSpec] | None:
    """``vmctl_tui_panels``: the VFIO panel when the machine passes a device through."""
    if not any(d.address for d in vfio_devices(machine)):
        return None
    return [PanelSpec("VFIO passthrough", "vmctl_vfio.panel:VfioPanel", headline=headline)]


def state_devices(state: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The per-device rows of a state (``devices``), ignoring anything malformed."""
    devs = state.get("devices")
    return [d for d in devs if isinstance(d, Mapping)] if isinstance(devs, list) else []


def headline(state: LiveState) -> str:
    """``vmctl top``'s column: ``278 f/s, 74% mapped`` (IOPF devices on the simulator),
    ``4.0G pinned`` (the simulator), ``1/2 in guest`` (QEMU) or ``-``."""
    devs = state_devices(state)
    if not devs:
        return "-"
    if state.backend == "qemu":                      # query-pci: where, not memory
        present = sum(1 for d in devs if d.get("present"))
        return f"{present}/{len(devs)} in guest"
    iopf = [d for d in devs if "iopf" in d]
    if iopf:
        rate = sum(int(d.get("fault_rate", 0)) for d in iopf)
        guest = max(int(iopf[0].get("guest_pages", 0)), 1)
        return f"{rate} f/s, {100 * int(iopf[0].get('mapped_pages', 0)) // guest}% mapped"
    locked = max(int(d.get("locked_pages", 0)) for d in devs) * PAGE
    return f"{locked / (1 << 30):.1f}G pinned"
