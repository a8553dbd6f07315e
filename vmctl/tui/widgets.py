"""The monitor's building blocks: header, vCPU table, event log, QMP console, panel host.

Each widget renders from a :class:`~vmctl.tui.snapshot.Snapshot` or an event dict and
keeps no connection of its own; the screens wire them to a feed.
"""

from __future__ import annotations

import importlib
import json
import time
from collections.abc import Callable
from typing import Any

from rich.markup import escape
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.message import Message
from textual.widget import Widget
from textual.widgets import Input, RichLog, Static

from vmctl.textfmt import safe, safe_lines
from vmctl.tui.panel import Panel, TextLines
from vmctl.tui.qmpline import ConsoleSyntaxError, parse_line
from vmctl.tui.snapshot import Link, Snapshot, format_duration
from vmctl.types import LiveState, PanelSpec

#: Colours of run states and link states, as Rich styles.
STATUS_STYLE = {
    "running": "bold green", "paused": "bold yellow", "prelaunch": "bold yellow",
    "suspended": "bold yellow", "inmigrate": "yellow", "postmigrate": "yellow",
    "shutdown": "bold red", "guest-panicked": "bold red", "internal-error": "bold red",
    "connecting": "cyan", "lost": "bold magenta", "crashed": "bold white on red",
    "exited": "bold", "gone": "dim",
}


def status_text(status: str) -> Text:
    """``status`` coloured by :data:`STATUS_STYLE`."""
    return Text(status, style=STATUS_STYLE.get(status, ""))


class InfoHeader(Static):
    """Name, backend, run state, uptime, QMP socket; the reason when not live (3 lines)."""

    DEFAULT_CSS = """
    InfoHeader { height: 3; padding: 0 1; background: $boost; }
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._shown: Text | None = None

    def show(self, snap: Snapshot) -> None:
        line = Text.assemble((snap.name, "bold"), "  ", (snap.backend, "italic"), "  ",
                             status_text(snap.status), "  up ",
                             format_duration(snap.uptime))
        sim = snap.sim or {}
        if snap.link is Link.LIVE and sim:
            line.append(f"  phase {sim.get('phase', '?')} · virtual clock "
                        f"{format_duration(float(sim.get('clock', 0.0)))}", style="dim")
        out = Text("\n").join([line, Text(f"QMP {snap.socket}", style="dim")])
        if snap.reason:
            out.append("\n")
            out.append(snap.reason, style=STATUS_STYLE.get(snap.link.value, "yellow"))
        if out != self._shown:              # repaint only what changed (uptime ticks in s)
            self._shown = out
            self.update(out, layout=False)  # fixed height: repaint, no new layout


class VcpuTable(TextLines, can_focus=True):
    """One row per vCPU: index, host thread, core, state, load (simulator).

    Plain aligned text in a box sized to the vCPUs, repainted in place when a value changes
    (a DataTable or a Rich table re-measures everything each time: at 4 Hz that costs the
    monitor more than the rest of the screen).
    """

    DEFAULT_CSS = """
    VcpuTable { height: 4; border: round $secondary; padding: 0 1; }
    VcpuTable:focus { border: round $accent; }
    """

    HEADER = ("CPU", "thread", "core", "state", "load")

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.border_title = "vCPUs"
        self.row_count = 0
        self._drawn: tuple[Any, ...] = ()

    def show(self, snap: Snapshot) -> None:
        rows = tuple((str(v.index), _opt(v.thread_id), _opt(v.core), v.state or "—",
                      "—" if v.load is None else f"{v.load * 100:3.0f}%") for v in snap.vcpus)
        if rows == self._drawn:
            return
        widths = [max(len(r[i]) for r in (self.HEADER, *rows)) for i in range(len(self.HEADER))]
        lines = [Text("  ".join(h.ljust(w) for h, w in zip(self.HEADER, widths)), style="bold")]
        lines += [Text("  ".join(c.rjust(w) if i == 4 else c.ljust(w)
                                 for i, (c, w) in enumerate(zip(row, widths)))) for row in rows]
        if len(rows) != self.row_count:
            self.row_count = len(rows)
            self.styles.height = min(len(rows), 16) + 3      # header + border
        self._drawn = rows
        self.set_lines(lines)


def _opt(value: Any) -> str:
    return "—" if value is None else str(value)


class EventLog(RichLog):
    """QMP events as they come: ``12:04:05.120 STOP``, data as compact JSON."""

    DEFAULT_CSS = """
    EventLog { border: round $secondary; height: 1fr; }
    EventLog:focus { border: round $accent; }
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(max_lines=500, wrap=True, markup=False, min_width=20, **kwargs)
        self.border_title = "QMP events"
        self.count = 0

    def add(self, event: dict[str, Any]) -> None:
        """Append one event message (``{"event", "data", "timestamp"}``)."""
        self.count += 1
        ts = event.get("timestamp") or {}
        seconds = float(ts.get("seconds", 0)) + float(ts.get("microseconds", 0)) / 1e6
        stamp = time.strftime("%H:%M:%S", time.localtime(seconds)) + f".{int(seconds * 1000) % 1000:03d}"
        line = Text.assemble((stamp, "dim"), " ", (safe(str(event.get("event", "?"))), "bold"))
        if event.get("data"):
            line.append(" " + json.dumps(event["data"], separators=(", ", ": ")))
        self.write(line)

    def note(self, text: str, style: str = "italic") -> None:
        """A line that is not an event (connection changes)."""
        self.write(Text(safe_lines(text), style=style))


