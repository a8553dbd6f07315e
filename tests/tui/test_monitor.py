"""``vmctl monitor`` driven by a pilot against real simulator instances."""

from __future__ import annotations

import asyncio

from textual.widgets import Input, Static

from tests.tui.conftest import kill, screen_text, state_dir, wait_for
from vmctl.runtime.instance import Instance
from vmctl.tui.dialogs import ConfirmScreen, HelpScreen
from vmctl.tui.feed import InstanceFeed
from vmctl.tui.monitor import MonitorApp, MonitorScreen
from vmctl.tui.panel import Panel
from vmctl.tui.snapshot import Link
from vmctl.tui.target import load_target
from vmctl.tui.widgets import BrokenPanel, ConsolePane, EventLog, InfoHeader, VcpuTable
from vmctl.types import PanelSpec
from vmctl_spapr_irq.panel import IrqPanel

SIZE = (150, 48)


def _app(pm, name: str = "p9", extra_panels: tuple[PanelSpec, ...] = ()) -> MonitorApp:
    target = load_target(Instance(state_dir(), name), pm)
    target.panels.extend(extra_panels)
    return MonitorApp(InstanceFeed(target, interval=0.1, retry=0.1))


def _screen(app: MonitorApp) -> MonitorScreen:
    assert isinstance(app.screen, MonitorScreen), type(app.screen)
    return app.screen


def _text(widget) -> str:
    return str(widget.render())


def test_mode_shown_counters_rising_and_pause_key_changes_the_run_state(start, pm):
    start("p9-dual.toml", name="p9")

    async def scenario():
        app = _app(pm)
        async with app.run_test(size=SIZE) as pilot:
            screen = _screen(app)
            panel = screen.panels["spapr-irq"]
            assert isinstance(panel, IrqPanel)
            await wait_for(pilot, lambda: "XIVE" in panel.query_one("#irq-mode").value,
                           what="the negotiated mode in the panel")
            assert "xics → " in panel.query_one("#irq-cas").value     # the CAS switch, timed
            await wait_for(pilot, lambda: len(panel.history("delivered")) >= 3, what="rates")
            delivered = panel.history("delivered")
            assert max(delivered) > 0, f"interrupt rate never rose: {delivered}"
            assert screen.query_one(VcpuTable).row_count == 2
            header = screen.query_one(InfoHeader)
            assert "running" in _text(header) and "QMP " in _text(header)

            await pilot.press("p")
            await wait_for(pilot, lambda: screen.latest.run_state == "paused", what="paused")
            assert "paused" in _text(header)
            log = screen.query_one(EventLog)
            await wait_for(pilot, lambda: log.count >= 1, what="the STOP event in the log")
            assert "STOP" in screen_text(app)
            await pilot.press("p")
            await wait_for(pilot, lambda: screen.latest.run_state == "running", what="running")
            assert screen.commands_sent == ["stop", "cont"]
            await pilot.press("q")
        assert not app.is_running

    asyncio.run(scenario())


def test_console_sends_json_or_name_arg_value_and_shows_the_reply(start, pm):
    start("p9-dual.toml", name="p9", paused=True)

    async def scenario():
        app = _app(pm)
        async with app.run_test(size=SIZE) as pilot:
            screen = _screen(app)
            await wait_for(pilot, lambda: screen.latest and screen.latest.link is Link.LIVE,
                           what="a connection")
            await pilot.press("c")
            assert isinstance(app.focused, Input)
            console = screen.query_one(ConsolePane)
            for line in ("hmp info status", '{"execute": "query-name"}', "bogus-command",
                         "{oops"):
                app.focused.value = line
                await pilot.press("enter")
            await wait_for(pilot, lambda: "CommandNotFound" in "\n".join(
                str(l) for l in console.output.lines), what="the error reply")
            lines = "\n".join(str(line.text) for line in console.output.lines)
            assert "VM status: paused (prelaunch)" in lines
            assert '"name": "p9-dual"' in lines
            assert "error: invalid JSON" in lines
            assert screen.latest.run_state == "prelaunch"       # console typing sent no 'p'
            await pilot.press("escape")
            assert not isinstance(app.focused, Input)

    asyncio.run(scenario())


