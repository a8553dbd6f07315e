"""``vmctl top`` driven by a pilot against several simulator instances."""

from __future__ import annotations

import asyncio

from tests.tui.conftest import kill, screen_text, state_dir, wait_for
from vmctl.runtime.client import execute_once
from vmctl.runtime.instance import Instance
from vmctl.tui.monitor import MonitorScreen
from vmctl.tui.table import InstanceTable
from vmctl.tui.top import TopApp, TopScreen

SIZE = (160, 30)


def _column(table: InstanceTable, key: str) -> list[str]:
    return [table.get_cell(row, key) for row in _order(table)]


def _order(table: InstanceTable) -> list[str]:
    return list(table.order)


def _cell(table: InstanceTable, row: str, column: str) -> str:
    return table.get_cell(row, column)


def test_top_lists_live_paused_and_crashed_instances_with_headlines(start, pm):
    start("p9-dual.toml", name="web")
    start("p9-dual.toml", name="db", paused=True)
    doomed = start("p9-dual.toml", name="batch")
    kill(doomed, supervisor=False)

    async def scenario():
        app = TopApp(state_dir(), pm, interval=0.1, scan_every=0.2)
        async with app.run_test(size=SIZE) as pilot:
            screen = app.screen
            assert isinstance(screen, TopScreen)
            table = screen.table
            await wait_for(pilot, lambda: table.row_count == 3
                           and _cell(table, "web", "state") == "running"
                           and _cell(table, "db", "state") == "prelaunch"
                           and _cell(table, "batch", "state") == "crashed",
                           what="three rows in their states")
            assert "SIGKILL" in _cell(table, "batch", "note")
            assert _cell(table, "batch", "uptime") == "—"
            assert _cell(table, "web", "vcpus") == "2" and _cell(table, "web", "backend") == "sim"
            await wait_for(pilot, lambda: _cell(table, "web", "plugin:spapr-irq") == "xive/emu",
                           what="the irq headline after CAS")
            assert _cell(table, "db", "plugin:spapr-irq") == "xics/emu pre-CAS"  # paused before CAS
            assert _cell(table, "batch", "plugin:spapr-irq") == "—"        # never seen live
            await execute_once(str(Instance(state_dir(), "db").socket()), "cont")
            await wait_for(pilot, lambda: _cell(table, "db", "plugin:spapr-irq") == "xive/emu"
                           and _cell(table, "db", "state") == "running",
                           what="db's row refreshing after its CAS")
            assert "Interrupt controller" in screen_text(app)
            assert _order(table) == ["batch", "db", "web"]          # by name

    asyncio.run(scenario())


def test_sorting_by_key_and_by_header(start, pm):
    start("p9-dual.toml", name="aa", paused=True)
    start("p9-dual.toml", name="bb")

    async def scenario():
        app = TopApp(state_dir(), pm, interval=0.1, scan_every=0.2, sort="state")
        async with app.run_test(size=SIZE) as pilot:
            table = app.screen.table
            await wait_for(pilot, lambda: _column(table, "state") == ["prelaunch", "running"],
                           what="sorted by state")
            await pilot.press("R")
            assert _order(table) == ["bb", "aa"]
            await pilot.press("s")                                  # state → uptime
            assert app.screen.sort_column == "uptime" and not app.screen.reverse
            await pilot.click("#instances", offset=(2, 0))          # the NAME header
            assert app.screen.sort_column == "name" and _order(table) == ["aa", "bb"]
            await pilot.click("#instances", offset=(2, 0))          # again: reversed
            assert _order(table) == ["bb", "aa"]

    asyncio.run(scenario())


def test_enter_opens_the_monitor_for_the_row_and_q_comes_back(start, pm):
    start("p9-dual.toml", name="one", paused=True)
    start("p9-dual.toml", name="two", paused=True)

    async def scenario():
        app = TopApp(state_dir(), pm, interval=0.1, scan_every=0.2, monitor_interval=0.1)
        async with app.run_test(size=SIZE) as pilot:
            top = app.screen
            table = top.table
            await wait_for(pilot, lambda: table.row_count == 2, what="two rows")
            await pilot.press("down", "enter")
            assert isinstance(app.screen, MonitorScreen)
            monitor = app.screen
            assert monitor.target.name == "two"
            await wait_for(pilot, lambda: monitor.latest and monitor.latest.run_state,
                           what="the monitor's first poll")
            await pilot.press("p")
            await wait_for(pilot, lambda: monitor.latest.run_state == "running", what="cont")
            await pilot.press("q")
            assert app.screen is top and app.is_running
            await wait_for(pilot, lambda: _cell(table, "two", "state") == "running",
                           what="top seeing what the monitor did")

    asyncio.run(scenario())


def test_new_instances_appear_and_removed_ones_disappear(start, pm):
    start("p9-dual.toml", name="first", paused=True)

    async def scenario():
        app = TopApp(state_dir(), pm, interval=0.1, scan_every=0.1)
        async with app.run_test(size=SIZE) as pilot:
            table = app.screen.table
            await wait_for(pilot, lambda: table.row_count == 1, what="one row")
            await asyncio.get_running_loop().run_in_executor(
                None, lambda: start("p9-dual.toml", name="second", paused=True))
            await wait_for(pilot, lambda: "second" in table.cells
                           and _cell(table, "second", "state") == "prelaunch",
                           what="the new instance")
            first = Instance(state_dir(), "first")
            kill(first)
            first.remove()
            await wait_for(pilot, lambda: "first" not in table.cells, what="the removed row")
            assert table.row_count == 1

    asyncio.run(scenario())
