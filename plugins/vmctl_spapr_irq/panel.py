"""The ``vmctl monitor`` panel: the negotiated interrupt mode and how busy it is.

Imported only by the TUI. Shows the live mode (``XIVE``/``XICS``), where it runs (KVM or
emulated), the CAS state on the simulator, the interrupt rate (sim: deliveries; QEMU: events
written to the vCPUs' XIVE queues) and the per-vCPU split.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from textual.app import ComposeResult

from vmctl.tui.panel import KeyValue, Panel, RateChart


def headline(state: Mapping[str, Any]) -> str:
    """``vmctl top``'s column: ``xive/kvm``, ``xics/emu``, or ``-``."""
    mode = state.get("mode")
    if not mode:
        return "-"
    where = {"kvm": "kvm", "emulated": "emu"}.get(str(state.get("controller")), "?")
    return f"{mode}/{where}"


def total_events(state: Mapping[str, Any]) -> int | None:
    """The rising counter behind the rate: deliveries (sim) or summed EQ indexes (QEMU)."""
    interrupts = state.get("interrupts")
    if isinstance(interrupts, Mapping):
        return int(interrupts.get("delivered", 0))
    eq = state.get("eq_index")
    if isinstance(eq, Mapping):
        return sum(int(v) for v in eq.values())
    return None


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
    """sPAPR interrupt controller: mode, controller, CAS, rate, per-vCPU counts."""

    def compose(self) -> ComposeResult:
        yield KeyValue("mode", id="irq-mode")
        yield KeyValue("negotiation", id="irq-cas")
        yield RateChart("interrupts", id="irq-rate")
        yield KeyValue("per vCPU", id="irq-vcpus")

    def update_state(self, state: Mapping[str, Any]) -> None:
        mode = state.get("mode")
        controller = state.get("controller") or "?"
        self.query_one("#irq-mode", KeyValue).set(f"[b]{str(mode).upper()}[/b] ({controller})" if mode
                                                  else str(state.get("error") or "none"))
        if state.get("source") == "sim":
            if state.get("cas_at") is not None:
                cas = (f"{state.get('before_cas')} → {mode} at CAS, {float(state['cas_at']):.2f} s "
                       f"(ic-mode {state.get('ic_mode')})")
            else:
                cas = f"{state.get('state', '?')}: {mode} until the guest's CAS"
        else:
            cas = f"{state.get('routed', 0)} of {state.get('sources', 0)} sources routed"
        self.query_one("#irq-cas", KeyValue).set(str(cas))
        total = total_events(state)
        if total is not None:
            rate = self.rate("delivered", total)
            self.query_one("#irq-rate", RateChart).show(self.history("delivered"), rate)
        self.query_one("#irq-vcpus", KeyValue).set(per_vcpu(state))
