"""The QMP poller behind both screens: one :class:`InstanceFeed` per instance.

A feed connects to the instance's QMP socket with ``qemu.qmp`` (the same client for the
simulator and for QEMU), subscribes to events, and polls the state at a steady rate:

* ``query-status`` (the run state) — every poll;
* ``query-cpus-fast`` and, on the simulator, ``__org.vmctl_query-sim`` (boot phase,
  virtual clock, vCPU loads) — in ``full`` mode (``monitor``), not in ``top``;
* each plugin's :class:`~vmctl.types.LiveProbe` commands, then its ``parse``.

At most **one request is in flight** per instance: polls and the user's commands
(:meth:`InstanceFeed.execute`, from the console and the keys) share one lock.  A lifecycle
event (``STOP``, ``RESUME``, ``RESET``, ``SHUTDOWN`` …) triggers the next poll at once, so
the run state follows a key press without waiting for the period.

When the connection drops, the feed asks the instance folder what happened
(:func:`vmctl.runtime.inspect.inspect`) and reports it as a :class:`~vmctl.tui.snapshot.Link`:
``lost`` (process alive, socket gone: it retries), ``crashed`` (with the exit status and
the last log line), ``exited``, or ``gone``.  It keeps watching, so an instance started
again under the same name is picked up.  :meth:`InstanceFeed.run` never raises for
anything the instance does; it ends only when cancelled.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable
from typing import Any, Protocol

from vmctl.runtime.client import InstanceClient, QMPCommandError, QMPConnectionError
from vmctl.runtime.inspect import Inspection, State, inspect
from vmctl.runtime.procinfo import thread_cpu
from vmctl.runtime.why import CONSOLE_BYTES, why_stopped
from vmctl.tui.snapshot import Link, Snapshot, Vcpu
from vmctl.tui.target import Target
from vmctl.types import LiveState

#: Events after which the run state has probably changed: poll at once.
LIFECYCLE_EVENTS = frozenset({"STOP", "RESUME", "RESET", "SHUTDOWN", "POWERDOWN",
                              "GUEST_PANICKED", "SUSPEND", "WAKEUP"})
SnapshotSink = Callable[[Snapshot], None]
EventSink = Callable[[dict[str, Any]], None]


class FeedError(Exception):
    """A command from the user could not be run; ``str()`` says why (QMP's ``desc``)."""

    def __init__(self, message: str, error_class: str = "") -> None:
        super().__init__(message)
        self.error_class = error_class


class Feed(Protocol):
    """What the screens need from a feed (tests provide in-process ones)."""

    target: Target
    on_snapshot: SnapshotSink
    on_event: EventSink

    async def run(self) -> None: ...

    async def execute(self, command: str, arguments: dict[str, Any] | None = None) -> Any: ...

    def poke(self) -> None: ...

    async def aclose(self) -> None: ...


class InstanceFeed:
    """Polls one instance every ``interval`` seconds (see the module docstring).

    ``full`` adds the vCPU table and the simulator's clock; ``top`` runs without it.
    ``clock`` is the wall clock (uptimes), ``monotonic`` the rate clock; both are
    injectable for tests.  The QMP session is a :class:`vmctl.runtime.client.InstanceClient`
    (its lock is what keeps one request in flight).
    """

    def __init__(self, target: Target, *, interval: float = 0.25, full: bool = True,
                 on_snapshot: SnapshotSink = lambda s: None,
                 on_event: EventSink = lambda e: None,
                 clock: Callable[[], float] = time.time,
                 monotonic: Callable[[], float] = time.monotonic,
                 retry: float = 0.5, timeout: float = 5.0) -> None:
        self.target = target
        self.interval = interval
        self.full = full
        self.on_snapshot = on_snapshot
        self.on_event = on_event
        self.clock = clock
        self.monotonic = monotonic
        self.retry = retry
        self.timeout = timeout
        self.latest: Snapshot | None = None
        self.polls = 0
        self._cpu_seen: dict[int, tuple[float, float]] = {}  # vCPU thread → (CPU s, poll time)
        self._client: InstanceClient | None = None
        self._poke = asyncio.Event()
        self._inspection: Inspection | None = None
        self._task: asyncio.Task[Any] | None = None
        self._closing: asyncio.Future[None] | None = None

    # -- public --------------------------------------------------------------------------
    async def run(self) -> None:
        """Connect, poll, reconnect, report; until cancelled (or :meth:`aclose`)."""
        self._task = asyncio.current_task()
        while True:
            link, reason = self._classify()
            if link is Link.CONNECTING:
                client = await self._connect()
                if client is None:
                    await self._sleep(self.retry)
                    continue
                reason = await self._session(client)
                link, why = self._classify(after_loss=True)
                self._report(link, why or reason)
                if link is Link.LOST:
                    await self._sleep(self.retry)
                continue
            self._report(link, reason)
            await self._sleep(max(self.retry, 1.0))

    async def execute(self, command: str, arguments: dict[str, Any] | None = None) -> Any:
        """Run one command for the user, after any poll in flight; FeedError on failure."""
        client = self._client
        if client is None or not client.connected:
            status = self.latest.status if self.latest else "not connected"
            raise FeedError(f"{self.target.name} is {status}: command not sent")
        try:
            result = await client.execute(command, arguments or None, timeout=self.timeout)
        except QMPCommandError as exc:
            raise FeedError(exc.desc, exc.error_class) from exc
        except QMPConnectionError as exc:
            raise FeedError(exc.message) from exc
        self.poke()
        return result

    def poke(self) -> None:
        """Poll now instead of at the next period."""
        self._poke.set()

    async def aclose(self, timeout: float = 2.0) -> None:
        """Stop :meth:`run` and wait until its QMP session is closed.

        Call it before the event loop ends (a screen's unmount), so the connection is shut
        down cleanly rather than torn apart with the loop.
        """
        task = self._task
        if task is not None and not task.done() and task is not asyncio.current_task():
            if not task.cancelling():
                task.cancel()
            await asyncio.wait({task}, timeout=timeout)
        if self._closing is not None and not self._closing.done():
            await asyncio.wait({self._closing}, timeout=timeout)

    # -- connection ----------------------------------------------------------------------
    def _classify(self, after_loss: bool = False) -> tuple[Link, str]:
        """The link state the instance folder implies (and remember its inspection)."""
        instance = self.target.instance
        if not instance.exists():
            return Link.of(None), f"instance folder {instance.dir} was removed"
        insp = inspect(instance, tail=3)
        self._inspection = insp
        link = Link.of(insp.state, after_loss=after_loss)
        if insp.state is State.RUNNING:
            reason = f"QMP socket {self.target.socket} closed; reconnecting" if after_loss else ""
        elif insp.state.alive:
            reason = f"backend {insp.state.value}"
        else:
            last = insp.log_tail[-1] if insp.log_tail else ""
            reason = insp.reason + (f" — {last}" if last and insp.state is State.CRASHED else "")
        return link, reason

    async def _connect(self) -> InstanceClient | None:
        client = InstanceClient(str(self.target.socket), label=self.target.name,
                                client_name=f"vmctl-tui:{self.target.name}")
        try:
            await client.connect(timeout=self.timeout)
        except QMPConnectionError as exc:
            first = self.latest is None or self.latest.link is Link.CONNECTING
            self._report(Link.CONNECTING if first else Link.LOST, exc.message)
            return None
        return client

    async def _session(self, client: InstanceClient) -> str:
        """Poll ``client`` until the connection fails; the reason."""
        self._client = client
        events = asyncio.create_task(self._pump_events(client))
        next_at = self.monotonic()
        try:
            while True:
                await self._poll(client)
                next_at += self.interval
                now = self.monotonic()
                if next_at < now:        # a slow poll: keep the phase, skip the missed ones
                    next_at = now + self.interval - (now - next_at) % self.interval
                await self._sleep(next_at - now)
        except QMPConnectionError as exc:
            return exc.message
        finally:
            self._client = None
            events.cancel()
            # a second cancellation (the app ending) must not cut the disconnect in half
            self._closing = asyncio.ensure_future(client.close())
            await asyncio.shield(self._closing)

    async def _pump_events(self, client: InstanceClient) -> None:
        async for event in client.events():
            self.on_event(event)
            if event.get("event") in LIFECYCLE_EVENTS:
                self.poke()
        self.poke()             # the backend hung up: let the poll notice now

    async def _sleep(self, seconds: float) -> None:
        """Wait ``seconds`` or until poked."""
        if seconds > 0 and not self._poke.is_set():
            try:
                await asyncio.wait_for(self._poke.wait(), seconds)
            except asyncio.TimeoutError:
                pass
        self._poke.clear()

    # -- polling -------------------------------------------------------------------------
    async def _ask(self, client: InstanceClient, command: str,
                   arguments: dict[str, Any] | None = None) -> Any:
        return await client.execute(command, arguments or None, timeout=self.timeout)

    async def _ask_or_none(self, client: InstanceClient, command: str) -> Any:
        """``command``'s answer, or None when the backend refuses it (not a link error)."""
        try:
            return await self._ask(client, command)
        except QMPCommandError:
            return None

    async def _poll(self, client: InstanceClient) -> None:
        status = await self._ask_or_none(client, "query-status")
        run_state = str(status.get("status")) if isinstance(status, dict) else None
        vcpus: tuple[Vcpu, ...] = ()
        sim: dict[str, Any] | None = None
        if self.full:
            cpus = await self._ask_or_none(client, "query-cpus-fast")
            if self.target.backend == "sim":
                sim = await self._ask_or_none(client, "__org.vmctl_query-sim")
            vcpus = parse_vcpus(cpus, sim)
            if self.target.backend != "sim" and self._inspection and self._inspection.pid:
                vcpus = self._thread_loads(self._inspection.pid, vcpus)
        plugins = {plugin: await self._probe(client, probe)
                   for plugin, probe in self.target.probes.items()}
        self.polls += 1
        reason = ""
        if run_state not in (None, "running"):
            meta = self.target.instance.meta() or {}
            reason = why_stopped(run_state, self.target.instance.log_tail(80, CONSOLE_BYTES),
                                 paused_at_start=bool(meta.get("paused")))
        self._report(Link.LIVE, reason, run_state=run_state, vcpus=vcpus, sim=sim,
                     plugins=plugins)

    def _thread_loads(self, pid: int, vcpus: tuple[Vcpu, ...]) -> tuple[Vcpu, ...]:
        """QEMU's vCPUs with a load: CPU time of each vCPU thread since the last poll over
        the wall time between the polls (virt-top's way); the thread's scheduler state
        when QEMU reports none (``running``, or ``idle`` for a halted, sleeping vCPU)."""
        now = self.monotonic()
        out = []
        for v in vcpus:
            seen = thread_cpu(pid, v.thread_id) if v.thread_id else None
            if seen is None:
                out.append(v)
                continue
            cpu, letter = seen
            before = self._cpu_seen.get(v.thread_id)
            self._cpu_seen[v.thread_id] = (cpu, now)
            load = None
            if before is not None and now > before[1]:
                load = max(0.0, min(1.0, (cpu - before[0]) / (now - before[1])))
            state = v.state or ("running" if letter == "R" else "idle")
            out.append(dataclasses.replace(v, load=load, state=state))
        return tuple(out)

    async def _probe(self, client: InstanceClient, probe: Any) -> LiveState:
        tags = {"plugin": probe.plugin, "backend": self.target.backend}
        results = []
        for command, arguments in probe.commands:
            try:
                results.append(await self._ask(client, command, dict(arguments)))
            except QMPCommandError as exc:
                return LiveState(error=f"{command}: {exc.desc}", **tags)
        if getattr(probe, "console", 0):
            results.append(self.target.instance.log_tail(probe.console, CONSOLE_BYTES))
        try:
            state = probe.parse(results)
        except Exception as exc:  # noqa: BLE001 - a plugin's parser bug stays in its panel
            return LiveState(error=f"{probe.plugin or 'plugin'} parse failed: "
                                   f"{type(exc).__name__}: {exc}", **tags)
        if not isinstance(state, dict):
            return LiveState(error=f"parse returned {type(state).__name__}, not a dict", **tags)
        return LiveState(state, **tags)

    def _report(self, link: Link, reason: str, **fields: Any) -> None:
        insp = self._inspection
        snap = Snapshot(name=self.target.name, backend=self.target.backend, link=link,
                        sampled_at=self.monotonic(), now=self.clock(), reason=reason,
                        started=insp.started if insp else None,
                        socket=str(self.target.socket), **fields)
        if link is not Link.LIVE and self.latest is not None:
            # keep showing the last known vCPUs and plugin states, marked stale by the link
            last = self.latest
            snap = dataclasses.replace(snap, vcpus=last.vcpus, plugins=last.plugins,
                                       sim=last.sim, run_state=last.run_state)
        self.latest = snap
        self.on_snapshot(snap)


def parse_vcpus(cpus: Any, sim: dict[str, Any] | None = None) -> tuple[Vcpu, ...]:
    """vCPU rows from ``query-cpus-fast`` (and ``__org.vmctl_query-sim`` loads)."""
    loads = {c.get("cpu-index"): c for c in (sim or {}).get("cpus", []) if isinstance(c, dict)}
    rows = []
    for entry in cpus if isinstance(cpus, list) else []:
        if not isinstance(entry, dict):
            continue
        index = int(entry.get("cpu-index", len(rows)))
        props = entry.get("props") or {}
        extra = loads.get(index, {})
        state = str(entry.get("cpu-state", ""))
        if not state and "online" in extra:
            state = "online" if extra["online"] else "offline"
        rows.append(Vcpu(index=index, thread_id=entry.get("thread-id"),
                         core=props.get("core-id"), state=state, load=extra.get("load"),
                         qom_path=str(entry.get("qom-path", ""))))
    return tuple(sorted(rows, key=lambda v: v.index))
