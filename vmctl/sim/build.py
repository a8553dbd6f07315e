"""Assembling a simulated machine from a resolved :class:`~vmctl.config.machine.Machine`.

:func:`build_simulation` is the whole simulator without sockets or clock: plugin authors
and tests can drive it in-process::

    sim = build_simulation(machine, contributions=[("my-plugin", [MyDevice()])],
                           paused=True)
    sim.execute("cont")
    sim.advance(2.0)                       # two virtual seconds
    assert sim.execute("query-status")["status"] == "running"
    sim.events                             # [("RESUME", None), ...] when no sink is given
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from vmctl import __version__
from vmctl.sim.commands import Dispatcher
from vmctl.sim.devices import DeviceHost
from vmctl.sim.qmp import Request
from vmctl.sim.vm import SimVM, machine_value
from vmctl.sim.workload import boot_times, get_workload

#: ``package`` string of the greeting and ``query-version``.
PACKAGE = f"vmctl-sim {__version__}"


@dataclass
class Simulation:
    """A built machine: its :class:`SimVM`, devices and command dispatcher."""

    vm: SimVM
    devices: DeviceHost
    dispatcher: Dispatcher
    events: list[tuple[str, dict[str, Any] | None]] = field(default_factory=list)

    def execute(self, command: str, arguments: dict[str, Any] | None = None) -> Any:
        """Run a QMP command in-process (QMPError on failure)."""
        return self.dispatcher.execute(Request(command, dict(arguments or {})))

    def advance(self, seconds: float, quantum: float = 0.05) -> None:
        """Let ``seconds`` of virtual time pass in fixed ``quantum`` steps (replayable)."""
        steps, rest = divmod(round(seconds / quantum, 9), 1)
        for _ in range(int(steps)):
            self.vm.lifecycle.advance(quantum)
        if rest:
            self.vm.lifecycle.advance(rest * quantum)

    @property
    def finished(self) -> bool:
        return self.vm.lifecycle.finished


def sim_settings(machine: Any) -> tuple[int, str]:
    """``(seed, workload)`` from the machine's ``[sim]`` section (defaults 1, "default")."""
    try:
        section = dict(machine.section("sim") or {})
    except (KeyError, AttributeError):
        section = {}
    return int(section.get("seed", 1)), str(section.get("workload", "default"))


def build_simulation(machine: Any, *, contributions: Iterable[tuple[str, Any]] = (),
                     paused: bool = False,
                     sink: Callable[[str, dict[str, Any] | None], None] | None = None,
                     console: Callable[[str], None] = lambda line: None,
                     thread_base: int = 1000) -> Simulation:
    """Build and power on a machine.

    ``contributions`` are ``(plugin, devices)`` pairs as returned by the
    ``vmctl_sim_devices`` hook.  ``sink(event, data)`` receives every QMP event (default:
    kept in :attr:`Simulation.events`); ``console(line)`` the guest console.  ``paused``
    is QEMU's ``-S``.  Raises ValueError for an unknown ``[sim] workload``.
    """
    seed, workload_name = sim_settings(machine)
    workload = get_workload(workload_name)
    arch = str(getattr(machine, "arch", "ppc64"))
    mtype = str(machine_value(machine, "machine.type", "") or "")
    contributions = [(plugin, list(devs)) for plugin, devs in contributions]
    # the firmware is a device's to say (spapr-irq: SLOF or VOF); else [boot] firmware, the
    # deprecated key of vmctl 0.1, read for one more release
    firmware = machine_value(machine, "boot.firmware", None)
    seconds = None
    for _, devs in contributions:
        for dev in devs:
            said = dev.firmware() if callable(getattr(dev, "firmware", None)) else None
            if said:
                firmware, seconds = said
    events: list[tuple[str, dict[str, Any] | None]] = []
    emit = sink if sink is not None else (lambda e, d: events.append((e, d)))
    vm = SimVM(machine, seed=seed, workload=workload,
               times=boot_times(arch, mtype, firmware, workload, firmware_seconds=seconds),
               sink=emit, console=console, thread_base=thread_base)
    vm.firmware_name = str(firmware or "firmware")
    commands, infos = Dispatcher.reserved()
    devices = DeviceHost(console, commands, infos)
    vm.on_phase(devices.on_phase)
    vm.on_tick(devices.tick)
    devices.attach_all(vm, contributions)
    dispatcher = Dispatcher(vm, devices, name=str(getattr(machine, "name", "vm")),
                            package=PACKAGE)
    vm.lifecycle.power_on(paused)
    return Simulation(vm, devices, dispatcher, events)
