"""The ``vmctl monitor`` panel and ``vmctl top`` headline, fed states from the real
simulator device through the live probe's parser."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest
from textual.app import App, ComposeResult
from textual.widgets import Sparkline

from tests.tui.conftest import wait_for
from vmctl.api import LiveState
from vmctl.runtime.instance import Instance
from vmctl.sim.build import build_simulation
from vmctl.tui.feed import InstanceFeed
from vmctl.tui.monitor import MonitorApp
from vmctl.tui.target import load_target
from vmctl_vfio.live import headline, live_probe
from vmctl_vfio.panel import VfioPanel, bar
from vmctl_vfio.sim import sim_devices

from .test_vfio_validate import machine_text

IOPF = 'id = "nic0"\nhost = "0000:03:00.0"\niopf = true\nexperimental = true'
QEMU = {"devices": [{"key": "device[0]", "id": "gpu0", "host": "0000:01:00.0",
                     "iommu": "type1", "present": True, "guest_address": "01:00.0"}],
        "memory": "pinned by QEMU's VFIO container (not visible over QMP)"}


class Host(App):
    def compose(self) -> ComposeResult:
        yield VfioPanel(title="VFIO passthrough")


@pytest.fixture
def live_state(machine_from_toml):
    """``live_state(text, seconds)``: what ``vmctl monitor`` would hand the panel."""
    def run(text: str, seconds: float) -> dict:
        m = machine_from_toml(text)
        sim = build_simulation(m, contributions=[("vfio", sim_devices(m))])
        sim.advance(seconds)
        probe = live_probe(m, "sim")
        return probe.parse([sim.execute(cmd, args) for cmd, args in probe.commands])
    return run


def test_panel_shows_rampup_sparkline_and_memory(live_state) -> None:
    state = live_state(machine_text(IOPF, memory="1G"), 8)

    async def scenario() -> None:
        app = Host()
        async with app.run_test() as pilot:
            panel = app.query_one(VfioPanel)
            panel.set(LiveState(state, backend="sim"))
            await pilot.pause()
            assert panel.query_one("#vfio-memory").value == "1024 MiB guest RAM, 0 MiB locked"
            assert panel.query_one("#vfio-dev-0").value.startswith(
                "[b]nic0[/b] 0000:03:00.0 · group 1 · vfio-pci · type1 · on-demand")
            mem = panel.query_one("#vfio-mem-0").value
            assert "locked 0 MiB (pinning would lock 1024 MiB)" in mem and "▕" in mem
            chart = panel.query_one("#vfio-rate-0")
            data = chart.query_one(Sparkline).data
            assert chart.display and data == [float(x) for x in
                                               state["devices"][0]["fault_rate_history"]]
            assert max(data) > data[-1]                       # the fault rate fell
            assert not panel.query_one("#vfio-dev-1").display
    asyncio.run(scenario())


def test_pinned_device_has_no_fault_chart(live_state) -> None:
    state = live_state(machine_text('id = "gpu0"\nhost = "0000:01:00.0"', memory="1G"), 4)

    async def scenario() -> None:
        app = Host()
        async with app.run_test() as pilot:
            panel = app.query_one(VfioPanel)
            panel.set(LiveState(state, backend="sim"))
            await pilot.pause()
            assert not panel.query_one("#vfio-rate-0").display
            assert panel.query_one("#vfio-mem-0").value.startswith(
                "mapped 1024 of 1024 MiB (100%) ▕██████████▏  locked 1024 MiB")
            panel.set(LiveState(QEMU, backend="qemu"))
            assert panel.query_one("#vfio-dev-0").value == \
                "[b]gpu0[/b] 0000:01:00.0 · type1 · in guest at 01:00.0"
            assert not panel.query_one("#vfio-mem-0").display
    asyncio.run(scenario())


def test_headline(live_state) -> None:
    iopf = live_state(machine_text(IOPF, memory="1G"), 6)
    rate = iopf["devices"][0]["fault_rate"]
    assert headline(LiveState(iopf, backend="sim")).startswith(f"{rate} f/s, ") and \
        headline(LiveState(iopf, backend="sim")).endswith("% mapped")
    pinned = live_state(machine_text('host = "0000:01:00.0"', memory="2G"), 3)
    assert headline(LiveState(pinned, backend="sim")) == "2.0G pinned"
    assert headline(LiveState(QEMU, backend="qemu")) == "1/1 in guest" and \
        headline(LiveState({}, backend="sim")) == "-"


def test_bar() -> None:
    assert bar(0, 10) == "▕" + " " * 10 + "▏"
    assert bar(10, 10) == "▕" + "█" * 10 + "▏"
    assert bar(1, 2, width=4) == "▕██  ▏"


def test_monitor_shows_the_rampup_of_a_running_instance(sim_instance, vmctl_pm) -> None:
    """``vmctl monitor`` on ``machines/x86-passthrough-iopf.toml``, end to end."""
    inst = sim_instance(Path("machines/x86-passthrough-iopf.toml"))
    state = Path(os.environ["VMCTL_STATE_DIR"])
    app = MonitorApp(InstanceFeed(load_target(Instance(state, inst.name), vmctl_pm),
                                  interval=0.1, retry=0.1))

    async def scenario() -> None:
        async with app.run_test(size=(150, 48)) as pilot:
            panel = app.screen.panels["vfio"]
            assert isinstance(panel, VfioPanel)
            chart = panel.query_one("#vfio-rate-0")

            def fell() -> bool:
                data = [x for x in chart.query_one(Sparkline).data if x]
                return len(data) >= 3 and data[-1] < max(data)
            await wait_for(pilot, fell, timeout=30, what="a falling fault rate")
            assert "locked 0 MiB (pinning would lock 4096 MiB)" in \
                panel.query_one("#vfio-mem-0").value
    asyncio.run(scenario())
