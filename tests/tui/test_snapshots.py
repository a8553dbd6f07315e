"""Layout snapshots (pytest-textual-snapshot): deterministic feeds, fixed seed, frozen clock.

Update after an intended layout change with ``pytest tests/tui --snapshot-update`` and
review the SVGs in ``tests/tui/__snapshots__/``.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from tests.tui.conftest import MACHINES, wait_for
from tests.tui.simfeed import EPOCH, InProcessFeed, make_target
from vmctl.config import load_machine
from vmctl.runtime.instance import Instance
from vmctl.tui.monitor import MonitorApp
from vmctl.tui.top import TopApp

SIZE = (140, 44)


@pytest.fixture(autouse=True)
def utc():
    """Event times are printed in local time: pin it."""
    old = os.environ.get("TZ")
    os.environ["TZ"] = "UTC"
    time.tzset()
    yield
    if old is None:
        del os.environ["TZ"]
    else:
        os.environ["TZ"] = old
    time.tzset()


def _monitor(pm, tmp_path: Path, **feed_options) -> tuple[MonitorApp, InProcessFeed]:
    target = make_target(pm, MACHINES / "p9-dual.toml", tmp_path / "state")
    feed = InProcessFeed(target, pm, **feed_options)
    return MonitorApp(feed), feed


def _settled(feed: InProcessFeed, extra=lambda: True):
    async def run_before(pilot) -> None:
        await wait_for(pilot, lambda: feed.done and extra(), what="the scripted polls")
        await pilot.pause()
    return run_before


def test_monitor_running_guest_after_cas(snap_compare, pm, tmp_path):
    app, feed = _monitor(pm, tmp_path, polls=12)
    assert snap_compare(app, terminal_size=SIZE, run_before=_settled(feed))


def test_monitor_paused_by_key_with_stop_in_the_event_log(snap_compare, pm, tmp_path):
    app, feed = _monitor(pm, tmp_path, polls=8)

    async def run_before(pilot) -> None:
        await _settled(feed)(pilot)
        await pilot.press("p")
        await wait_for(pilot, lambda: app.screen.latest.run_state == "paused", what="paused")
        await pilot.pause()

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_monitor_of_a_crashed_instance(snap_compare, pm, tmp_path):
    app, feed = _monitor(pm, tmp_path, polls=1,
                         crash="killed by SIGKILL — vmctl-sim: terminating")
    assert snap_compare(app, terminal_size=SIZE, run_before=_settled(feed))


def test_monitor_help(snap_compare, pm, tmp_path):
    app, feed = _monitor(pm, tmp_path, polls=2, paused=True)

    async def run_before(pilot) -> None:
        await _settled(feed)(pilot)
        await pilot.press("question_mark")
        await pilot.pause()

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_top_with_running_paused_and_crashed_instances(snap_compare, pm, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    state = Path("state")
    for name, machine in (("web", "p9-dual.toml"), ("db", "p9-xive.toml"),
                          ("batch", "p8-dual.toml")):
        inst = Instance(state, name)
        inst.dir.mkdir(parents=True)
        (inst.dir / "instance.json").write_text(json.dumps({"name": name, "backend": "sim"}))
        (inst.dir / "machine.json").write_text(json.dumps(
            load_machine(MACHINES / machine).to_json()))
    feeds: list[InProcessFeed] = []

    def factory(target, full, interval):
        feed = InProcessFeed(target, pm, polls=6, full=full, paused=target.name == "db",
                             up_before={"web": 3725.0, "db": 61.0}.get(target.name, 0.0),
                             crash="killed by SIGKILL — Kernel panic" if target.name == "batch"
                             else "")
        feeds.append(feed)
        return feed

    # no periodic redraw during the test: one explicit redraw once every feed is done
    app = TopApp(state, pm, feed_factory=factory, clock=lambda: EPOCH + 1.5, interval=3600)

    async def run_before(pilot) -> None:
        await wait_for(pilot, lambda: len(feeds) == 3 and all(f.done for f in feeds),
                       what="every row's polls")
        app.screen.render_rows()
        await pilot.pause()

    assert snap_compare(app, terminal_size=(120, 12), run_before=run_before)
