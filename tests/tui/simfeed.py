"""A deterministic feed for snapshot tests: the simulator in-process, a frozen clock.

:class:`InProcessFeed` drives :func:`vmctl.sim.build.build_simulation` (fixed seed, fixed
virtual steps) and reports exactly what :class:`vmctl.tui.feed.InstanceFeed` would for the
same machine — run state, vCPUs, the plugins' probes — with wall times derived from a fixed
epoch, so two runs draw the same pixels.  It polls ``polls`` times, then stays quiet.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from vmctl.config import load_machine
from vmctl.plugins import call
from vmctl.runtime.instance import Instance
from vmctl.sim.build import build_simulation
from vmctl.sim.qmp import QMPError
from vmctl.tui.feed import FeedError, parse_vcpus
from vmctl.tui.snapshot import Link, Snapshot
from vmctl.types import LiveState
from vmctl.tui.target import Target, attach_plugins

#: 2023-11-14 22:13:20 UTC: the frozen wall clock of every snapshot test.
EPOCH = 1_700_000_000.0


def make_target(pm: Any, machine_file: Path, state: Path, name: str | None = None) -> Target:
    """A Target for ``machine_file`` without an instance folder on disk."""
    machine = load_machine(machine_file)
    name = name or machine.name
    target = Target(Instance(state, name), backend="sim",
                    socket=Path(f"/run/user/1000/vmctl/{name}/qmp.sock"), machine=machine,
                    cpus=int(machine.get("machine.cpus") or 1))
    return attach_plugins(target, pm)


class InProcessFeed:
    """Implements :class:`vmctl.tui.feed.Feed` over an in-process simulation."""

    def __init__(self, target: Target, pm: Any, *, polls: int = 8, step: float = 0.25,
                 paused: bool = False, full: bool = True, up_before: float = 42.0,
                 crash: str = "") -> None:
        self.target = target
        self.polls = polls
        self.step = step
        self.full = full
        self.crash = crash
        self.on_snapshot = lambda snap: None
        self.on_event = lambda event: None
        self.sim = build_simulation(target.machine, paused=paused, thread_base=1000,
                                    contributions=call(pm, "vmctl_sim_devices",
                                                       machine=target.machine))
        self.started = EPOCH - up_before
        self.tick = 0
        self._seen_events = 0

    def _wall(self) -> float:
        return EPOCH + self.tick * self.step

    def _flush_events(self) -> None:
        for name, data in self.sim.events[self._seen_events:]:
            seconds = int(self._wall())
            event: dict[str, Any] = {"timestamp": {"seconds": seconds, "microseconds": 0},
                                     "event": name}
            if data is not None:
                event["data"] = data
            self.on_event(event)
        self._seen_events = len(self.sim.events)

    def _snapshot(self) -> Snapshot:
        if self.crash:
            return Snapshot(self.target.name, "sim", Link.CRASHED, self.tick * self.step,
                            self._wall(), reason=self.crash, socket=str(self.target.socket))
        run_state = self.sim.execute("query-status")["status"]
        vcpus, sim = (), None
        if self.full:
            sim = self.sim.execute("__org.vmctl_query-sim")
            vcpus = parse_vcpus(self.sim.execute("query-cpus-fast"), sim)
        plugins = {}
        for plugin, probe in self.target.probes.items():
            results = [self.sim.execute(cmd, dict(args)) for cmd, args in probe.commands]
            plugins[plugin] = LiveState(probe.parse(results), plugin=plugin, backend="sim")
        return Snapshot(self.target.name, "sim", Link.LIVE, self.tick * self.step, self._wall(),
                        run_state=run_state, started=self.started,
                        socket=str(self.target.socket), vcpus=vcpus, sim=sim, plugins=plugins)

    async def run(self) -> None:
        for _ in range(self.polls):
            if self.sim.vm.run_state == "running":
                self.sim.advance(self.step)
            self.tick += 1
            self._flush_events()
            self.on_snapshot(self._snapshot())
            await asyncio.sleep(0)
        await asyncio.Event().wait()

    async def execute(self, command: str, arguments: dict[str, Any] | None = None) -> Any:
        try:
            result = self.sim.execute(command, arguments)
        except QMPError as exc:
            raise FeedError(exc.desc, exc.error_class) from exc
        self._flush_events()
        self.on_snapshot(self._snapshot())
        return result

    def poke(self) -> None:
        """Nothing to do: every command already reported a snapshot."""

    async def aclose(self) -> None:
        """Nothing to close."""

    @property
    def done(self) -> bool:
        return self.tick >= self.polls
