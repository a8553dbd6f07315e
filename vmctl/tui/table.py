"""``InstanceTable``: the light, sortable row table behind ``vmctl top``.

Why not Textual's ``DataTable``: any cell update there re-renders every cell of the table,
and ``top`` updates an uptime in every row every second — with 20 instances that alone cost
more than the 10 % CPU budget.  This table keeps each row's rendered line and repaints a row
only when one of its cells changed, drawing through Textual's line API.

Keys: ``up``/``down``/``home``/``end``/``pageup``/``pagedown`` move the cursor, ``enter``
posts :class:`InstanceTable.RowChosen`; a click on a row moves the cursor, a click on the
header posts :class:`InstanceTable.HeaderClicked`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import events
from textual.binding import Binding
from textual.message import Message
from textual.strip import Strip
from textual.widget import Widget

from vmctl.textfmt import safe

Cell = Text | str


class InstanceTable(Widget, can_focus=True):
    """Rows keyed by name, columns keyed by id; one header line (see the module docstring)."""

    DEFAULT_CSS = """
    InstanceTable { height: 1fr; padding: 0 1; }
    """
    BINDINGS = [
        Binding("up", "move(-1)", "Up", show=False),
        Binding("down", "move(1)", "Down", show=False),
        Binding("pageup", "move(-10)", show=False),
        Binding("pagedown", "move(10)", show=False),
        Binding("home", "move(-100000)", show=False),
        Binding("end", "move(100000)", show=False),
        Binding("enter", "choose", "Monitor", show=False),
    ]
    GAP = 2

    class RowChosen(Message):
        """Enter was pressed on row ``key``."""

        def __init__(self, key: str) -> None:
            super().__init__()
            self.key = key

    class HeaderClicked(Message):
        """The header of column ``column`` was clicked."""

        def __init__(self, column: str) -> None:
            super().__init__()
            self.column = column

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.columns: dict[str, str] = {}          # id → label, in display order
        self.order: list[str] = []                 # row keys, top to bottom
        self.cells: dict[str, dict[str, Cell]] = {}
        self.cursor = 0
        self.scroll = 0
        self.header_suffix: dict[str, str] = {}    # id → "▲"/"▼" sort mark
        self._widths: dict[str, int] = {}
        self._strips: dict[Any, Strip] = {}

    # -- content -------------------------------------------------------------------------
    def add_column(self, key: str, label: str, before: str | None = None) -> None:
        items = list(self.columns.items())
        index = next((i for i, (k, _) in enumerate(items) if k == before), len(items))
        items.insert(index, (key, label))
        self.columns = dict(items)
        self._changed()

    def add_row(self, key: str) -> None:
        if key not in self.cells:
            self.cells[key] = {}
            self.order.append(key)
            self._changed()

    def remove_row(self, key: str) -> None:
        if key in self.cells:
            selected = self.selected
            del self.cells[key]
            self.order.remove(key)
            self._keep_cursor(selected)
            self._changed()

    def set_cell(self, row: str, column: str, value: Cell) -> None:
        """Set one cell; repaints its row (and the header when the column must widen)."""
        cells = self.cells[row]
        old = cells.get(column, "")
        if old == value:
            return
        cells[column] = value
        width, column_width = self._width(value), self._widths.get(column, 0)
        if width > column_width or (width < column_width == self._width(old)):
            self._changed()                      # the column's width changes: every line moves
        else:
            self._strips.pop(("row", row), None)
            self._strips.pop(("cursor", row), None)
            self.refresh()

    def get_cell(self, row: str, column: str) -> str:
        value = self.cells[row].get(column, "")
        return value.plain if isinstance(value, Text) else value

    def sort(self, key: Callable[[str], Any], reverse: bool = False) -> None:
        """Order the rows by ``key(row_key)``; the cursor stays on its row."""
        selected = self.selected
        order = sorted(self.order, key=key, reverse=reverse)
        if order != self.order:
            self.order = order
            self._keep_cursor(selected)
            self._changed()

    @property
    def row_count(self) -> int:
        return len(self.order)

    @property
    def selected(self) -> str | None:
        return self.order[self.cursor] if 0 <= self.cursor < len(self.order) else None

    def _keep_cursor(self, selected: str | None) -> None:
        if selected in self.order:
            self.cursor = self.order.index(selected)
        self.cursor = max(0, min(self.cursor, len(self.order) - 1))

    def _changed(self) -> None:
        self._widths = {key: max([len(label) + len(self.header_suffix.get(key, ""))] +
                                 [self._width(cells.get(key, "")) for cells in self.cells.values()])
                        for key, label in self.columns.items()}
        self._strips.clear()
        self.refresh()

    @staticmethod
    def _width(value: Cell) -> int:
        return value.cell_len if isinstance(value, Text) else len(value)

    # -- drawing -------------------------------------------------------------------------
    def _line(self, values: list[Cell], style: Style | str = "") -> Text:
        line = Text(style=style, end="")
        for key, value in zip(self.columns, values):
            cell = value if isinstance(value, Text) else Text(safe(value))
            line.append_text(cell)
            line.append(" " * (self._widths[key] - cell.cell_len + self.GAP))
        return line

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        base = self.rich_style
        visible = max(self.size.height - 1, 1)
        if self.cursor < self.scroll:
            self.scroll = self.cursor
        elif self.cursor >= self.scroll + visible:
            self.scroll = self.cursor - visible + 1
        if y == 0:
            key: Any = ("header",)
            make = lambda: self._line([f"{label}{self.header_suffix.get(k, '')}"  # noqa: E731
                                       for k, label in self.columns.items()], "bold")
        else:
            index = self.scroll + y - 1
            if index >= len(self.order):
                return Strip.blank(width, base)
            row = self.order[index]
            cursor = index == self.cursor and self.has_focus
            key = ("row", row) if not cursor else ("cursor", row)
            make = lambda: self._line([self.cells[row].get(c, "") for c in self.columns],  # noqa: E731
                                      "reverse" if cursor else "")
        strip = self._strips.get(key)
        if strip is None or strip.cell_length != width:
            segments = Segment.apply_style(make().render(self.app.console), base)
            strip = Strip(segments).crop_extend(0, width, base)
            self._strips[key] = strip
        return strip

    # -- interaction ---------------------------------------------------------------------
    def action_move(self, delta: int) -> None:
        if self.order:
            self.cursor = max(0, min(self.cursor + delta, len(self.order) - 1))
            self._strips = {k: v for k, v in self._strips.items() if k[0] != "cursor"}
            self.refresh()

    def action_choose(self) -> None:
        if self.selected is not None:
            self.post_message(self.RowChosen(self.selected))

    def on_focus(self) -> None:
        self.refresh()

    def on_blur(self) -> None:
        self.refresh()

    def on_click(self, event: events.Click) -> None:
        if event.y == 0:
            x = event.x
            for key in self.columns:
                span = self._widths[key] + self.GAP
                if x < span:
                    self.post_message(self.HeaderClicked(key))
                    return
                x -= span
            return
        index = self.scroll + event.y - 1
        if 0 <= index < len(self.order):
            self.cursor = index
            self._strips = {k: v for k, v in self._strips.items() if k[0] != "cursor"}
            self.refresh()
