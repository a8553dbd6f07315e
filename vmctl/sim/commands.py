"""The simulator's QMP command table.

Standard commands answer with QEMU 7.2's shapes (``query-status`` →
``{"status", "singlestep", "running"}``, ``query-cpus-fast`` per target as QEMU shows it).
vmctl's own commands carry the vendor prefix:

``__org.vmctl_query-device {"plugin": NAME}``
    the plugin's device state (``SimDevice.state()``); ``DeviceNotFound`` when the plugin
    has no device in this machine
``__org.vmctl_query-plugins``
    every device: plugin, class, ``ok``/``failed``, its commands and ``info`` subcommands
``__org.vmctl_query-sim``
    the simulator's own state: virtual clock, boot phase, seed, workload, vCPU loads

Plugins add more through ``SimDevice.qmp_commands()``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from vmctl.model import ModelError
from vmctl.sim.devices import DeviceHost
from vmctl.sim.hmp import BUILTIN_INFO, run_hmp
from vmctl.sim.qmp import QEMU_VERSION, QMPError, Request, check_arguments
from vmctl.sim.vm import SimVM

Handler = Callable[[dict[str, Any]], Any]
Spec = dict[str, tuple[type, bool]]


class Dispatcher:
    """Runs checked requests against one :class:`SimVM` and its devices."""

    def __init__(self, vm: SimVM, devices: DeviceHost, *, name: str, package: str) -> None:
        self.vm = vm
        self.devices = devices
        self.name = name
        self.package = package
        self.version = dict(QEMU_VERSION)
        self.table: dict[str, tuple[Spec, Handler]] = {
            "qmp_capabilities": ({"enable": (list, False)}, lambda a: {}),
            "query-version": ({}, lambda a: {"qemu": dict(self.version),
                                             "package": self.package}),
            "query-commands": ({}, lambda a: [{"name": n} for n in self.command_names()]),
            "query-name": ({}, lambda a: {"name": self.name}),
            "query-status": ({}, lambda a: self.query_status()),
            "query-cpus-fast": ({}, lambda a: self.query_cpus_fast()),
            "query-kvm": ({}, lambda a: {"enabled": False, "present": False}),
            "stop": ({}, lambda a: self.cmd_stop()),
            "cont": ({}, lambda a: self.cmd_cont()),
            "system_reset": ({}, lambda a: self.cmd_system_reset()),
            "system_powerdown": ({}, lambda a: self.cmd_system_powerdown()),
            "quit": ({}, lambda a: self.cmd_quit()),
            "human-monitor-command": ({"command-line": (str, True), "cpu-index": (int, False)},
                                      self.cmd_hmp),
            "__org.vmctl_query-device": ({"plugin": (str, True)},
                                         lambda a: self.devices.state_of(a["plugin"])),
            "__org.vmctl_query-plugins": ({}, lambda a: self.devices.plugins()),
            "__org.vmctl_query-sim": ({}, lambda a: self.query_sim()),
        }

    @staticmethod
    def reserved() -> tuple[set[str], set[str]]:
        """Command and ``info`` names plugins may not take."""
        return set(_BUILTIN_COMMANDS), set(BUILTIN_INFO)

    def command_names(self) -> list[str]:
        return list(self.table) + list(self.devices.commands)

    def execute(self, request: Request) -> Any:
        """Run ``request`` (already checked for shape); QMPError on failure.

        As QEMU's dispatcher: the command is looked up, an ``exec-oob`` request refused
        (no command here allows out-of-band execution), then the arguments checked.
        """
        name = request.command
        if name not in self.table and name not in self.devices.commands:
            raise QMPError("CommandNotFound", f"The command {name} has not been found")
        if request.oob:
            raise QMPError.generic(f"The command {name} does not support OOB")
        if name in self.table:
            spec, handler = self.table[name]
            check_arguments(request.arguments, spec)
            return handler(request.arguments)
        return self.devices.run_command(name, dict(request.arguments))

    # -- lifecycle commands ---------------------------------------------------------------
    def _model(self, fn: Callable[[], None]) -> dict[str, Any]:
        try:
            fn()
        except ModelError as exc:
            raise QMPError.generic(exc.strerror) from exc
        return {}

    def cmd_stop(self) -> dict[str, Any]:
        return self._model(self.vm.lifecycle.stop)

    def cmd_cont(self) -> dict[str, Any]:
        return self._model(self.vm.lifecycle.cont)

    def cmd_system_reset(self) -> dict[str, Any]:
        return self._model(self.vm.lifecycle.reset)

    def cmd_system_powerdown(self) -> dict[str, Any]:
        return self._model(self.vm.lifecycle.powerdown)

    def cmd_quit(self) -> dict[str, Any]:
        return self._model(self.vm.lifecycle.quit)

    def cmd_hmp(self, args: dict[str, Any]) -> str:
        cpu_index = 0
        if "cpu-index" in args:
            # QEMU passes the int64 to monitor_set_cpu(int): it wraps to 32 bits.
            cpu_index = (args["cpu-index"] + (1 << 31)) % (1 << 32) - (1 << 31)
            if all(cpu.index != cpu_index for cpu in self.vm.cpus):
                raise QMPError.generic("Parameter 'cpu-index' expects a CPU number")
        return run_hmp(self, args["command-line"], cpu_index)

    # -- queries -------------------------------------------------------------------------
    def query_status(self) -> dict[str, Any]:
        state = self.vm.run_state
        return {"status": state, "singlestep": False, "running": state == "running"}

    def query_cpus_fast(self) -> list[dict[str, Any]]:
        arch = str(getattr(self.vm.machine, "arch", "ppc64"))
        return [_cpu_entry(arch, cpu.index, cpu.thread_id, cpu.online) for cpu in self.vm.cpus]

    def query_sim(self) -> dict[str, Any]:
        vm = self.vm
        return {"clock": round(vm.now(), 6), "phase": vm.phase, "run-state": vm.run_state,
                "seed": vm.seed, "workload": vm.workload.name,
                "resets": vm.lifecycle.resets,
                "cpus": [{"cpu-index": c.index, "online": c.online, "load": round(c.load, 4)}
                         for c in vm.cpus]}


_BUILTIN_COMMANDS = ("qmp_capabilities", "query-version", "query-commands", "query-name",
                     "query-status", "query-cpus-fast", "query-kvm", "stop", "cont",
                     "system_reset", "system_powerdown", "quit", "human-monitor-command",
                     "__org.vmctl_query-device", "__org.vmctl_query-plugins",
                     "__org.vmctl_query-sim")


def _cpu_entry(arch: str, index: int, thread_id: int, online: bool) -> dict[str, Any]:
    """One ``query-cpus-fast`` element, shaped like QEMU 7.2's for the target."""
    entry: dict[str, Any] = {"thread-id": thread_id}
    if arch == "ppc64":
        entry["props"] = {"core-id": index, "node-id": 0}
        entry["qom-path"] = f"/machine/unattached/device[{index + 1}]/thread[0]"
    elif arch == "s390x":
        entry["props"] = {"core-id": index}
        entry["cpu-state"] = "operating" if online else "stopped"
        entry["qom-path"] = f"/machine/unattached/device[{index}]"
    elif arch == "aarch64":
        entry["props"] = {"core-id": index, "thread-id": 0, "socket-id": 0, "cluster-id": 0}
        entry["qom-path"] = f"/machine/unattached/device[{index}]"
    else:
        entry["props"] = {"core-id": index, "thread-id": 0, "socket-id": 0}
        entry["qom-path"] = f"/machine/unattached/device[{index + 1 if index else 0}]"
    entry["cpu-index"] = index
    entry["target"] = arch
    return entry
