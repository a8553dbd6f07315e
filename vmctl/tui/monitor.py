"""``vmctl monitor NAME``: one machine, whole.

::

    ┌ header: name · backend · run state · uptime · QMP socket ─────────────────────┐
    │ vCPU table                          │ QMP event log                           │
    │ plugin panels (one per plugin)      │                                         │
    │                                     │ QMP console                             │
    └ footer: p pause/resume · r reset · d powerdown · x stop · f panel · c console ┘

The screen renders what its feed (:mod:`vmctl.tui.feed`) reports and never blocks: QMP
commands from keys and the console run as workers and answer through messages.  When the
instance stops answering, crashes or is removed, the header says so, panels keep their last
state dimmed, and the screen stays up (the feed reconnects if the instance comes back).
"""

from __future__ import annotations

from typing import Any

from textual import work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Footer, Input

from vmctl.tui.dialogs import ConfirmScreen, HelpScreen
from vmctl.tui.feed import Feed, FeedError
from vmctl.tui.qmpline import format_reply
from vmctl.tui.snapshot import Link, Snapshot
from vmctl.tui.widgets import (ConsolePane, EventLog, InfoHeader, VcpuTable, build_panel,
                               deliver)

#: (command, question) for keys that disturb the guest; ``{name}`` is the instance.
CONFIRM = {
    "system_reset": "Reset {name}? The guest restarts at once.",
    "system_powerdown": "Send the power button to {name}? A booted guest shuts down.",
    "stop": "Stop {name}? QEMU/the simulator quits and the instance is removed.",
}


class SnapshotReceived(Message):
    """The feed polled the instance (or the link changed)."""

    def __init__(self, snapshot: Snapshot) -> None:
        super().__init__()
        self.snapshot = snapshot


class EventReceived(Message):
    """A QMP event arrived."""

    def __init__(self, event: dict[str, Any]) -> None:
        super().__init__()
        self.event = event


class CommandDone(Message):
    """A command sent from a key or the console finished (``error`` empty on success)."""

    def __init__(self, command: str, result: Any = None, error: str = "",
                 from_console: bool = False) -> None:
        super().__init__()
        self.command = command
        self.result = result
        self.error = error
        self.from_console = from_console


