"""The ``vmctl monitor`` panel: async page faults live, and what they save or cost.

Imported only by the TUI.  On the simulator it shows the protocol, fault rates (async and
synchronous), the tokens in flight, the per-vCPU state, and the vCPU time lost to page faults
per modelled second with async PF and without it (the ``no-kvmapf`` shadow) as two
sparklines — the stall time over time.  On QEMU it shows the CPU properties read back with
``qom-get`` next to what the TOML asked for.  Which of the two it shows follows
:attr:`Panel.backend` (set by :meth:`Panel.set` from the state's tag); ``vmctl top``'s
headline is :func:`.live.headline`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from textual.app import ComposeResult

from vmctl.api import KeyValue, Panel, RateChart

__all__ = ["ApfPanel", "lost_share", "vcpu_line"]


def lost_share(point: Mapping[str, Any], vcpus: int, key: str) -> float | None:
    """Share of vCPU time lost in one history ``point`` (one modelled second)."""
    if not vcpus or key not in point:
        return None
    return float(point[key]) / (vcpus * 1000.0)


def vcpu_line(vcpus: list[Mapping[str, Any]]) -> str:
    """``cpu0 enabled 3/64  cpu1 STUCK`` — APF state and outstanding tokens per vCPU."""
    parts = []
    for v in vcpus:
        what = "STUCK" if v.get("stuck") else f"{v.get('apf', '?')} {v.get('outstanding', 0)}/64"
        parts.append(f"cpu{v.get('vcpu', '?')} {what}")
    return "  ".join(parts) or "—"


class ApfPanel(Panel):
    """Async page faults: protocol, rates, tokens, lost vCPU time with and without."""

    def compose(self) -> ComposeResult:
        yield KeyValue("protocol", id="apf-protocol")
        yield RateChart("async faults", id="apf-async")
        yield RateChart("sync stalls", id="apf-sync")
        yield KeyValue("tokens", id="apf-tokens")
        yield KeyValue("lost vCPU time", id="apf-lost")
        yield RateChart("lost, async PF", unit="%", id="apf-lost-with")
        yield RateChart("lost, no APF  ", unit="%", id="apf-lost-without")
        yield KeyValue("per vCPU", id="apf-vcpus")

    def update_state(self, state: Mapping[str, Any]) -> None:
        if self.backend == "qemu":
            self._qemu(state)
            return
        upstream = state.get("upstream", "?")
        self.query_one("#apf-protocol", KeyValue).set(
            f"[b]{state.get('protocol', '?')}[/b] ({upstream}), "
            f"{state.get('enabled_vcpus', 0)} vCPUs enabled, model {state.get('model_time_s', 0)} s"
            + (f", lag {state['lag_s']} s" if state.get("lag_s") else ""))
        for key, wid in (("async_faults", "#apf-async"), ("sync_stalls", "#apf-sync")):
            rate = self.rate(key, float(state.get(key, 0)))
            self.query_one(wid, RateChart).show(self.history(key), rate)
        reasons = state.get("sync_by_reason") or {}
        self.query_one("#apf-tokens", KeyValue).set(
            f"outstanding {state.get('outstanding', 0)}, waiting {state.get('waiting_tasks', 0)}, "
            f"halts {state.get('halts', 0)}, dummies {state.get('dummy_entries', 0)}, delayed "
            f"{state.get('delayed_wakes', 0)}, stuck {state.get('stuck_vcpus', 0)}"
            + (f"; sync: {', '.join(f'{k} {v}' for k, v in reasons.items())}" if reasons else ""))
        vcpus = state.get("vcpus") or []
        history = state.get("history") or []
        n = len(vcpus)
        with_ = [100 * (lost_share(p, n, "lost_ms_with_apf") or 0.0) for p in history]
        without = [100 * (lost_share(p, n, "lost_ms_without_apf") or 0.0) for p in history]
        self.query_one("#apf-lost-with", RateChart).show(with_)
        self.query_one("#apf-lost-without", RateChart).show(without)
        self.query_one("#apf-lost", KeyValue).set(
            f"{state.get('lost_ms_with_apf', 0)} ms with async PF, "
            f"{state.get('lost_ms_without_apf', 0)} ms without: [b]{state.get('verdict', '?')}[/b]")
        self.query_one("#apf-vcpus", KeyValue).set(vcpu_line(vcpus))

    def _qemu(self, state: Mapping[str, Any]) -> None:
        live, configured = state.get("live", {}), state.get("configured", {})
        self.query_one("#apf-protocol", KeyValue).set(
            "x86 (QEMU): " + ", ".join(f"{k}={v}" for k, v in live.items())
            + ("  matches the TOML" if state.get("matches") else
               "  TOML: " + ", ".join(f"{k}={v}" for k, v in configured.items())))
        self.query_one("#apf-lost", KeyValue).set(str(state.get("note", "—")))
