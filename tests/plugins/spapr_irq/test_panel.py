"""The ``vmctl monitor`` panel and the ``vmctl top`` headline, driven by states (no instance)."""

from __future__ import annotations

import asyncio

from textual.app import App, ComposeResult

from vmctl.api import LiveState
from vmctl_spapr_irq.live import headline
from vmctl_spapr_irq.panel import IrqPanel

SIM = {"source": "sim", "mode": "xive", "controller": "kvm", "state": "negotiated", "ic_mode": "dual",
       "before_cas": "xics", "cas_at": 0.1, "interrupts": {"delivered": 100, "per_vcpu": [60, 40]}}
QEMU = {"source": "info pic", "mode": "xics", "controller": "emulated", "cpus": 2, "sources": 8, "routed": 3}


class Host(App):
    def compose(self) -> ComposeResult:
        yield IrqPanel(title="Interrupt controller")


def test_panel_shows_mode_cas_rate_and_vcpus() -> None:
    async def scenario() -> None:
        app = Host()
        async with app.run_test() as pilot:
            panel = app.query_one(IrqPanel)
            panel.sampled_at = 1.0
            panel.set(LiveState(SIM, backend="sim"))
            panel.sampled_at = 2.0
            panel.set(LiveState({**SIM, "interrupts": {"delivered": 350, "per_vcpu": [200, 150]}}, backend="sim"))
            await pilot.pause()
            assert "XIVE" in panel.query_one("#irq-mode").value and "kvm" in panel.query_one("#irq-mode").value
            assert panel.query_one("#irq-cas").value.startswith("xics → xive at CAS, 0.10 s")
            assert panel.history("delivered") == [250.0]
            assert panel.query_one("#irq-vcpus").value == "cpu0 200  cpu1 150"
            panel.set(LiveState(QEMU, backend="qemu"))
            assert "XICS" in panel.query_one("#irq-mode").value
            assert panel.query_one("#irq-cas").value == "3 of 8 sources routed"
    asyncio.run(scenario())


def test_headline() -> None:
    assert headline(LiveState(SIM, backend="sim")) == "xive/kvm" and headline(LiveState(QEMU, backend="qemu")) == "xics/emu" \
        and headline(LiveState({}, backend="qemu")) == "-"
