"""The QMP poller against real simulator instances (state in tmp_path)."""

from __future__ import annotations

import asyncio

import pytest

from tests.tui.conftest import kill, state_dir
from vmctl.runtime.instance import Instance
from vmctl.tui.feed import FeedError, InstanceFeed
from vmctl.tui.snapshot import Link, Snapshot
from vmctl.tui.target import load_target


class Recorder:
    """Collects what a feed reports and waits for a condition."""

    def __init__(self) -> None:
        self.snaps: list[Snapshot] = []
        self.events: list[dict] = []

    async def until(self, predicate, timeout: float = 10.0, what: str = "") -> Snapshot:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            for snap in reversed(self.snaps):
                if predicate(snap):
                    return snap
            if loop.time() > deadline:
                seen = [(s.link.value, s.run_state, s.reason) for s in self.snaps[-5:]]
                raise AssertionError(f"no snapshot with {what}; last: {seen}")
            await asyncio.sleep(0.02)


async def _run(feed: InstanceFeed, body) -> None:
    task = asyncio.create_task(feed.run())
    try:
        await body()
    finally:
        await feed.aclose()
        assert task.done()


def _feed(pm, name: str, rec: Recorder, **kw) -> InstanceFeed:
    target = load_target(Instance(state_dir(), name), pm)
    return InstanceFeed(target, interval=kw.pop("interval", 0.05), on_snapshot=rec.snaps.append,
                        on_event=rec.events.append, retry=0.1, **kw)


def test_feed_polls_run_state_vcpus_and_plugin_state(start, pm):
    start("p9-dual.toml", name="p9")
    rec = Recorder()
    feed = _feed(pm, "p9", rec)

    async def body():
        snap = await rec.until(lambda s: s.link is Link.LIVE and s.plugins.get("spapr-irq")
                               and (s.plugins["spapr-irq"].state or {}).get("mode") == "xive",
                               what="the mode the guest negotiated")
        assert snap.run_state == "running"
        assert [v.index for v in snap.vcpus] == [0, 1]
        assert snap.sim is not None and snap.sim["phase"] in ("kernel", "running")
        assert snap.started is not None and snap.uptime is not None
        later = await rec.until(lambda s: s.sampled_at > snap.sampled_at, what="a second poll")
        assert later.sim["clock"] >= snap.sim["clock"]        # the steady poll goes on

    asyncio.run(_run(feed, body))


def test_commands_go_through_the_feed_and_events_trigger_a_poll(start, pm):
    start("p9-dual.toml", name="p9")
    rec = Recorder()
    feed = _feed(pm, "p9", rec, interval=5.0)      # slow period: only the event can explain it

    async def body():
        await rec.until(lambda s: s.link is Link.LIVE, what="a connection")
        assert await feed.execute("stop") == {}
        snap = await rec.until(lambda s: s.run_state == "paused", timeout=3.0,
                               what="paused right after STOP")
        assert snap.link is Link.LIVE
        assert any(e["event"] == "STOP" for e in rec.events)
        with pytest.raises(FeedError) as err:
            await feed.execute("no-such-command")
        assert err.value.error_class == "CommandNotFound"

    asyncio.run(_run(feed, body))


def test_a_killed_instance_is_reported_crashed_with_its_signal(start, pm):
    inst = start("p9-dual.toml", name="p9")
    rec = Recorder()
    feed = _feed(pm, "p9", rec)

    async def body():
        await rec.until(lambda s: s.link is Link.LIVE, what="a connection")
        kill(inst, supervisor=False)
        snap = await rec.until(lambda s: s.link is Link.CRASHED, what="crashed")
        assert "SIGKILL" in snap.reason
        assert snap.uptime is None
        assert snap.plugins.get("spapr-irq") is not None      # last state kept, marked by link
        with pytest.raises(FeedError, match="crashed"):
            await feed.execute("query-status")

    asyncio.run(_run(feed, body))


def test_quit_is_an_exit_and_removal_is_gone(start, pm):
    inst = start("p9-dual.toml", name="p9")
    rec = Recorder()
    feed = _feed(pm, "p9", rec)

    async def body():
        await rec.until(lambda s: s.link is Link.LIVE, what="a connection")
        await feed.execute("quit")
        snap = await rec.until(lambda s: s.link is Link.EXITED, what="exited")
        assert snap.reason == "exit status 0"
        inst.remove()
        await rec.until(lambda s: s.link is Link.GONE, timeout=5.0, what="gone")

    asyncio.run(_run(feed, body))


def test_a_missing_socket_is_reported_and_the_feed_connects_once_it_is_back(start, pm):
    inst = start("p9-dual.toml", name="p9", paused=True)
    sock = inst.socket()
    hidden = sock.with_name("hidden.sock")
    sock.rename(hidden)                           # the process lives, its socket path is gone
    rec = Recorder()
    feed = _feed(pm, "p9", rec)

    async def body():
        waiting = await rec.until(lambda s: s.link is Link.CONNECTING and s.reason,
                                  what="a connection failure")
        assert str(sock) in waiting.reason
        with pytest.raises(FeedError, match="connecting"):
            await feed.execute("cont")
        hidden.rename(sock)
        snap = await rec.until(lambda s: s.link is Link.LIVE, what="live once the socket is back")
        assert snap.run_state == "prelaunch"

    asyncio.run(_run(feed, body))
