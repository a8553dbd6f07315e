"""Reading the live interrupt mode of a running machine (``vmctl status``, the TUI).

* **sim**: ``__org.vmctl_query-device {"plugin": "spapr-irq"}`` — the device's state:
  mode, controller, CAS time, interrupts per vCPU and per source.
* **qemu**: ``human-monitor-command "info pic"`` parsed with
  :func:`~vmctl_spapr_irq.model.info_pic.parse_info_pic`. QEMU 7.2 switches the controller at
  CAS without any event, so callers poll. QEMU keeps no interrupt counters for pseries
  (``info irq``: "IRQ statistics not available"); in XIVE mode each vCPU's event-queue
  index (events written since the guest set the queue up, modulo its 16384 entries) is the
  closest real counter and is reported as ``eq_index``.

Both give ``{"mode", "controller", "state", ...}`` so the status line reads the same.
``state`` says whether CAS has happened: ``before-cas`` (the controller shown is the
firmware's default, XIVE only for ``ic-mode = "xive"``), then ``negotiated``.  The
simulator knows; QEMU 7.2 keeps no trace of CAS that QMP can read, so on QEMU the probe
also asks for ``query-status`` and the console log's last :data:`CONSOLE_LINES` lines
and decides:

* ``prelaunch`` (``-S``, or a reset while stopped): ``before-cas``;
* the controller is not the firmware default (dual → XIVE): ``negotiated``;
* the guest kernel has printed (a ``[    0.000000] …`` line): ``negotiated`` — Linux
  calls CAS in ``prom_init``, before its first printk;
* the console holds :data:`CONSOLE_LINES` lines without one (userspace chatter; SLOF and
  VOF print fewer): ``negotiated``;
* else ``before-cas``.

Only the lines after the last reset count: vmctl's QMP multiplexer writes
``vmctl: qmp: guest reset (RESET event)`` into the console log at every ``RESET`` event,
so after a ``system_reset`` the state is ``before-cas`` again until the new kernel prints.

Also here: the panel declaration for ``vmctl monitor`` (:func:`tui_panels`; the Textual
panel itself is in ``panel.py``) and ``vmctl top``'s column (:func:`headline`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import partial
from typing import Any

from vmctl.api import LiveProbe, PanelSpec

from .model.info_pic import parse_info_pic

#: How many console lines the QEMU probe reads to tell whether the guest kernel started.
CONSOLE_LINES = 200
#: A printk line: the guest kernel runs, so its ``prom_init`` has made the CAS call.
PRINTK = re.compile(r"^\[\s*\d+\.\d+\] ")
#: The line vmctl's QMP multiplexer writes to the console log at each guest reset.
RESET_MARK = "guest reset (RESET event)"


def parse_sim(returns: list[Any]) -> dict[str, Any]:
    state = returns[0] if returns and isinstance(returns[0], dict) else {}
    return {"source": "sim", **state}


def cas_state(mode: str | None, firmware_mode: str, run_state: str | None,
              console: list[str]) -> str:
    """``before-cas`` or ``negotiated`` on QEMU (the rules are in the module docstring)."""
    if run_state == "prelaunch":
        return "before-cas"
    for i in range(len(console) - 1, -1, -1):
        if RESET_MARK in console[i]:
            console = console[i + 1:]
            break
    if mode and mode != firmware_mode:
        return "negotiated"
    if any(PRINTK.match(line) for line in console) or len(console) >= CONSOLE_LINES:
        return "negotiated"
    return "before-cas"


def parse_qemu(returns: list[Any], firmware_mode: str = "xics") -> dict[str, Any]:
    """``info pic`` text (then ``query-status`` and console lines, when given) → mode,
    controller, CAS state, vCPUs, sources, per-vCPU EQ index."""
    text = returns[0] if returns and isinstance(returns[0], str) else ""
    status = returns[1] if len(returns) > 1 and isinstance(returns[1], dict) else {}
    console = returns[2] if len(returns) > 2 and isinstance(returns[2], list) else []
    try:
        pic = parse_info_pic(text)
    except ValueError:
        return {"source": "info pic", "mode": None, "controller": None, "error": text.strip()[:200]}
    sources = pic["sources"]
    out: dict[str, Any] = {"source": "info pic", "mode": pic["mode"], "controller": pic["controller"],
                           "cpus": len(pic["cpus"]), "sources": len(sources),
                           "routed": sum(1 for s in sources if not s["masked"])}
    if len(returns) > 1:
        out["state"] = cas_state(pic["mode"], firmware_mode, status.get("status"),
                                 [str(line) for line in console])
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
    firmware_mode = "xive" if read(machine).ic_mode == "xive" else "xics"
    return LiveProbe((("human-monitor-command", {"command-line": "info pic"}),
                      ("query-status", {})),
                     partial(parse_qemu, firmware_mode=firmware_mode), console=CONSOLE_LINES)


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
    return f"{mode}/{where}" + (" pre-CAS" if state.get("state") == "before-cas" else "")
