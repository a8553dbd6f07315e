"""The ``vmctl monitor`` panel and ``vmctl top`` headline, driven by probe states (no instance)."""

from __future__ import annotations

import asyncio

from textual.app import App, ComposeResult

from vmctl.api import LiveState
from vmctl.sim.build import build_simulation
from vmctl_async_pf.live import headline
from vmctl_async_pf.panel import ApfPanel, vcpu_line
from vmctl_async_pf.plugin import vmctl_live_probe, vmctl_tui_panels
from vmctl_async_pf.settings import read
from vmctl_async_pf.sim import AsyncPfDevice

ARM = '''[machine]
name = "arm"
arch = "aarch64"
type = "virt"
cpu = "cortex-a72"
cpus = 2
accel = "tcg"

[async-pf]
mode = "on"
experimental = true

[sim]
workload = "busy"
'''
QEMU = {"cpu0": "/machine/unattached/device[0]", "live": {"kvm-asyncpf": "off", "kvm-asyncpf-int": "off"},
        "configured": {"kvm-asyncpf": "on", "kvm-asyncpf-int": "on"}, "matches": False,
        "note": "QEMU clears KVM paravirtual features without KVM: async PF is off under TCG"}


class Host(App):
    def compose(self) -> ComposeResult:
        yield ApfPanel(title="Async page faults")


def sim_states(machine_from_toml) -> list[dict]:  # type: ignore[no-untyped-def]
    """Two probe results of a live simulated machine, one modelled second apart."""
    machine = machine_from_toml(ARM)
    sim = build_simulation(machine, contributions=[("async-pf", [AsyncPfDevice(read(machine))])])
    probe = vmctl_live_probe(machine, "sim")
    states = []
    for seconds in (3.0, 1.0):
        sim.advance(seconds)
        states.append(probe.parse([sim.execute(c, a) for c, a in probe.commands]))
    return states


def test_panel_shows_rates_tokens_and_lost_time_with_and_without(machine_from_toml) -> None:  # type: ignore[no-untyped-def]
    first, second = sim_states(machine_from_toml)

    async def scenario() -> None:
        app = Host()
        async with app.run_test() as pilot:
            panel = app.query_one(ApfPanel)
            panel.sampled_at = 1.0
            panel.set(LiveState(first, backend="sim"))
            panel.sampled_at = 2.0
            panel.set(LiveState(second, backend="sim"))
            await pilot.pause()
            assert panel.query_one("#apf-protocol").value.startswith("[b]arm64-apf-rfcv2[/b] (never merged)")
            assert panel.history("async_faults") == [float(second["async_faults"] - first["async_faults"])]
            assert "[b]helps[/b]" in panel.query_one("#apf-lost").value
            assert panel.query_one("#apf-vcpus").value.startswith("cpu0 enabled")
            panel.set(LiveState(QEMU, backend="qemu"))
            assert "kvm-asyncpf=off" in panel.query_one("#apf-protocol").value
            assert "without KVM" in panel.query_one("#apf-lost").value
    asyncio.run(scenario())


def test_headline_for_top(machine_from_toml) -> None:  # type: ignore[no-untyped-def]
    _, state = sim_states(machine_from_toml)
    assert headline(LiveState(state, backend="sim")).endswith(" helps")
    assert headline(LiveState(QEMU, backend="qemu")) == "off/off" and headline(LiveState({}, backend="sim")) == "-"


def test_vcpu_line_marks_stuck_vcpus() -> None:
    line = vcpu_line([{"vcpu": 0, "apf": "enabled", "outstanding": 3}, {"vcpu": 1, "stuck": True}])
    assert line == "cpu0 enabled 3/64  cpu1 STUCK"


def test_panel_only_for_machines_with_the_table(machine_from_toml) -> None:  # type: ignore[no-untyped-def]
    spec, = vmctl_tui_panels(machine_from_toml(ARM))
    assert spec.factory == "vmctl_async_pf.panel:ApfPanel"
    assert vmctl_tui_panels(machine_from_toml(ARM.split("[async-pf]")[0])) is None
