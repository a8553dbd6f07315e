"""Base class for a plugin's panel in ``vmctl monitor`` — read this to write one.

A panel shows one plugin's live device state.  vmctl polls the instance (at 4 Hz in
``monitor``), runs the plugin's :class:`~vmctl.types.LiveProbe`, tags the parsed dict
with the backend that answered (a :class:`~vmctl.types.LiveState`) and hands it to
:meth:`Panel.set`, which calls your :meth:`Panel.update_state`.  The panel never talks
QMP itself, never sleeps and never sees a socket: it turns a dict into widgets.  Where the
state differs by backend, branch on :attr:`Panel.backend` (``"sim"`` or ``"qemu"``), never
on which keys happen to be there.

Three steps
-----------

1. Write the widget, in a module only the TUI imports (Textual is heavy)::

    # my_plugin/panel.py
    from textual.app import ComposeResult
    from textual.widgets import Static

    from vmctl.api import Panel, RateChart


    class RngPanel(Panel):
        # virtio-rng: bytes served to the guest, and how fast.

        def compose(self) -> ComposeResult:
            yield Static(id="rng-total")
            yield RateChart("bytes/s", id="rng-rate")

        def update_state(self, state: dict) -> None:
            served = int(state.get("bytes", 0))            # tolerate missing keys
            rate = self.rate("bytes", served)              # per second, None at first
            self.query_one("#rng-total", Static).update(f"served {served} bytes")
            self.query_one("#rng-rate", RateChart).show(self.history("bytes"), rate)

2. Declare it (the import string is resolved only by the TUI)::

    # my_plugin/plugin.py
    from vmctl import hookimpl
    from vmctl.api import PanelSpec

    @hookimpl
    def vmctl_tui_panels(machine):
        if not machine.devices_of("virtio-rng"):
            return None
        return [PanelSpec("Entropy", "my_plugin.panel:RngPanel",
                          headline=lambda s: f"{s.get('bytes', 0)} B")]

   (``headline`` gets the same :class:`~vmctl.types.LiveState`: ``s.backend`` says
   which backend answered.)

3. Give it state: on the simulator your ``SimDevice.state()`` is read for you
   (``__org.vmctl_query-device``); for QEMU return a ``LiveProbe`` from
   ``vmctl_live_probe`` (e.g. ``human-monitor-command`` and a parser).

What the host does for you
--------------------------

* the border and its title (``PanelSpec.title``); focus with ``f``/``tab``;
* :attr:`sampled_at` (monotonic seconds of the poll) before each ``update_state``, and
  :meth:`rate`/:meth:`history` to turn rising counters into per-second rates (a counter
  that drops, after a reset, restarts the rate instead of going negative);
* :attr:`backend`, from the state's tag, before each ``update_state``;
* when the machine stops answering, crashes or exits, or the probe fails, the panel keeps
  its last content, is dimmed and its subtitle says why (:meth:`set_stale`);
  ``update_state`` is not called;
* an exception in ``update_state`` is caught and shown in the subtitle, so a panel bug
  never takes the monitor down.  Keep ``update_state`` fast (no I/O): it runs in the UI.

Any Textual widget class with ``update_state(state: dict) -> None`` works as a factory;
subclassing :class:`Panel` adds the above.  The class is created with no arguments.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence
from typing import Any

from rich.segment import Segment
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.strip import Strip
from textual.widget import Widget
from textual.widgets import Label, Sparkline, Static

from vmctl.textfmt import safe
from vmctl.tui.snapshot import RateMeter, format_rate
from vmctl.types import LiveState


class Panel(Widget, can_focus=True):
    """A bordered, focusable box for one plugin's live state (see the module docstring)."""

    DEFAULT_CSS = """
    Panel {
        height: auto;
        min-height: 4;
        border: round $secondary;
        border-title-color: $text;
        border-subtitle-color: $warning;
        padding: 0 1;
    }
    Panel:focus, Panel:focus-within { border: round $accent; }
    Panel.-stale { opacity: 0.6; }
    Panel > .panel--fallback { height: auto; }
    """

    #: How many past rates :meth:`history` keeps (60 polls = 15 s at 4 Hz).
    HISTORY = 60

    def __init__(self, *, title: str = "", name: str | None = None, id: str | None = None,
                 classes: str | None = None) -> None:
        super().__init__(name=name, id=id, classes=classes)
        if title:
            self.border_title = title
        #: Monotonic time (seconds) of the poll being shown; set before ``update_state``.
        self.sampled_at: float = 0.0
        #: ``"sim"`` or ``"qemu"``: some state exists only on one backend (set by :meth:`set`).
        self.backend: str = ""
        #: Seconds the instance has been up at that poll, when known.
        self.uptime: float | None = None
        self.rates = RateMeter(self.HISTORY)
        self.stale_reason = ""

    def compose(self) -> ComposeResult:
        """Default content: the state as ``key: value`` lines.  Override it."""
        yield Static("waiting for the first poll…", classes="panel--fallback")

    # -- the one method a plugin must provide ------------------------------------------
    def update_state(self, state: Mapping[str, Any]) -> None:
        """Show ``state`` (the plugin's ``LiveProbe.parse`` result).  Override it.

        The default prints top-level keys, which is enough to see a new plugin's data.
        """
        lines = [f"{key}: {value}" for key, value in state.items()]
        self.query_one(".panel--fallback", Static).update("\n".join(lines) or "(empty)")

    # -- helpers for subclasses --------------------------------------------------------
    def rate(self, key: str, counter: float) -> float | None:
        """Per-second rate of the rising ``counter`` since the previous poll (None at first)."""
        return self.rates.update(key, counter, self.sampled_at)

    def history(self, key: str) -> list[float]:
        """Past rates of ``key``, oldest first: feed them to a :class:`RateChart`."""
        return self.rates.history(key)

    # -- called by the host ------------------------------------------------------------
    def set(self, live: LiveState) -> None:
        """Show a poll's :class:`~vmctl.types.LiveState` (the host's one entry point).

        Records :attr:`backend` from the state's tag, then either marks the panel stale
        with the reason the read failed (the last content stays), or marks it fresh and
        calls :meth:`update_state` with the state.  Tests drive a panel the same way:
        ``panel.set(LiveState({...}, backend="qemu"))``.
        """
        if live.backend:
            self.backend = live.backend
        if live.failed:
            self.set_stale(live.error)
            return
        self.set_fresh()
        self.update_state(live)

    def set_stale(self, reason: str) -> None:
        """Dim the panel and say why its content is old (the host calls this)."""
        self.stale_reason = reason
        self.border_subtitle = reason
        self.add_class("-stale")

    def set_fresh(self) -> None:
        """Undo :meth:`set_stale` (the host calls this before ``update_state``)."""
        if self.stale_reason:
            self.stale_reason = ""
            self.border_subtitle = ""
            self.remove_class("-stale")