def test_killing_the_instance_under_the_monitor_shows_it_crashed_and_keeps_running(start, pm):
    inst = start("p9-dual.toml", name="p9")

    async def scenario():
        app = _app(pm)
        async with app.run_test(size=SIZE) as pilot:
            screen = _screen(app)
            panel = screen.panels["spapr-irq"]
            await wait_for(pilot, lambda: "XIVE" in panel.query_one("#irq-mode").value,
                           what="a first state")
            kill(inst, supervisor=False)
            await wait_for(pilot, lambda: screen.latest.link is Link.CRASHED, what="crashed")
            header = _text(screen.query_one(InfoHeader))
            assert "crashed" in header and "SIGKILL" in header
            assert panel.has_class("-stale") and "crashed" in panel.stale_reason
            assert "XIVE" in panel.query_one("#irq-mode").value       # last state kept
            await pilot.press("p")                                  # refused, not a traceback
            await wait_for(pilot, lambda: app._notifications, what="the refusal notice")
            assert "crashed" in next(iter(app._notifications)).message
            await pilot.press("question_mark")
            assert isinstance(app.screen, HelpScreen)
            await pilot.press("escape")
            assert app.screen is screen and app.is_running

    asyncio.run(scenario())


def test_reset_asks_first_and_stop_removes_the_instance(start, pm):
    start("p9-dual.toml", name="p9")

    async def scenario():
        app = _app(pm)
        async with app.run_test(size=SIZE) as pilot:
            screen = _screen(app)
            await wait_for(pilot, lambda: screen.latest and screen.latest.link is Link.LIVE,
                           what="a connection")
            await pilot.press("r")
            assert isinstance(app.screen, ConfirmScreen)
            await pilot.press("n")
            assert screen.commands_sent == []
            await pilot.press("r", "y")
            log = screen.query_one(EventLog)
            await wait_for(pilot, lambda: "RESET" in screen_text(app), what="the RESET event")
            assert screen.commands_sent == ["system_reset"] and log.count >= 1
            await pilot.press("x", "y")
            await wait_for(pilot, lambda: screen.latest.link is Link.GONE, timeout=15,
                           what="the instance removed by stop")
            assert not Instance(state_dir(), "p9").exists()
            assert "gone" in _text(screen.query_one(InfoHeader))

    asyncio.run(scenario())


class ExplodingPanel(Panel):
    """A plugin panel with a bug."""

    def update_state(self, state):
        raise KeyError("mode")


def test_broken_plugin_panels_are_contained(start, pm):
    start("p9-dual.toml", name="p9")
    extra = (PanelSpec("Missing", "no_such_module:Panel", plugin="ghost"),
             PanelSpec("Buggy", "tests.tui.test_monitor:ExplodingPanel", plugin="spapr-irq"))

    async def scenario():
        app = _app(pm, extra_panels=extra)
        async with app.run_test(size=SIZE) as pilot:
            screen = _screen(app)
            assert isinstance(screen.panels["ghost"], BrokenPanel)
            assert "No module named 'no_such_module'" in _text(
                screen.panels["ghost"].query_one(Static))
            buggy = screen.panels["spapr-irq"]          # the later spec for the plugin wins
            await wait_for(pilot, lambda: buggy.stale_reason, what="the panel error")
            assert "panel error: KeyError" in buggy.stale_reason
            assert screen.latest.link is Link.LIVE and app.is_running

    asyncio.run(scenario())


def test_focus_cycles_through_table_panels_and_log(start, pm):
    start("p9-dual.toml", name="p9", paused=True)

    async def scenario():
        app = _app(pm)
        async with app.run_test(size=SIZE) as pilot:
            _screen(app)
            assert isinstance(app.focused, VcpuTable)
            seen = []
            for _ in range(4):
                await pilot.press("f")
                seen.append(type(app.focused).__name__)
            assert seen == ["IrqPanel", "EventLog", "VcpuTable", "IrqPanel"]

    asyncio.run(scenario())
