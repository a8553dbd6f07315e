"""The `vmctl monitor` panel: on its own, and inside the real monitor on a running instance."""

from __future__ import annotations

import asyncio
import time

from textual.app import App, ComposeResult

from vmctl.api import LiveState
from vmctl_i6300esb.live import headline
from vmctl_i6300esb.panel import WatchdogPanel, countdown

SIM_STATE = {"action": "reset", "heartbeat": 30, "nowayout": True, "expires_after": 30.504,
             "stage": "stage2", "time_left": 3.0, "daemon": "hung", "device": "open",
             "pings": 12, "expiries": 1, "card_reset": True,
             "fired": [{"at": 41.25, "action": "reset"}]}


class One(App):
    def compose(self) -> ComposeResult:
        yield WatchdogPanel(title="Watchdog")


def values(panel) -> dict[str, str]:
    return {kv.key: kv.value for kv in panel.query("KeyValue")}


def test_panel_shows_the_countdown_daemon_and_expiries():
    async def scenario():
        app = One()
        async with app.run_test(size=(100, 12)) as pilot:
            panel = app.query_one(WatchdogPanel)
            panel.set(LiveState(SIM_STATE, backend="sim"))
            await pilot.pause()
            shown = values(panel)
            assert shown["action"] == "reset  (nowayout)"
            assert "3.0 s of 30.5" in shown["timer"] and "stage2" in shown["timer"]
            assert shown["guest"] == "daemon hung, /dev/watchdog0 open  last boot: watchdog reset"
            assert shown["fired"] == "1×, last at 41.25 s (reset)"
            panel.set(LiveState({"action": "pause", "run_state": "watchdog", "paused_by_watchdog": True,
                                 "timer": "not readable over QMP on QEMU"}, backend="qemu"))
            await pilot.pause()
            assert "paused" in values(panel)["fired"]
            panel.set(LiveState({}, backend="qemu"))  # a plugin that answers nothing yet must not break the panel
            await pilot.pause()
    asyncio.run(scenario())


def test_countdown_bar_and_top_headline():
    assert countdown({"time_left": 15.252, "expires_after": 30.504}).endswith("15.3 s of 30.5")
    assert countdown({"time_left": None, "expires_after": 30.5}) == "off"
    assert headline(SIM_STATE) == "3.0s reset fired 1×"
    assert headline({"time_left": None}) == "off"
    assert headline({"paused_by_watchdog": True}) == "fired (paused)"


def test_in_the_real_monitor_on_a_running_instance(sim_instance, vmctl_pm, x86):
    vm = sim_instance(x86 + 'heartbeat = 1\nsim-hang-after = 1\naction = "pause"\n')
    target = vm.target()
    assert [p.plugin for p in target.panels if p.plugin == "i6300esb"] == ["i6300esb"]

    async def scenario():
        app = vm.monitor_app()
        async with app.run_test(size=(150, 48)) as pilot:
            panel = app.screen.panels["i6300esb"]
            assert isinstance(panel, WatchdogPanel)
            deadline = time.monotonic() + 20
            while "1×" not in values(panel).get("fired", ""):
                assert time.monotonic() < deadline, f"the watchdog never fired: {values(panel)}"
                await pilot.pause(0.1)
            assert "hung" in values(panel)["guest"]
            await pilot.press("q")
    asyncio.run(scenario())
