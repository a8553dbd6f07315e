"""The ``vmctl monitor`` panel: the AP matrix the guest really sees, and why not more.

Imported only by the TUI.  Shows the mdev and its state, the guest's APQNs against the
mdev's matrix, every APQN filtered out with the reason, hot plug/unplug counts by trigger,
queue resets, and the guest's crypto request rate (simulator).  On QEMU only the device's
presence and mdev are known (``info qtree``).  Every state key is optional.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from textual.app import ComposeResult

from vmctl.api import KeyValue, Panel, RateChart

SHOWN = 6
"""How many APQNs (or filtered APQNs) a line lists before "and N more"."""


def _few(items: Sequence[str]) -> str:
    shown = ", ".join(items[:SHOWN])
    return shown + (f" and {len(items) - SHOWN} more" if len(items) > SHOWN else "") if items else "none"


def _by_trigger(counts: Any) -> str:
    if not isinstance(counts, Mapping) or not counts:
        return "0"
    return ", ".join(f"{n} {t}" for t, n in sorted(counts.items()))


class ApPanel(Panel):
    """s390 AP passthrough: matrix vs guest view, filtered APQNs, hot plug, requests."""

    def compose(self) -> ComposeResult:
        yield KeyValue("mdev", id="ap-mdev")
        yield KeyValue("guest sees", id="ap-guest")
        yield KeyValue("filtered", id="ap-filtered")
        yield KeyValue("hot plug", id="ap-hotplug")
        yield KeyValue("resets", id="ap-resets")
        yield RateChart("requests", id="ap-rate")

    def update_state(self, state: Mapping[str, Any]) -> None:
        if self.backend == "qemu":
            self._qemu(state)
            return
        uuid, st = state.get("uuid", "?"), state.get("state", "?")
        error = state.get("error")
        self.query_one("#ap-mdev", KeyValue).set(f"{uuid} [b]{st}[/b]" + (f" — {error}" if error else ""))
        guest = list(state.get("guest_apqns") or [])
        matrix = list(state.get("matrix") or [])
        cdoms = list(state.get("guest_control_domains") or [])
        self.query_one("#ap-guest", KeyValue).set(
            f"[b]{len(guest)}[/b] of {len(matrix)} APQNs: {_few(guest)}"
            + (f"; control domains {', '.join(cdoms)}" if cdoms else ""))
        filtered = [f for f in state.get("filtered") or [] if isinstance(f, Mapping)]
        line = self.query_one("#ap-filtered", KeyValue)
        line.display = bool(filtered)
        line.set("; ".join(f"{f.get('apqn')}: {f.get('reason')}" for f in filtered[:3])
                 + (f"; and {len(filtered) - 3} more" if len(filtered) > 3 else ""))
        c = state.get("counters") if isinstance(state.get("counters"), Mapping) else {}
        self.query_one("#ap-hotplug", KeyValue).set(
            f"plug {_by_trigger(c.get('hotplug'))} · unplug {_by_trigger(c.get('hotunplug'))}")
        self.query_one("#ap-resets", KeyValue).set(
            f"{c.get('resets', 0)} ({c.get('reset_failures', 0)} failed)")
        if "requests" in state:
            rate = self.rate("requests", int(state["requests"]))
            self.query_one("#ap-rate", RateChart).show(self.history("requests"), rate)

    def _qemu(self, state: Mapping[str, Any]) -> None:
        present = bool(state.get("present"))
        self.query_one("#ap-mdev", KeyValue).set(
            f"{state.get('uuid', '?')} (QEMU)" if present else "no vfio-ap device realised")
        self.query_one("#ap-guest", KeyValue).set("see `vmctl ap show`: guest_matrix of the mdev")
        for wid in ("#ap-filtered", "#ap-hotplug", "#ap-resets", "#ap-rate"):
            self.query_one(wid).display = False
