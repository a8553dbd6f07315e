"""Plugins' device models inside the simulator, each isolated from the others.

The simulator asks every plugin's ``vmctl_sim_devices(machine)`` once, attaches what comes
back, and from then on a device that raises is *failed*: it is named in the console log
with its exception, reports ``{"status": "failed", "error": ...}`` and gets no more phases
or ticks — the machine and the other devices carry on.  A command handler that raises
something other than :class:`~vmctl.sim.qmp.QMPError` answers that one command with a
``GenericError`` and leaves the device working.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from vmctl.model import ModelError
from vmctl.sim.qmp import VENDOR_PREFIX, QMPError
from vmctl.types import SimDevice

Log = Callable[[str], None]


@dataclass
class DeviceRecord:
    """A device and how it is doing (``failed`` holds the first error it raised)."""

    plugin: str
    device: SimDevice
    failed: str | None = None
    commands: list[str] = field(default_factory=list)
    info: list[str] = field(default_factory=list)


class DeviceHost:
    """Attaches devices, fans out phases and ticks, routes vendor commands and ``info``."""

    def __init__(self, log: Log, reserved_commands: Iterable[str] = (),
                 reserved_info: Iterable[str] = ()) -> None:
        self._log = log
        self.records: list[DeviceRecord] = []
        self.commands: dict[str, tuple[DeviceRecord, Callable[[dict[str, Any]], Any]]] = {}
        self.info: dict[str, tuple[DeviceRecord, Callable[[], str]]] = {}
        self._reserved_commands = set(reserved_commands)
        self._reserved_info = set(reserved_info)

    # -- set-up --------------------------------------------------------------------------
    def attach_all(self, vm: Any, contributions: Iterable[tuple[str, Any]]) -> None:
        """Attach each plugin's devices: ``contributions`` is ``[(plugin, devices)]``."""
        for plugin, devices in contributions:
            for device in devices or ():
                if not isinstance(device, SimDevice):
                    self._log(f"vmctl-sim: warning: plugin {plugin!r} returned "
                              f"{type(device).__name__}, not a SimDevice; ignored")
                    continue
                if not device.plugin:
                    device.plugin = plugin
                record = DeviceRecord(plugin, device)
                self.records.append(record)
                if self._guard(record, "attach", device.attach, vm)[0]:
                    self._register(record)

    def _register(self, record: DeviceRecord) -> None:
        cmds = self._guard(record, "qmp_commands", record.device.qmp_commands)[1]
        for name, handler in (cmds if isinstance(cmds, dict) else {}).items():
            if not name.startswith(VENDOR_PREFIX):
                self._log(f"vmctl-sim: warning: plugin {record.plugin!r}: command {name!r} "
                          f"lacks the vendor prefix {VENDOR_PREFIX!r}; ignored")
            elif name in self.commands or name in self._reserved_commands:
                self._log(f"vmctl-sim: warning: plugin {record.plugin!r}: command {name!r} "
                          f"is already defined; ignored")
            else:
                self.commands[name] = (record, handler)
                record.commands.append(name)
        infos = self._guard(record, "hmp_info", record.device.hmp_info)[1]
        for name, fn in (infos if isinstance(infos, dict) else {}).items():
            if name in self.info or name in self._reserved_info:
                self._log(f"vmctl-sim: warning: plugin {record.plugin!r}: 'info {name}' "
                          f"is already defined; ignored")
            else:
                self.info[name] = (record, fn)
                record.info.append(name)

    # -- driving -------------------------------------------------------------------------
    def on_phase(self, phase: str) -> None:
        for record in self.records:
            if record.failed is None:
                self._guard(record, f"on_phase({phase!r})", record.device.on_phase, phase)

    def tick(self, now: float, dt: float) -> None:
        for record in self.records:
            if record.failed is None:
                self._guard(record, "tick", record.device.tick, now, dt)

    def _guard(self, record: DeviceRecord, what: str, fn: Callable[..., Any],
               *args: Any) -> tuple[bool, Any]:
        """Call ``fn``; on an exception mark the device failed: ``(ok, result)``."""
        try:
            return True, fn(*args)
        except Exception as exc:  # a plugin bug must not take the machine down
            record.failed = f"{what}: {type(exc).__name__}: {exc}"
            self._log(f"vmctl-sim: plugin {record.plugin!r} device failed in {record.failed}")
            self._log("".join(traceback.format_exception(exc)).rstrip())
            return False, None

    # -- queries -------------------------------------------------------------------------
    def run_command(self, name: str, arguments: dict[str, Any]) -> Any:
        """Run vendor command ``name``; QMPError for the client on any failure."""
        record, handler = self.commands[name]
        if record.failed is not None:
            raise QMPError("DeviceNotActive",
                           f"plugin '{record.plugin}' device failed: {record.failed}")
        try:
            return handler(arguments)
        except QMPError:
            raise
        except ModelError as exc:
            raise QMPError.generic(str(exc)) from exc
        except Exception as exc:
            self._log(f"vmctl-sim: plugin {record.plugin!r} command {name!r} raised "
                      f"{type(exc).__name__}: {exc}")
            raise QMPError.generic(f"plugin '{record.plugin}' failed in {name}: "
                                   f"{type(exc).__name__}: {exc}") from exc

    def run_info(self, name: str) -> str:
        record, fn = self.info[name]
        if record.failed is not None:
            return f"plugin '{record.plugin}' device failed: {record.failed}\n"
        try:
            return str(fn())
        except Exception as exc:
            self._log(f"vmctl-sim: plugin {record.plugin!r} 'info {name}' raised {exc!r}")
            return f"info {name}: plugin '{record.plugin}' failed: {type(exc).__name__}: {exc}\n"

    def state_of(self, plugin: str) -> dict[str, Any]:
        """The device state for ``__org.vmctl_query-device``; DeviceNotFound if none."""
        records = [r for r in self.records if r.plugin == plugin]
        if not records:
            known = ", ".join(sorted({r.plugin for r in self.records})) or "none"
            raise QMPError("DeviceNotFound", f"No simulated device from plugin '{plugin}' "
                                             f"(plugins with devices: {known})")
        states = [self._state(r) for r in records]
        return states[0] if len(states) == 1 else {"devices": states}

    def _state(self, record: DeviceRecord) -> dict[str, Any]:
        if record.failed is not None:
            return {"status": "failed", "error": record.failed}
        ok, state = self._guard(record, "state", record.device.state)
        if not ok:
            return {"status": "failed", "error": record.failed}
        return dict(state) if isinstance(state, dict) else {"value": state}

    def plugins(self) -> list[dict[str, Any]]:
        """One entry per device for ``__org.vmctl_query-plugins``."""
        return [{"plugin": r.plugin, "device": type(r.device).__name__,
                 "status": "failed" if r.failed else "ok", "error": r.failed,
                 "commands": list(r.commands), "info": list(r.info)} for r in self.records]
