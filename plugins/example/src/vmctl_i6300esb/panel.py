"""The ``vmctl monitor`` panel: how close the watchdog is to firing.

Imported only by the TUI (Textual is heavy).  Shows the action, the stage and the time
left as a bar, the guest daemon, pings per second as a sparkline, and each expiry.  On
QEMU only the run state is known (the timer is not readable over QMP).  Every state key is
optional: the panel shows what it gets.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from textual.app import ComposeResult

from vmctl.api import KeyValue, Panel, RateChart

BAR = 24


def countdown(state: Mapping[str, Any]) -> str:
    """``[########----] 10.2 s of 30.5`` or ``off``."""
    left, total = state.get("time_left"), state.get("expires_after")
    if not isinstance(left, (int, float)) or not isinstance(total, (int, float)) or total <= 0:
        return "off" if "time_left" in state else "—"
    filled = max(0, min(BAR, round(BAR * left / total)))
    colour = "green" if left > total / 2 else "yellow" if left > total / 8 else "red"
    return f"[{colour}]{'#' * filled}{'-' * (BAR - filled)}[/] {left:.1f} s of {total:.1f}"


class WatchdogPanel(Panel):
    """i6300esb: countdown, daemon, pings, expiries."""

    def compose(self) -> ComposeResult:
        yield KeyValue("action", id="wdt-action")
        yield KeyValue("timer", id="wdt-timer")
        yield KeyValue("guest", id="wdt-guest")
        yield KeyValue("fired", id="wdt-fired")
        yield RateChart("pings", id="wdt-pings")

    def update_state(self, state: Mapping[str, Any]) -> None:
        action = str(state.get("action", "—"))
        if state.get("nowayout"):
            action += "  (nowayout)"
        self.query_one("#wdt-action", KeyValue).set(action)
        if self.backend == "qemu":  # QEMU has no timer to read: the run state says it all
            self.query_one("#wdt-timer", KeyValue).set(str(state.get("timer", "—")))
            self.query_one("#wdt-guest", KeyValue).set(f"run state {state.get('run_state', '—')}")
            fired = "[red]yes: the machine is paused[/]" if state.get("paused_by_watchdog") else "no"
            self.query_one("#wdt-fired", KeyValue).set(fired)
            return
        stage = state.get("stage", "off")
        self.query_one("#wdt-timer", KeyValue).set(f"{countdown(state)}  {stage}")
        card = "  last boot: watchdog reset" if state.get("card_reset") else ""
        self.query_one("#wdt-guest", KeyValue).set(
            f"daemon {state.get('daemon', '—')}, /dev/watchdog0 {state.get('device', '—')}{card}")
        events = state.get("fired") or []
        last = events[-1] if events and isinstance(events[-1], Mapping) else None
        count = int(state.get("expiries", 0) or 0)
        text = f"{count}×, last at {last.get('at')} s ({last.get('action')})" if last and count else "never"
        self.query_one("#wdt-fired", KeyValue).set(text)
        pings = state.get("pings")
        if isinstance(pings, int):
            self.query_one("#wdt-pings", RateChart).show(self.history("pings"), self.rate("pings", pings))