class ConsolePane(Vertical):
    """A QMP prompt: type JSON or ``name arg=value``, read the reply below."""

    DEFAULT_CSS = """
    ConsolePane { height: 12; border: round $secondary; }
    ConsolePane:focus-within { border: round $accent; }
    ConsolePane > Input { dock: top; }
    ConsolePane > RichLog { height: 1fr; }
    """

    class Request(Message):
        """The user entered a well-formed command."""

        def __init__(self, command: str, arguments: dict[str, Any]) -> None:
            super().__init__()
            self.command = command
            self.arguments = arguments

    def compose(self) -> ComposeResult:
        self.border_title = "QMP console"
        yield Input(placeholder="query-status · hmp info pic · name arg=value · {\"execute\": …}",
                    id="console-input")
        yield RichLog(max_lines=400, wrap=True, markup=False, min_width=20, id="console-output")

    @property
    def output(self) -> RichLog:
        return self.query_one("#console-output", RichLog)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        line = event.value
        if not line.strip():
            return
        event.input.value = ""
        self.output.write(Text(f"> {safe(line)}", style="bold"))
        try:
            command, arguments = parse_line(line)
        except ConsoleSyntaxError as exc:
            self.output.write(Text(f"error: {exc}", style="red"))
            return
        self.post_message(self.Request(command, arguments))

    def reply(self, text: str, error: bool = False) -> None:
        self.output.write(Text(safe_lines(text), style="red" if error else ""))


# -- panels -----------------------------------------------------------------------------
class BrokenPanel(Panel):
    """Stands in for a panel whose class could not be imported or created."""

    def __init__(self, spec: PanelSpec, error: str) -> None:
        super().__init__(title=spec.title or spec.plugin)
        self.error = error

    def compose(self) -> ComposeResult:
        yield Static(Text(f"panel {self.error}", style="red"), classes="panel--fallback")

    def update_state(self, state: Any) -> None:
        """Nothing to show: the panel itself is broken."""


def build_panel(spec: PanelSpec, backend: str) -> Widget:
    """Import ``spec.factory`` and create the panel; a :class:`BrokenPanel` on failure."""
    mod_name, _, attr = spec.factory.partition(":")
    try:
        cls = getattr(importlib.import_module(mod_name), attr)
        widget = cls()
    except Exception as exc:  # noqa: BLE001 - a plugin's import error shows in its box
        widget = BrokenPanel(spec, f"{spec.factory} failed to load: {type(exc).__name__}: {exc}")
    if not isinstance(widget, Widget) or not callable(getattr(widget, "update_state", None)):
        widget = BrokenPanel(spec, f"{spec.factory} is not a widget with update_state()")
    if not widget.border_title:
        widget.border_title = spec.title or spec.plugin
    if isinstance(widget, Panel):
        widget.backend = backend
    widget.add_class("plugin-panel")
    widget.can_focus = True
    return widget


def deliver(panel: Widget, live: LiveState | None, snap: Snapshot,
            log: Callable[[str], None] = lambda text: None) -> None:
    """Hand ``live`` to ``panel`` with its poll time (:meth:`Panel.set`), or mark the panel
    stale and say why (the instance is not live, or the plugin has no probe here)."""
    is_panel = isinstance(panel, Panel)
    if is_panel:
        panel.sampled_at, panel.uptime = snap.sampled_at, snap.uptime
    reason = ""
    if snap.link is not Link.LIVE:
        reason = f"{snap.status}: last state shown"
    elif live is None:
        reason = "no live probe for this backend"
    elif live.failed and not is_panel:
        reason = live.error
    if reason:
        _stale(panel, reason)
        return
    assert live is not None
    try:
        if is_panel:
            panel.set(live)
        else:
            panel.update_state(dict(live))  # type: ignore[attr-defined]
    except Exception as exc:  # noqa: BLE001 - a panel bug must not end the monitor
        message = f"panel error: {type(exc).__name__}: {exc}"
        _stale(panel, message)
        log(f"{panel.border_title}: {message}")


def _stale(panel: Widget, reason: str) -> None:
    if isinstance(panel, Panel):
        panel.set_stale(reason)
    else:
        panel.border_subtitle = escape(reason)