class TextLines(Widget):
    """Lines of Rich text drawn with Textual's line API: ``lines.set_lines([Text("a"), "b"])``.

    A repaint is a few segment copies, not a layout or a re-wrap, so values that change on
    every poll (counters, loads) stay cheap.  Lines longer than the widget are cut; give it
    a height in CSS (default: one line).
    """

    DEFAULT_CSS = """
    TextLines { height: 1; }
    """

    def __init__(self, *lines: Text | str, id: str | None = None,
                 classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self._lines: list[Text] = [Text(safe(x)) if isinstance(x, str) else x for x in lines]
        self._strips: dict[int, Strip] = {}

    @property
    def plain(self) -> str:
        """The text shown, lines joined by newlines (for tests and logs)."""
        return "\n".join(line.plain for line in self._lines)

    def set_lines(self, lines: Sequence[Text | str]) -> None:
        """Replace the lines; repaints only when something changed."""
        new = [Text(safe(x)) if isinstance(x, str) else x for x in lines]
        if new != self._lines:
            self._lines = new
            self._strips.clear()
            self.refresh()

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        key = y
        strip = self._strips.get(key)
        if strip is None or strip.cell_length != width:
            base = self.rich_style
            if y < len(self._lines):
                segments = Segment.apply_style(self._lines[y].render(self.app.console), base)
                strip = Strip(segments).crop_extend(0, width, base)
            else:
                strip = Strip.blank(width, base)
            self._strips[key] = strip
        return strip


#: Eighth-block bars, lowest to highest.
BARS = "▁▂▃▄▅▆▇█"


def spark(values: Sequence[float], width: int) -> str:
    """``values`` as ``width`` bars (each the max of its bucket), scaled to their maximum."""
    if width <= 0:
        return ""
    if not values:
        return " " * width
    if len(values) > width:                      # merge neighbours, keep the peaks
        step = len(values) / width
        values = [max(values[int(i * step):max(int((i + 1) * step), int(i * step) + 1)])
                  for i in range(width)]
    top = max(values)
    scale = (len(BARS) - 1) / top if top > 0 else 0.0
    bars = "".join(BARS[int(round(v * scale))] if v > 0 else BARS[0] for v in values)
    return bars.rjust(width)


class RateChart(TextLines):
    """``label  ▁▂▅▇▆▃  1.2k/s``: a rate's recent history as a sparkline, and its value.

    One line drawn with the line API (a Textual ``Sparkline`` blends a colour per bar, which
    costs more than the rest of a panel at 4 Hz).  The newest value is on the right.
    """

    DEFAULT_CSS = """
    RateChart { height: 1; }
    RateChart > Sparkline { display: none; }
    """

    VALUE_WIDTH = 9

    def __init__(self, label: str, *, unit: str = "/s", id: str | None = None,
                 classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.label = label
        self.unit = unit
        self._history: list[float] = []
        self._value: float | None = None

    def compose(self) -> ComposeResult:
        # Hidden, never drawn: keeps ``query_one(Sparkline).data`` working for older code.
        yield Sparkline([])

    @property
    def data(self) -> list[float]:
        """The history shown, oldest first."""
        return list(self._history)

    @property
    def value(self) -> float | None:
        """The rate printed at the right."""
        return self._value

    def show(self, history: Sequence[float], current: float | None = None) -> None:
        """Draw ``history`` (oldest first) and print ``current`` (default: the last one)."""
        self._history = list(history)
        self._value = current if current is not None else (history[-1] if history else None)
        self.query_one(Sparkline).data = self._history
        self._draw()

    def on_resize(self) -> None:
        self._draw()

    def _draw(self) -> None:
        value = format_rate(self._value, self.unit).rjust(self.VALUE_WIDTH)
        room = self.size.width - len(self.label) - len(value) - 2
        line = Text.assemble(self.label, " ", (spark(self._history, room), "cyan"), " ", value)
        self.set_lines([line])


class KeyValue(Horizontal):
    """A ``label: value`` line whose value is updated in place: ``kv.set("xive")``.

    It is ``lines`` rows high (default 1; longer values wrap, then are cut), so updating it
    repaints one line instead of laying out the screen again — that keeps a 4 Hz monitor cheap.
    """

    DEFAULT_CSS = """
    KeyValue { height: 1; }
    KeyValue > .kv--key { width: auto; color: $text-muted; padding-right: 1; }
    KeyValue > .kv--value { width: 1fr; height: 100%; }
    """

    def __init__(self, key: str, value: str = "—", *, lines: int = 1,
                 id: str | None = None) -> None:
        super().__init__(id=id)
        self.key = key
        self.value = value
        self.styles.height = lines

    def compose(self) -> ComposeResult:
        yield Label(f"{self.key}:", classes="kv--key")
        yield TextLines(Text.from_markup(self.value), classes="kv--value")

    def set(self, value: str) -> None:
        """Show ``value`` (markup allowed: ``"[b]xive[/b]"``), wrapped to the box's lines."""
        if value != self.value:
            self.value = value
            self._draw()

    def on_resize(self) -> None:
        self._draw()

    def _draw(self) -> None:
        lines = self.query_one(".kv--value", TextLines)
        width = max(lines.size.width, 1)
        if "[" not in self.value:                # plain text: a cheap word wrap
            wrapped: list[Text | str] = list(textwrap.wrap(self.value, width) or [""])
        else:
            text = Text.from_markup(self.value)
            wrapped = list(text.wrap(self.app.console, width)) if text.cell_len > width else [text]
        lines.set_lines(wrapped)
