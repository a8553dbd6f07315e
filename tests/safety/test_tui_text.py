"""TUI text shows control characters escaped: a guest or a log line cannot drive the terminal."""

from __future__ import annotations

import asyncio

from textual.app import App, ComposeResult

from vmctl.tui.widgets import ConsolePane, EventLog


class _Host(App[None]):
    def compose(self) -> ComposeResult:
        yield EventLog(id="events")
        yield ConsolePane(id="console")


def test_event_log_and_console_escape_control_characters():
    async def scenario() -> list[str]:
        app = _Host()
        async with app.run_test(size=(120, 40)) as pilot:
            log = app.query_one(EventLog)
            log.note("backend said \x1b]0;owned\x07 and left")
            log.add({"event": "EVIL\x1b[2J", "data": {"x": "\x1b"},
                     "timestamp": {"seconds": 0, "microseconds": 0}})
            app.query_one(ConsolePane).reply("line one\nline \x9b31m two")
            await pilot.pause()
            texts = [strip.text for strip in log.lines]
            texts += [strip.text for strip in app.query_one(ConsolePane).output.lines]
        return texts

    texts = asyncio.run(scenario())
    joined = "\n".join(texts)
    assert "\\x1b]0;owned\\x07" in joined and "EVIL\\x1b[2J" in joined and "\\x9b31m" in joined
    assert "\x1b" not in joined and "\x9b" not in joined and "\x07" not in joined
