"""The line-API table behind ``vmctl top``: widths follow content, sorting keeps the cursor."""

from __future__ import annotations

import asyncio

from rich.text import Text
from textual.app import App, ComposeResult

from tests.tui.conftest import screen_text
from vmctl.tui.table import InstanceTable


class Host(App[None]):
    def __init__(self) -> None:
        super().__init__()
        self.chosen: list[str] = []
        self.clicked: list[str] = []

    def compose(self) -> ComposeResult:
        yield InstanceTable(id="t")

    def on_mount(self) -> None:
        table = self.query_one(InstanceTable)
        table.add_column("name", "NAME")
        table.add_column("state", "STATE")
        table.add_column("vcpus", "VCPUS", before="state")
        for name, state, vcpus in (("web", "running", "2"), ("db", "paused", "4"),
                                   ("batch", "connecting", "1")):
            table.add_row(name)
            table.set_cell(name, "name", name)
            table.set_cell(name, "state", Text(state, style="bold"))
            table.set_cell(name, "vcpus", vcpus)
        table.focus()

    def on_instance_table_row_chosen(self, event: InstanceTable.RowChosen) -> None:
        self.chosen.append(event.key)

    def on_instance_table_header_clicked(self, event: InstanceTable.HeaderClicked) -> None:
        self.clicked.append(event.column)


def test_columns_rows_cursor_sort_and_clicks():
    async def scenario():
        app = Host()
        async with app.run_test(size=(60, 8)) as pilot:
            table = app.query_one(InstanceTable)
            lines = screen_text(app).splitlines()
            assert lines[0].split() == ["NAME", "VCPUS", "STATE"]        # inserted before STATE
            assert lines[1].split() == ["web", "2", "running"]
            wide = lines[0].index("STATE") + len("connecting")
            table.set_cell("batch", "state", "crashed")       # the widest value went: shrink
            await pilot.pause()
            assert screen_text(app).splitlines()[3].rstrip().endswith("crashed")
            assert len(screen_text(app).splitlines()[1].rstrip()) < wide
            await pilot.press("down", "enter")
            assert app.chosen == ["db"]
            table.sort(lambda key: key)                      # batch, db, web: cursor follows db
            assert table.order == ["batch", "db", "web"] and table.selected == "db"
            await pilot.press("end", "enter", "home", "enter")
            assert app.chosen == ["db", "web", "batch"]
            await pilot.click("#t", offset=(8, 0))           # NAME is 5 + 2 wide: VCPUS
            assert app.clicked == ["vcpus"]
            await pilot.click("#t", offset=(2, 2))           # second row
            assert table.selected == "db"
            table.remove_row("db")
            assert table.selected in ("batch", "web") and table.row_count == 2

    asyncio.run(scenario())
