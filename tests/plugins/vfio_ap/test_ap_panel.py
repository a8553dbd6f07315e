"""The ``vmctl monitor`` panel and the ``vmctl top`` headline, driven by states (no instance)."""

from __future__ import annotations

import asyncio

from textual.app import App, ComposeResult

from vmctl.api import LiveState
from vmctl_vfio_ap.live import headline
from vmctl_vfio_ap.panel import ApPanel

SIM = {"source": "sim", "uuid": "2e3b0414-7f93-534b-885e-5226b918d619", "state": "in-use",
       "matrix": ["05.0004", "05.00ab", "06.0004", "06.00ab"], "guest_apqns": ["05.0004", "05.00ab"],
       "guest_control_domains": ["0004"],
       "filtered": [{"apqn": "06.0004", "reason": "queue 06.0004 is bound to no driver, not vfio_ap"},
                    {"apqn": "06.00ab", "reason": "adapter 06 filtered out: queue 06.0004 is bound to no "
                                                  "driver, not vfio_ap"}],
       "counters": {"hotplug": {"assign": 2}, "hotunplug": {"queue-remove": 1}, "resets": 3,
                    "reset_failures": 1},
       "requests": 100}
QEMU = {"source": "info qtree", "present": True, "uuid": "2e3b0414-7f93-534b-885e-5226b918d619"}


class Host(App):
    def compose(self) -> ComposeResult:
        yield ApPanel(title="AP crypto passthrough")


def test_panel_shows_guest_view_filtered_apqns_counters_and_rate() -> None:
    async def scenario() -> None:
        app = Host()
        async with app.run_test() as pilot:
            panel = app.query_one(ApPanel)
            panel.sampled_at = 1.0
            panel.set(LiveState(SIM, backend="sim"))
            panel.sampled_at = 2.0
            panel.set(LiveState({**SIM, "requests": 500}, backend="sim"))
            await pilot.pause()
            assert panel.query_one("#ap-guest").value == \
                "[b]2[/b] of 4 APQNs: 05.0004, 05.00ab; control domains 0004"
            filtered = panel.query_one("#ap-filtered")
            assert filtered.display and filtered.value.startswith(
                "06.0004: queue 06.0004 is bound to no driver, not vfio_ap; 06.00ab: adapter 06 filtered out")
            assert panel.query_one("#ap-hotplug").value == "plug 2 assign · unplug 1 queue-remove"
            assert panel.query_one("#ap-resets").value == "3 (1 failed)"
            assert panel.history("requests") == [400.0]
            panel.set(LiveState({**SIM, "filtered": [], "guest_apqns": SIM["matrix"]}, backend="sim"))
            assert not panel.query_one("#ap-filtered").display
            panel.set(LiveState(QEMU, backend="qemu"))
            assert panel.query_one("#ap-mdev").value.endswith("(QEMU)")
            assert not panel.query_one("#ap-rate").display
    asyncio.run(scenario())


def test_headline() -> None:
    assert headline(LiveState(SIM, backend="sim")) == "2/4 apqn"
    assert headline(LiveState(QEMU, backend="qemu")) == "vfio-ap" and \
        headline(LiveState({"source": "info qtree"}, backend="qemu")) == "-"
    assert headline(LiveState({}, backend="sim")) == "-"


def test_the_hook_names_an_importable_panel_only_for_vfio_ap_machines(machine_from_toml) -> None:
    import importlib

    from tests.conftest import MACHINES
    from vmctl_vfio_ap import plugin

    crypto = machine_from_toml((MACHINES / "s390-crypto.toml").read_text().replace(
        'include = ["base/s390.toml"]', f'include = ["{MACHINES}/base/s390.toml"]'))
    (spec,) = plugin.vmctl_tui_panels(crypto)
    module, _, attr = spec.factory.partition(":")
    assert getattr(importlib.import_module(module), attr) is ApPanel
    assert spec.headline(LiveState(SIM, backend="sim")) == "2/4 apqn"
    plain = machine_from_toml(f'include = ["{MACHINES}/base/s390.toml"]\n[machine]\nname = "plain"\n')
    assert plugin.vmctl_tui_panels(plain) is None
