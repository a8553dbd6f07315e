"""Reading the live interrupt mode of a running machine (``vmctl status``, the TUI).

* **sim**: ``__org.vmctl_query-device {"plugin": "spapr-irq"}`` — the device's state:
  mode, controller, CAS time, interrupts per vCPU and per source.
* **qemu**: ``human-monitor-command "info pic"`` parsed with
  :func:`~vmctl_spapr_irq.model.info_pic.parse_info_pic`. QEMU 7.2 switches the controller at
  CAS without any event, so callers poll. QEMU keeps no interrupt counters for pseries
  (``info irq``: "IRQ statistics not available"); in XIVE mode each vCPU's event-queue
  index (events written since the guest set the queue up, modulo its 16384 entries) is the
  closest real counter and is reported as ``eq_index``.

Both give ``{"mode", "controller", ...}`` so the status line reads the same.

Also here: the panel declaration for ``vmctl monitor`` (:func:`tui_panels`; the Textual
panel itself is in ``panel.py``) and ``vmctl top``'s column (:func:`headline`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from vmctl.api import LiveProbe, PanelSpec
from .model.info_pic import parse_info_pic


def parse_sim(returns: list[Any]) -> dict[str, Any]:
    state = returns[0] if returns and isinstance(returns[0], dict) else {}
    return {"source": "sim", **state}


def parse_qemu(returns: list[Any]) -> dict[str, Any]:
    """``info pic`` text → mode, controller, vCPUs, sources, per-vCPU EQ index."""
    text = returns[0] if returns and isinstance(returns[0], str) else ""
    try:
        pic = parse_info_pic(text)
    except ValueError:
        return {"source": "info pic", "mode": None, "controller": None, "error": text.strip()[:200]}
    sources = pic["sources"]
    out: dict[str, Any] = {"source": "info pic", "mode": pic["mode"], "controller": pic["controller"],
                           "cpus": len(pic["cpus"]), "sources": len(sources),
                           "routed": sum(1 for s in sources if not s["masked"])}
    if pic["mode"] == "xive":
        eq_index: dict[str, int] = {}
        for src in sources:
            if src["eq"] is not None:
                eq_index[str(src["server"])] = src["eq"]["index"]
        out["eq_index"] = dict(sorted(eq_index.items(), key=lambda kv: int(kv[0])))
    return out


def live_probe(machine: Any, backend: str) -> LiveProbe | None:
    """The probe for ``backend`` (``sim`` or ``qemu``); None for a machine without sPAPR interrupts."""
    from .settings import read

    if not read(machine).pseries:
        return None
    if backend == "sim":
        return LiveProbe((("__org.vmctl_query-device", {"plugin": "spapr-irq"}),), parse_sim)
    return LiveProbe((("human-monitor-command", {"command-line": "info pic"}),), parse_qemu)


def tui_panels(machine: Any) -> list[PanelSpec] | None:
    """The interrupt controller panel for pseries machines (``vmctl monitor``/``top``)."""
    from .settings import read

    if not read(machine).pseries:
        return None
    return [PanelSpec("Interrupt controller", f"{__package__}.panel:IrqPanel", headline=headline)]


def headline(state: Mapping[str, Any]) -> str:
    """``vmctl top``'s column: ``xive/kvm``, ``xics/emu``, or ``-``."""
    mode = state.get("mode")
    if not mode:
        return "-"
    where = {"kvm": "kvm", "emulated": "emu"}.get(str(state.get("controller")), "?")
    return f"{mode}/{where}"