class MonitorScreen(Screen[None]):
    """The monitor for one instance, driven by ``feed`` (see the module docstring)."""

    DEFAULT_CSS = """
    MonitorScreen #body { height: 1fr; }
    MonitorScreen #left { width: 1fr; }
    MonitorScreen #right { width: 1fr; }
    MonitorScreen #panels { height: 1fr; }
    """
    BINDINGS = [
        Binding("p", "toggle_pause", "Pause/Resume"),
        Binding("r", "confirm('system_reset')", "Reset"),
        Binding("d", "confirm('system_powerdown')", "Powerdown"),
        Binding("x", "confirm('stop')", "Stop"),
        Binding("f", "next_panel", "Panel"),
        Binding("c", "console", "Console"),
        Binding("question_mark", "help", "Help"),
        Binding("q", "close", "Quit"),
        Binding("escape", "leave_input", "Leave input", show=False),
    ]
    HELP_NOTES = ("Panels dim and say why when the machine stops answering; the monitor keeps "
                  "running and reconnects when the instance comes back.\n"
                  "Console: query-status · hmp info pic · name arg=value · {\"execute\": …}")

    def __init__(self, feed: Feed, *, name: str | None = None) -> None:
        super().__init__(name=name)
        self.feed = feed
        self.target = feed.target
        self.latest: Snapshot | None = None
        self.panels: dict[str, Widget] = {}
        self.commands_sent: list[str] = []

    # -- layout --------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield InfoHeader(id="header")
        with Horizontal(id="body"):
            with Vertical(id="left"):
                yield VcpuTable(id="vcpus")
                with VerticalScroll(id="panels"):
                    for spec in self.target.panels:
                        panel = build_panel(spec, self.target.backend)
                        self.panels[spec.plugin] = panel
                        yield panel
            with Vertical(id="right"):
                yield EventLog(id="events")
                yield ConsolePane(id="console")
        yield Footer()

    def on_mount(self) -> None:
        self.title = f"vmctl monitor {self.target.name}"
        log = self.query_one(EventLog)
        for note in self.target.notes:
            log.note(note, style="yellow")
        self.feed.on_snapshot = lambda snap: self.post_message(SnapshotReceived(snap))
        self.feed.on_event = lambda event: self.post_message(EventReceived(event))
        self.run_worker(self.feed.run(), name=f"feed:{self.target.name}", group="feed",
                        exit_on_error=False)

    async def on_unmount(self) -> None:
        await self.feed.aclose()

    # -- feed ----------------------------------------------------------------------------
    def on_snapshot_received(self, message: SnapshotReceived) -> None:
        snap = message.snapshot
        previous = self.latest
        self.latest = snap
        self.query_one(InfoHeader).show(snap)
        if snap.link is Link.LIVE:
            self.query_one(VcpuTable).show(snap)
        log = self.query_one(EventLog)
        if previous is None or previous.link is not snap.link:
            if snap.link is not Link.LIVE or previous is not None:
                log.note(f"— {snap.status}{': ' + snap.reason if snap.reason else ''}",
                         style="bold" if snap.link is Link.LIVE else "bold red")
        for plugin, panel in self.panels.items():
            deliver(panel, snap.plugins.get(plugin), snap, log=log.note)

    def on_event_received(self, message: EventReceived) -> None:
        self.query_one(EventLog).add(message.event)

    # -- commands ------------------------------------------------------------------------
    def send(self, command: str, arguments: dict[str, Any] | None = None,
             from_console: bool = False) -> None:
        """Run ``command`` through the feed (after any poll in flight)."""
        self.commands_sent.append(command)
        self._send(command, arguments, from_console)

    @work(group="commands", exit_on_error=False)
    async def _send(self, command: str, arguments: dict[str, Any] | None,
                    from_console: bool) -> None:
        try:
            result = await self.feed.execute(command, arguments)
        except FeedError as exc:
            error = f"{exc.error_class}: {exc}" if exc.error_class else str(exc)
            self.post_message(CommandDone(command, error=error, from_console=from_console))
            return
        self.post_message(CommandDone(command, result, from_console=from_console))

    @work(group="commands", thread=True, exit_on_error=False)
    def _stop_instance(self) -> None:
        from vmctl.errors import VmctlError
        from vmctl.runtime.control import stop

        try:
            result = stop(self.target.name)
        except VmctlError as exc:
            self.post_message(CommandDone("stop", error=exc.message))
            return
        self.post_message(CommandDone("stop", f"stopped ({', '.join(result['steps']) or 'cleaned'})"))
        self.feed.poke()

    def on_command_done(self, message: CommandDone) -> None:
        console = self.query_one(ConsolePane)
        if message.from_console:
            if message.error:
                console.reply(f"error: {message.error}", error=True)
            else:
                console.reply(format_reply(message.result))
            return
        if message.error:
            self.notify(f"{message.command}: {message.error}", severity="error", timeout=6)
        else:
            self.notify(f"{message.command}: done", timeout=2)

    def on_console_pane_request(self, message: ConsolePane.Request) -> None:
        self.send(message.command, message.arguments, from_console=True)

    # -- key actions ---------------------------------------------------------------------
    def action_toggle_pause(self) -> None:
        running = self.latest is not None and self.latest.run_state == "running"
        self.send("stop" if running else "cont")

    def action_confirm(self, command: str) -> None:
        question = CONFIRM[command].format(name=self.target.name)

        def answered(yes: bool | None) -> None:
            if not yes:
                return
            if command == "stop":
                self.commands_sent.append("stop-instance")
                self._stop_instance()
            else:
                self.send(command)

        self.app.push_screen(ConfirmScreen(question), answered)

    def action_next_panel(self) -> None:
        """Cycle focus: vCPU table → each panel → event log → vCPU table."""
        order: list[Widget] = [self.query_one(VcpuTable), *self.panels.values(),
                               self.query_one(EventLog)]
        current = self.focused
        index = next((i for i, w in enumerate(order) if w is current), -1)
        order[(index + 1) % len(order)].focus()

    def action_console(self) -> None:
        self.query_one("#console-input", Input).focus()

    def action_leave_input(self) -> None:
        if isinstance(self.focused, Input):
            self.query_one(VcpuTable).focus()

    def action_help(self) -> None:
        keys = [(b.key if b.key != "question_mark" else "?", b.description)
                for b in self.BINDINGS if b.show]
        keys += [("tab", "next widget"), ("enter", "send the console line")]
        self.app.push_screen(HelpScreen(f"vmctl monitor {self.target.name}", keys,
                                        self.HELP_NOTES))

    def action_close(self) -> None:
        """Back to ``vmctl top`` when opened from there, else quit."""
        if len(self.app.screen_stack) > 1:
            self.dismiss(None)
        else:
            self.app.exit()


class MonitorApp(App[None]):
    """``vmctl monitor``: the :class:`MonitorScreen` alone."""

    TITLE = "vmctl monitor"

    def __init__(self, feed: Feed) -> None:
        super().__init__()
        self.feed = feed

    def get_default_screen(self) -> MonitorScreen:
        return MonitorScreen(self.feed)
