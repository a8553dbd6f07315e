"""The watchdog's live state for ``vmctl status`` and the TUI, on both backends. Pure parsers.

* **sim** — ``__org.vmctl_query-device {"plugin": …}`` returns
  :meth:`~vmctl_i6300esb.sim.WatchdogDevice.state` (stage, time left, pings, expiries…).
* **qemu** — QEMU does not expose the timer over QMP; ``query-status`` tells whether the
  watchdog paused the machine (run state ``watchdog``, with ``action = "pause"``).
"""

from __future__ import annotations

from functools import partial
from typing import Any

from vmctl.api import LiveProbe, LiveState, PanelSpec

from .schema import KIND, PLUGIN


def live_probe(machine: Any, backend: str) -> LiveProbe | None:
    if not machine.devices_of(KIND):
        return None
    if backend == "sim":
        return LiveProbe((("__org.vmctl_query-device", {"plugin": PLUGIN}),), parse_sim)
    action = machine.devices_of(KIND)[0][1].get("action", "reset")
    return LiveProbe((("query-status", {}),), partial(parse_qemu, action))


def parse_sim(results: list[Any]) -> dict[str, Any]:
    state = results[0] if results else {}
    return dict(state) if isinstance(state, dict) else {"status": "unreadable", "value": state}


def parse_qemu(action: str, results: list[Any]) -> dict[str, Any]:
    status = (results[0] or {}).get("status", "unknown") if results else "unknown"
    return {"action": action, "run_state": status, "paused_by_watchdog": status == "watchdog",
            "timer": "not readable over QMP on QEMU"}


def tui_panels(machine: Any) -> list[PanelSpec] | None:
    """The watchdog's panel in ``vmctl monitor`` and its column in ``vmctl top``."""
    if not machine.devices_of(KIND):
        return None
    return [PanelSpec("Watchdog (i6300esb)", "vmctl_i6300esb.panel:WatchdogPanel", headline=headline)]


def headline(state: LiveState) -> str:
    """The short text ``vmctl top`` shows: ``"12.3s reset"``, ``"off"``, ``"fired 2×"``."""
    if state.get("status") == "failed":
        return "failed"
    if state.get("paused_by_watchdog"):
        return "fired (paused)"
    left = state.get("time_left")
    fired = int(state.get("expiries", 0) or 0)
    text = f"{left:.1f}s {state.get('action', '')}".strip() if isinstance(left, (int, float)) else "off"
    return f"{text} fired {fired}×" if fired else text
