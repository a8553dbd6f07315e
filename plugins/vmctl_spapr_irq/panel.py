"""The ``vmctl monitor`` panel: the negotiated interrupt mode and how busy it is.

Imported only by the TUI. Shows the live mode (``XIVE``/``XICS``), where it runs (KVM or
emulated), the CAS state on the simulator, the interrupt rate (sim: deliveries; QEMU: events
written to the vCPUs' XIVE queues), the per-vCPU split and the busiest sources.

QEMU 7.2 switches the controller at CAS without any event, so on QEMU the panel notes the
first poll that saw the mode change ("seen at uptime …"). Every state key is optional.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from textual.app import ComposeResult

from vmctl.api import format_rate, KeyValue, Panel, RateChart


def total_events(state: Mapping[str, Any]) -> int | None:
    """The rising counter behind the rate: deliveries (sim) or summed EQ indexes (QEMU)."""
    interrupts = state.get("interrupts")
    if isinstance(interrupts, Mapping):
        return int(interrupts.get("delivered", 0))
    eq = state.get("eq_index")
    if isinstance(eq, Mapping):
        return sum(int(v) for v in eq.values())
    return None


#: Names of the sPAPR interrupt numbers a default machine claims.
SOURCE_NAMES = {0x1000: "epow", 0x1001: "hotplug", 0x1100: "vty", 0x1101: "nvram",
                0x1200: "intx-a", 0x1201: "intx-b", 0x1202: "intx-c", 0x1203: "intx-d"}
#: How many sources the panel lists (busiest first).
TOP_SOURCES = 4


def source_counts(state: Mapping[str, Any]) -> dict[int, int]:
    """Deliveries by source number (``{"0x1100": 54}`` on the wire); empty when unknown."""
    interrupts = state.get("interrupts")
    raw = interrupts.get("per_source") if isinstance(interrupts, Mapping) else None
    out: dict[int, int] = {}
    for key, count in (raw.items() if isinstance(raw, Mapping) else ()):
        try:
            out[int(str(key), 0)] = int(count)
        except (TypeError, ValueError):
            continue
    return out


def source_name(irq: int) -> str:
    """``vty``, ``ipi`` (below 0x1000), ``msi`` (0x1300 and up), or the number."""
    if irq in SOURCE_NAMES:
        return SOURCE_NAMES[irq]
    return "ipi" if irq < 0x1000 else "msi" if irq >= 0x1300 else f"{irq:#x}"


def per_vcpu(state: Mapping[str, Any]) -> str:
    interrupts = state.get("interrupts")
    counts = interrupts.get("per_vcpu") if isinstance(interrupts, Mapping) else None
    if isinstance(counts, list):
        return "  ".join(f"cpu{i} {n}" for i, n in enumerate(counts)) or "—"
    eq = state.get("eq_index")
    if isinstance(eq, Mapping) and eq:
        return "  ".join(f"cpu{k} q@{v}" for k, v in eq.items())
    return "—"


class IrqPanel(Panel):
    """sPAPR interrupt controller: mode, controller, CAS, rate, per-vCPU and per-source counts."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.seen_mode: str | None = None
        #: ``(from, to, uptime)`` of the last mode change a poll saw (QEMU has no event).
        self.seen_switch: tuple[str, str, float | None] | None = None

    def compose(self) -> ComposeResult:
        yield KeyValue("mode", id="irq-mode")
        yield KeyValue("negotiation", id="irq-cas")
        yield KeyValue("switch seen", id="irq-seen")
        yield RateChart("interrupts", id="irq-rate")
        yield KeyValue("per vCPU", id="irq-vcpus")
        yield KeyValue("busiest sources", lines=2, id="irq-sources")

    def on_mount(self) -> None:
        self.query_one("#irq-seen").display = False
        self.query_one("#irq-sources").display = False

    def update_state(self, state: Mapping[str, Any]) -> None:
        mode = state.get("mode")
        controller = state.get("controller") or "?"
        self.query_one("#irq-mode", KeyValue).set(f"[b]{str(mode).upper()}[/b] ({controller})" if mode
                                                  else str(state.get("error") or "none"))
        if self.backend == "sim":
            if state.get("cas_at") is not None:
                cas = (f"{state.get('before_cas')} → {mode} at CAS, {float(state['cas_at']):.2f} s "
                       f"(ic-mode {state.get('ic_mode')})")
            else:
                cas = f"{state.get('state', '?')}: {mode} until the guest's CAS"
        else:
            routed = f"{state.get('routed', 0)} of {state.get('sources', 0)} sources routed"
            if state.get("state") == "before-cas":
                cas = f"before CAS: the firmware's default {str(mode).upper()}; {routed}"
            elif state.get("state") == "negotiated":
                cas = f"negotiated at CAS; {routed}"
            else:
                cas = routed
        self.query_one("#irq-cas", KeyValue).set(str(cas))
        total = total_events(state)
        if total is not None:
            rate = self.rate("delivered", total)
            self.query_one("#irq-rate", RateChart).show(self.history("delivered"), rate)
        self.query_one("#irq-vcpus", KeyValue).set(per_vcpu(state))
        self._show_switch(str(mode).lower() if mode else None)
        self._show_sources(source_counts(state))

    def _show_switch(self, mode: str | None) -> None:
        """Note the first poll that saw the mode change (the only clue on QEMU)."""
        if mode and self.seen_mode and mode != self.seen_mode:
            self.seen_switch = (self.seen_mode, mode, self.uptime)
        if mode:
            self.seen_mode = mode
        line = self.query_one("#irq-seen", KeyValue)
        if line.display != (self.seen_switch is not None):
            line.display = self.seen_switch is not None
        if self.seen_switch is not None:
            before, after, at = self.seen_switch
            when = f" at uptime {at:.1f} s" if at is not None else ""
            line.set(f"{before} → [b]{after}[/b]{when}")

    def _show_sources(self, counts: dict[int, int]) -> None:
        line = self.query_one("#irq-sources", KeyValue)
        if line.display != bool(counts):
            line.display = bool(counts)
        if not counts:
            return
        rates = {irq: self.rate(f"src{irq:#x}", n) for irq, n in counts.items()}
        busiest = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP_SOURCES]
        line.set("  ".join(f"{irq:#x} {source_name(irq)} {n}"
                           + (f" ({format_rate(rates[irq])})" if rates[irq] is not None else "")
                           for irq, n in busiest))
