"""The simulated machine as plugins' device models see it: :class:`SimVM`.

A :class:`~vmctl.types.SimDevice` receives the ``SimVM`` in ``attach(vm)`` and keeps it::

    class XiveDevice(SimDevice):
        def attach(self, vm):
            self.vm = vm
            self.mode = "xics"
        def on_phase(self, phase):
            if phase == "kernel" and self.vm.machine.get("irq.ic-mode") != "xics":
                self.mode = "xive"          # the guest chose XIVE at CAS
                self.vm.emit("__org.vmctl_IRQ_MODE", {"mode": "xive"})

What a device may use:

``machine``     the resolved :class:`~vmctl.config.machine.Machine`
``rng``         :class:`random.Random` seeded from ``[sim] seed`` — the only randomness a
                device should use, so runs replay
``now()``       virtual seconds since power-on (stops while paused)
``emit()``      send a QMP event to every client; names start with ``__org.vmctl_``
                (or are standard device events such as ``DEVICE_DELETED``)
``cpus``        the vCPUs (:class:`SimCpu`: ``index``, ``online``, ``load``)
``run_state``   ``"prelaunch"``, ``"running"``, ``"paused"``, ``"shutdown"``,
                ``"guest-panicked"``
``phase``       ``"reset"``, ``"firmware"``, ``"kernel"``, ``"running"``
``workload``    the :class:`~vmctl.sim.workload.Workload` (``name``, ``load``)
``console()``   write a line to the guest console (the instance log)

What a device may do to the machine, as QEMU's ``-action`` choices do (the simulator
sends QEMU's own events for each): ``guest_reset()``, ``press_power_button()``,
``guest_poweroff()``, ``pause()``, ``guest_panic()``, ``exit_with_error(message)``.  Devices never touch
``lifecycle`` itself: its states and rules are the simulator's.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from vmctl.sim.lifecycle import BootTimes, Lifecycle, Phase
from vmctl.sim.qmp import VENDOR_PREFIX
from vmctl.sim.workload import Workload, next_load

#: Standard QEMU events a device model may emit without the vendor prefix.
STANDARD_DEVICE_EVENTS = frozenset({"DEVICE_DELETED", "DEVICE_UNPLUG_GUEST_ERROR",
                                    "MEMORY_FAILURE", "ACPI_DEVICE_OST", "WATCHDOG"})

EventSink = Callable[[str, "dict[str, Any] | None"], None]


@dataclass
class SimCpu:
    """One vCPU: secondaries come online when the guest kernel starts them."""

    index: int
    thread_id: int
    online: bool = False
    load: float = 0.0


class SimVM:
    """The machine a device is attached to; see the module docstring for the fields."""

    def __init__(self, machine: Any, *, seed: int, workload: Workload, times: BootTimes,
                 sink: EventSink, console: Callable[[str], None] = lambda line: None,
                 thread_base: int = 1000) -> None:
        self.machine = machine
        self.rng = random.Random(seed)
        self.seed = seed
        self.workload = workload
        self._workload_rng = random.Random(f"{seed}/workload")
        self._sink = sink
        self._console = console
        #: The firmware's name on the console; the builder sets the one a device declared.
        self.firmware_name = str(machine_value(machine, "boot.firmware", None) or "firmware")
        ncpus = int(machine_value(machine, "machine.cpus", 1) or 1)
        self.cpus = [SimCpu(i, thread_base + i + 1, online=(i == 0)) for i in range(ncpus)]
        self._phase_listeners: list[Callable[[str], None]] = []
        self._tick_listeners: list[Callable[[float, float], None]] = []
        self.lifecycle = Lifecycle(times, emit=self._host_event, phase=self._on_phase,
                                   tick=self._on_tick)

    # -- what devices use ----------------------------------------------------------------
    def now(self) -> float:
        """Virtual seconds since power-on; frozen while the machine is not running."""
        return self.lifecycle.now

    @property
    def run_state(self) -> str:
        return self.lifecycle.run_state.value

    @property
    def phase(self) -> str:
        return self.lifecycle.phase.value

    def emit(self, event: str, data: dict[str, Any] | None = None) -> None:
        """Send QMP event ``event`` with ``data`` to every connected client."""
        if not (event.startswith(VENDOR_PREFIX) or event in STANDARD_DEVICE_EVENTS):
            raise ValueError(f"device event {event!r} must start with {VENDOR_PREFIX!r}")
        self._sink(event, data)

    def console(self, line: str) -> None:
        """Append ``line`` to the guest console (the instance log)."""
        self._console(line)

    # -- what a device may do to the machine (QEMU's own events follow) -----------------
    def guest_reset(self) -> None:
        """The guest (or a device on its behalf, e.g. a watchdog) resets the machine."""
        self.lifecycle.reset(guest=True, reason="guest-reset")

    def press_power_button(self) -> None:
        """ACPI/EPOW power button: a booted guest shuts itself down shortly after."""
        self.lifecycle.powerdown()

    def guest_poweroff(self) -> None:
        """The machine powers off at the guest's side (SHUTDOWN, then the process ends)."""
        self.lifecycle.quit(reason="guest-shutdown")

    def pause(self) -> None:
        """Stop the vCPUs, as ``-action …=pause`` does (STOP)."""
        self.lifecycle.stop()

    def guest_panic(self) -> None:
        """The guest reported a panic; with ``-action panic=pause`` the vCPUs stop."""
        self.lifecycle.guest_panic()

    def exit_with_error(self, message: str) -> None:
        """QEMU prints ``message`` and exits (a device that cannot be realised, a CAS
        refusal): the line goes to the console and the machine ends; once only."""
        self.console(message)
        if not self.lifecycle.finished:
            self.lifecycle.quit(reason="host-error")

    # -- wiring (used by the simulator) ---------------------------------------------------
    def on_phase(self, listener: Callable[[str], None]) -> None:
        """Register a phase listener (the device host)."""
        self._phase_listeners.append(listener)

    def on_tick(self, listener: Callable[[float, float], None]) -> None:
        """Register a clock listener (the device host)."""
        self._tick_listeners.append(listener)

    def _on_phase(self, name: str) -> None:
        if name == Phase.RESET.value:
            for cpu in self.cpus:
                cpu.online, cpu.load = cpu.index == 0, 0.0
            self._console("vmctl-sim: machine reset")
        elif name == Phase.FIRMWARE.value:
            self._console(f"vmctl-sim: {self.firmware_name} started on CPU 0")
        elif name == Phase.KERNEL.value:
            for cpu in self.cpus:
                cpu.online = True
            self._console(f"Linux version 6.1.0-vmctl-sim (workload {self.workload.name}, "
                          f"seed {self.seed}), {len(self.cpus)} CPUs online")
        elif name == Phase.RUNNING.value:
            self._console("vmctl-sim: userspace up")
        elif name == "shutdown" and self.lifecycle.shutdown_reason == "guest-shutdown":
            self._console("reboot: Power down")
        for listener in self._phase_listeners:
            listener(name)

    def _on_tick(self, now: float, dt: float) -> None:
        phase = self.lifecycle.phase
        for cpu in self.cpus:
            cpu.load = next_load(self.workload, phase, cpu.index, cpu.online, cpu.load, dt,
                                 self._workload_rng)
        for listener in self._tick_listeners:
            listener(now, dt)

    def _host_event(self, event: str, data: dict[str, Any] | None) -> None:
        if event == "GUEST_PANICKED":
            self._console("Kernel panic - not syncing: VFS: Unable to mount root fs")
        self._sink(event, data)


def machine_value(machine: Any, key: str, default: Any) -> Any:
    """``machine.get(key)``, or ``default`` when absent (also for stand-in machines)."""
    try:
        value = machine.get(key)
    except (KeyError, AttributeError):
        return default
    return default if value is None else value
