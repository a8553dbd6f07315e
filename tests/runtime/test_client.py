"""The async QMP helper the CLI and the TUI share, against a simulator instance."""

from __future__ import annotations

import asyncio

import pytest

from vmctl.config import load_machine
from vmctl.plugins import get_plugin_manager
from vmctl.runtime.client import InstanceClient, QMPCommandError, QMPConnectionError
from vmctl.runtime.launch import Launch
from vmctl.types import LiveProbe

from .conftest import MACHINES


@pytest.fixture
def started():
    pm = get_plugin_manager()
    machine = load_machine(MACHINES / "p9-dual.toml", pm)
    return Launch(machine, pm, name="cl").start()


def test_poll_reads_status_and_plugin_probes_one_request_at_a_time(started):
    def parse_sim(results):
        return {"phase": results[0]["phase"], "cpus": len(results[1])}

    probes = [LiveProbe((("__org.vmctl_query-sim", {}), ("query-cpus-fast", {})), parse_sim,
                        plugin="good"),
              LiveProbe((("no-such-command", {}),), lambda r: {}, plugin="unknown"),
              LiveProbe((("query-name", {}),), lambda r: 1 / 0, plugin="buggy")]

    async def main():
        async with InstanceClient(started.socket, label="cl") as qmp:
            snaps = []
            async for snap in qmp.poll(probes, interval=0.05):
                snaps.append(snap)
                if len(snaps) == 3:
                    break
            return snaps

    snaps = asyncio.run(main())
    assert [s["status"]["status"] for s in snaps] == ["running"] * 3
    plugins = snaps[-1]["plugins"]
    assert plugins["good"]["cpus"] == 2
    assert "CommandNotFound" in plugins["unknown"]["error"]
    assert plugins["buggy"]["error"].startswith("parse failed: ZeroDivisionError")
    assert snaps[0]["time"] < snaps[2]["time"]


def test_events_stream_ends_when_the_machine_goes_away(started):
    async def main():
        async with InstanceClient(started.socket) as qmp:
            seen = []

            async def watch():
                async for ev in qmp.events(("STOP", "RESUME", "SHUTDOWN")):
                    seen.append(ev["event"])

            task = asyncio.create_task(watch())
            await asyncio.sleep(0.05)
            await qmp.execute("stop")
            await qmp.execute("cont")
            await qmp.execute("quit")
            await asyncio.wait_for(task, 5)
            with pytest.raises(QMPConnectionError):
                await qmp.execute("query-status")
            return seen

    assert asyncio.run(main()) == ["STOP", "RESUME", "SHUTDOWN"]


def test_command_errors_keep_class_and_description(started):
    async def main():
        async with InstanceClient(started.socket) as qmp:
            with pytest.raises(QMPCommandError) as err:
                await qmp.execute("human-monitor-command", {"command-line": "info status", "nope": 1})
            return err.value

    err = asyncio.run(main())
    assert (err.error_class, err.desc) == ("GenericError", "Parameter 'nope' is unexpected")


def test_connecting_to_nothing_is_a_clear_error(tmp_path):
    async def main():
        await InstanceClient(str(tmp_path / "none.sock"), label="ghost").connect(timeout=1)

    with pytest.raises(QMPConnectionError, match="cannot talk QMP to ghost"):
        asyncio.run(main())
