"""``vmctl top``: every instance in one table, refreshing.

One row per instance folder: name, backend, state (QMP run state when live; ``crashed``,
``exited``, ``lost``… otherwise), uptime, vCPUs, one column per plugin headline
(``PanelSpec.headline``) and a note with the reason when something is wrong.  Each
running instance has its own light :class:`~vmctl.tui.feed.InstanceFeed` (``query-status``
and the plugins' probes, one request in flight); the table is redrawn at the refresh rate
from the latest snapshots, and the state dir is rescanned every second for new and removed
instances.  Enter opens :class:`~vmctl.tui.monitor.MonitorScreen` for the row; ``q``
there comes back.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.text import Text
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Footer, Static
from textual.worker import Worker

from vmctl.runtime.instance import Instance, list_instances
from vmctl.tui.dialogs import HelpScreen
from vmctl.tui.feed import Feed, InstanceFeed
from vmctl.tui.monitor import MonitorScreen
from vmctl.tui.snapshot import Link, Snapshot, format_duration
from vmctl.tui.table import InstanceTable
from vmctl.tui.target import Target, load_target
from vmctl.tui.widgets import STATUS_STYLE, status_text

FIXED = (("name", "NAME"), ("backend", "BACKEND"), ("state", "STATE"), ("uptime", "UPTIME"),
         ("vcpus", "VCPUS"))
NOTE = ("note", "NOTE")

FeedFactory = Callable[[Target, bool, float], Feed]


def default_feed(target: Target, full: bool, interval: float) -> Feed:
    """A real QMP feed (tests pass in-process ones instead)."""
    return InstanceFeed(target, interval=interval, full=full)


@dataclass
class Row:
    """One instance in the table, its feed, and what was last drawn."""

    target: Target
    feed: Feed
    worker: Worker[None] | None = None
    snapshot: Snapshot | None = None
    drawn: dict[str, Any] = field(default_factory=dict)
    sort_values: dict[str, Any] = field(default_factory=dict)


class TopScreen(Screen[None]):
    """The instance table (see the module docstring)."""

    DEFAULT_CSS = """
    TopScreen > InstanceTable { height: 1fr; }
    TopScreen > #summary { height: 1; padding: 0 1; background: $boost; }
    """
    BINDINGS = [
        Binding("enter", "open", "Monitor"),
        Binding("s", "next_sort", "Sort"),
        Binding("R", "reverse", "Reverse"),
        Binding("question_mark", "help", "Help"),
        Binding("q", "quit", "Quit"),
    ]

    def __init__(self, state: Path, pm: Any, *, interval: float = 0.5, sort: str = "name",
                 feed_factory: FeedFactory = default_feed,
                 clock: Callable[[], float] = time.time, monitor_interval: float = 0.25,
                 scan_every: float = 1.0) -> None:
        super().__init__()
        self.state = state
        self.pm = pm
        self.interval = interval
        self.sort_column = sort
        self.reverse = False
        self.feed_factory = feed_factory
        self.clock = clock
        self.monitor_interval = monitor_interval
        self.scan_every = scan_every
        self.rows: dict[str, Row] = {}
        self.plugin_titles: dict[str, str] = {}
        self.renders = 0
        self._summary = ""

    def compose(self) -> ComposeResult:
        yield Static(id="summary")
        yield InstanceTable(id="instances")
        yield Footer()

    @property
    def table(self) -> InstanceTable:
        return self.query_one("#instances", InstanceTable)

    def on_mount(self) -> None:
        for key, label in (*FIXED, NOTE):
            self.table.add_column(key, label)
        self.scan()
        self.render_rows()
        self.set_interval(self.interval, self.render_rows)
        self.set_interval(self.scan_every, self.scan)

    async def on_unmount(self) -> None:
        await asyncio.gather(*(row.feed.aclose() for row in self.rows.values()))

    # -- instances -----------------------------------------------------------------------
    def scan(self) -> None:
        """Add rows for new instance folders, drop rows whose folder is gone."""
        names = {inst.name: inst for inst in list_instances(self.state)}
        for name in [n for n in self.rows if n not in names]:
            self._drop(name)
        for name, inst in names.items():
            if name not in self.rows:
                self._add(inst)

    def _add(self, inst: Instance) -> None:
        target = load_target(inst, self.pm)
        feed = self.feed_factory(target, False, self.interval)
        row = Row(target, feed)
        feed.on_snapshot = lambda snap, row=row: setattr(row, "snapshot", snap)
        self.rows[inst.name] = row
        for spec in target.panels:
            if spec.headline is not None and spec.plugin not in self.plugin_titles:
                self.plugin_titles[spec.plugin] = spec.title or spec.plugin
                self._add_plugin_column(spec.plugin)
        self.table.add_row(inst.name)
        row.worker = self.run_worker(feed.run(), name=f"feed:{inst.name}", group="feeds",
                                     exit_on_error=False)

    def _add_plugin_column(self, plugin: str) -> None:
        """Plugin columns go before NOTE."""
        self.table.add_column(f"plugin:{plugin}", self.plugin_titles[plugin], before=NOTE[0])

    def _drop(self, name: str) -> None:
        row = self.rows.pop(name)
        if row.worker is not None:
            row.worker.cancel()
        self.table.remove_row(name)

    # -- drawing -------------------------------------------------------------------------
    def cells(self, row: Row, now: float) -> dict[str, Any]:
        """What each column shows for ``row`` (and, in ``row.sort_values``, how it sorts)."""
        snap = row.snapshot
        target = row.target
        status = snap.status if snap else "connecting"
        uptime = (now - snap.started if snap and snap.started is not None
                  and not snap.link.dead else None)
        vcpus = len(snap.vcpus) if snap and snap.vcpus else target.cpus
        out: dict[str, Any] = {
            "name": target.name, "backend": target.backend, "state": status_text(status),
            "uptime": format_duration(uptime), "vcpus": "—" if vcpus is None else str(vcpus),
            NOTE[0]: Text(snap.reason if snap and snap.link is not Link.LIVE else "",
                          style=STATUS_STYLE.get(status, "") if snap and snap.link.dead else ""),
        }
        headlines = target.headlines(dict(snap.plugins)) if snap else {}
        for plugin in self.plugin_titles:
            out[f"plugin:{plugin}"] = headlines.get(plugin, "")
        row.sort_values = {"name": target.name, "backend": target.backend, "state": status,
                           "uptime": -1.0 if uptime is None else uptime,
                           "vcpus": -1 if vcpus is None else vcpus,
                           **{f"plugin:{p}": str(out[f'plugin:{p}']) for p in self.plugin_titles}}
        return out

    def render_rows(self) -> None:
        """Redraw changed cells from the latest snapshots, then keep the sort order."""
        self.renders += 1
        now = self.clock()
        table = self.table
        changed_sort = False
        sort_key = self._sort_key()
        for name, row in self.rows.items():
            for column, value in self.cells(row, now).items():
                if row.drawn.get(column) != value:
                    row.drawn[column] = value
                    table.set_cell(name, column, value)
                    changed_sort |= column == sort_key
        if changed_sort or self.renders == 1:
            self.apply_sort()
        live = sum(1 for r in self.rows.values() if r.snapshot and r.snapshot.link is Link.LIVE)
        dead = sum(1 for r in self.rows.values() if r.snapshot and r.snapshot.link.dead)
        summary = (f"{len(self.rows)} instances · {live} live · {dead} dead · {self.state} · "
                   f"sorted by {self._sort_label()}{' (reversed)' if self.reverse else ''}")
        if summary != self._summary:
            self._summary = summary
            self.query_one("#summary", Static).update(summary, layout=False)

    def _sort_key(self) -> str:
        if self.sort_column in dict(FIXED):
            return self.sort_column
        if self.sort_column in self.plugin_titles:
            return f"plugin:{self.sort_column}"
        return "name"

    def _sort_label(self) -> str:
        key = self._sort_key()
        return self.plugin_titles.get(key.removeprefix("plugin:"), key) if key.startswith(
            "plugin:") else key

    def apply_sort(self) -> None:
        """Sort by the chosen column (then name), keeping the cursor on its instance."""
        key = self._sort_key()
        rows = self.rows
        self.table.header_suffix = {key: " ▼" if self.reverse else " ▲"}
        self.table.sort(lambda name: (rows[name].sort_values.get(key, "") if name in rows
                                      else "", name), reverse=self.reverse)

    def selected_name(self) -> str | None:
        return self.table.selected

    # -- keys ----------------------------------------------------------------------------
    def on_instance_table_row_chosen(self, event: InstanceTable.RowChosen) -> None:
        event.stop()
        self.open(event.key)

    def on_instance_table_header_clicked(self, event: InstanceTable.HeaderClicked) -> None:
        event.stop()
        column = event.column
        if column == NOTE[0]:
            return
        self.reverse = not self.reverse if self._sort_key() == column else False
        self.sort_column = column.removeprefix("plugin:")
        self.apply_sort()
        self.render_rows()

    def action_open(self) -> None:
        name = self.selected_name()
        if name is not None:
            self.open(name)

    def open(self, name: str) -> None:
        """Push the monitor for instance ``name`` (its own full-rate feed)."""
        row = self.rows.get(name)
        if row is None:
            return
        feed = self.feed_factory(load_target(row.target.instance, self.pm), True,
                                 self.monitor_interval)
        self.app.push_screen(MonitorScreen(feed))

    def action_next_sort(self) -> None:
        order = [k for k, _ in FIXED] + list(self.plugin_titles)
        current = self._sort_key().removeprefix("plugin:")
        self.sort_column = order[(order.index(current) + 1) % len(order)] if current in order \
            else "name"
        self.reverse = False
        self.apply_sort()
        self.render_rows()

    def action_reverse(self) -> None:
        self.reverse = not self.reverse
        self.apply_sort()
        self.render_rows()

    def action_help(self) -> None:
        keys = [(b.key if b.key != "question_mark" else "?", b.description)
                for b in self.BINDINGS]
        keys.append(("click header", "sort by that column (again: reverse)"))
        self.app.push_screen(HelpScreen("vmctl top", keys, "Crashed instances stay listed until "
                                        "'vmctl stop NAME' cleans them."))

    def action_quit(self) -> None:
        self.app.exit()


class TopApp(App[None]):
    """``vmctl top``: the :class:`TopScreen`."""

    TITLE = "vmctl top"

    def __init__(self, state: Path, pm: Any, **options: Any) -> None:
        super().__init__()
        self.state = state
        self.pm = pm
        self.options = options

    def get_default_screen(self) -> TopScreen:
        return TopScreen(self.state, self.pm, **self.options)
