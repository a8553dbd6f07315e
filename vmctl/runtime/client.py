"""Async QMP access to a running instance, over the ``qemu.qmp`` library.

Used by the CLI (one ``asyncio.run`` per command) and by the TUI (a long-lived connection
that polls and listens to events)::

    async with InstanceClient(socket_path) as qmp:
        status = await qmp.execute("query-status")
        async for snap in qmp.poll(probes, interval=0.5):   # one request in flight
            show(snap["status"], snap["plugins"])
        async for event in qmp.events():                    # ends when the VM goes
            print(event["event"])

Failures become :class:`~vmctl.errors.VmctlError` subclasses: :class:`QMPCommandError`
(the backend answered with an error: ``error_class``, ``desc``) and
:class:`QMPConnectionError` (could not connect, or the connection was lost mid-command).
It works the same against the simulator and against QEMU.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any

from qemu.qmp import ConnectError, EventListener, ExecInterruptedError, ExecuteError, QMPClient
from qemu.qmp.protocol import Runstate, StateError

from vmctl.errors import VmctlError
from vmctl.types import LiveProbe

# qemu.qmp logs a server hang-up at ERROR level; for vmctl that is an ordinary outcome.
logging.getLogger("qemu.qmp").setLevel(logging.CRITICAL)


class QMPCommandError(VmctlError):
    """The backend refused a command: ``{"error": {"class": …, "desc": …}}``."""

    def __init__(self, command: str, error_class: str, desc: str) -> None:
        hint = ""
        if error_class == "CommandNotFound":
            hint = "'query-commands' lists the commands this backend knows"
        super().__init__(f"{command}: {error_class}: {desc}", hint=hint)
        self.command = command
        self.error_class = error_class
        self.desc = desc


class QMPConnectionError(VmctlError):
    """No QMP session: connecting failed or the backend hung up."""


class InstanceClient:
    """One QMP connection to ``socket_path``; ``label`` names the instance in messages."""

    def __init__(self, socket_path: str, *, label: str = "", client_name: str = "vmctl") -> None:
        self.socket_path = str(socket_path)
        self.label = label or self.socket_path
        self.qmp = QMPClient(client_name)
        self._lock = asyncio.Lock()
        self._gone = asyncio.Event()
        self._watcher: asyncio.Task[None] | None = None

    # -- connection ----------------------------------------------------------------------
    async def connect(self, timeout: float = 3.0) -> InstanceClient:
        try:
            await asyncio.wait_for(self.qmp.connect(self.socket_path), timeout)
        except (ConnectError, OSError, asyncio.TimeoutError, EOFError) as exc:
            await self._abandon()
            cause = getattr(exc, "exc", None) or exc
            raise QMPConnectionError(
                f"cannot talk QMP to {self.label} on {self.socket_path}: "
                f"{cause or type(cause).__name__}",
                hint="vmctl ps shows whether it is still running") from exc
        self._watcher = asyncio.create_task(self._watch())
        return self

    async def _watch(self) -> None:
        while self.qmp.runstate is Runstate.RUNNING:
            await self.qmp.runstate_changed()
        self._gone.set()

    async def _abandon(self) -> None:
        try:
            await self.qmp.disconnect()
        except Exception:  # noqa: BLE001 - the session is being thrown away anyway
            pass

    async def close(self) -> None:
        """Disconnect; a server that already hung up (after ``quit``) is not an error."""
        if self._watcher is not None:
            self._watcher.cancel()
        await self._abandon()

    async def __aenter__(self) -> InstanceClient:
        return await self.connect()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def greeting(self) -> dict[str, Any]:
        g = self.qmp.greeting
        return g._asdict() if g is not None else {}  # the Greeting model wraps the raw dict

    @property
    def connected(self) -> bool:
        return not self._gone.is_set() and self.qmp.runstate is Runstate.RUNNING

    # -- commands ------------------------------------------------------------------------
    async def execute(self, command: str, arguments: dict[str, Any] | None = None,
                      timeout: float | None = 10.0) -> Any:
        """Run one command (one in flight per client); its ``return`` value."""
        async with self._lock:
            try:
                return await asyncio.wait_for(self.qmp.execute(command, arguments), timeout)
            except ExecuteError as exc:
                raise QMPCommandError(command, exc.error_class, exc.error.error.desc) from exc
            except (ExecInterruptedError, StateError, EOFError, OSError) as exc:
                raise QMPConnectionError(f"{self.label}: connection lost during {command!r}",
                                         hint="vmctl ps shows whether it is still running"
                                         ) from exc
            except asyncio.TimeoutError as exc:
                raise QMPConnectionError(f"{self.label}: no answer to {command!r} within "
                                         f"{timeout:.0f} s") from exc

    async def read_probes(self, probes: Iterable[LiveProbe],
                          console: Callable[[int], list[str]] | None = None) -> dict[str, Any]:
        """Each plugin's live state: ``{plugin: parsed}``, or ``{plugin: {"error": …}}``.

        ``console(n)`` gives the console log's last ``n`` lines, for probes that ask for
        them (:attr:`LiveProbe.console`); without it such a probe gets an empty list.
        """
        out: dict[str, Any] = {}
        for probe in probes:
            try:
                results = [await self.execute(cmd, dict(args) or None)
                           for cmd, args in probe.commands]
            except QMPCommandError as exc:
                out[probe.plugin] = {"error": str(exc)}
                continue
            if probe.console:
                results.append(console(probe.console) if console else [])
            try:
                out[probe.plugin] = probe.parse(results)
            except Exception as exc:  # noqa: BLE001 - a plugin's parser bug stays its own
                out[probe.plugin] = {"error": f"parse failed: {type(exc).__name__}: {exc}"}
        return out

    async def snapshot(self, probes: Iterable[LiveProbe] = (),
                       console: Callable[[int], list[str]] | None = None) -> dict[str, Any]:
        """``{"time", "status", "plugins"}``: run state and every plugin's live state."""
        status = await self.execute("query-status")
        return {"time": time.time(), "status": status,
                "plugins": await self.read_probes(probes, console)}

    async def poll(self, probes: Iterable[LiveProbe] = (),
                   interval: float = 1.0) -> AsyncIterator[dict[str, Any]]:
        """Snapshots every ``interval`` seconds until the connection ends."""
        probes = list(probes)
        while self.connected:
            try:
                yield await self.snapshot(probes)
            except QMPConnectionError:
                return
            try:
                await asyncio.wait_for(self._gone.wait(), interval)
                return
            except asyncio.TimeoutError:
                continue

    async def events(self, names: Iterable[str] = ()) -> AsyncIterator[dict[str, Any]]:
        """QMP events as dicts (all, or only ``names``); ends when the backend goes away."""
        listener = EventListener(list(names) or None)
        self.qmp.register_listener(listener)
        try:
            while True:
                get = asyncio.ensure_future(listener.get())
                gone = asyncio.ensure_future(self._gone.wait())
                done, _ = await asyncio.wait({get, gone}, return_when=asyncio.FIRST_COMPLETED)
                if get in done:
                    gone.cancel()
                    yield dict(get.result())
                    continue
                get.cancel()
                for event in listener.clear():  # what arrived just before the hang-up
                    yield dict(event)
                return
        finally:
            self.qmp.remove_listener(listener)


async def execute_once(socket_path: str, command: str, arguments: dict[str, Any] | None = None,
                       *, label: str = "", timeout: float = 10.0) -> Any:
    """Connect, run one command, disconnect."""
    client = InstanceClient(socket_path, label=label)
    await client.connect()
    try:
        return await client.execute(command, arguments, timeout)
    finally:
        await client.close()
