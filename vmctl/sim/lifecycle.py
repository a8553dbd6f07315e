"""The simulated machine's lifecycle: QEMU's run states × the guest's boot phase.

Two explicit state variables, as in QEMU:

* :class:`RunState` — what ``query-status`` reports.  ``prelaunch`` (started with ``-S``
  or reset while not running), ``running``, ``paused``, ``shutdown``, ``guest-panicked``.
* :class:`Phase` — how far the guest got since the last reset: ``reset`` → ``firmware``
  → ``kernel`` → ``running`` (userspace up).  The phase only advances while the run state
  is ``running``: the virtual clock stops when the machine is paused.

Transitions and the events they emit (copied from QEMU 7.2's behaviour):

==================  ==========================================  =============================
operation           precondition / effect                       events
==================  ==========================================  =============================
``stop``            running → paused; otherwise nothing          ``STOP``
``cont``            prelaunch|paused → running; running: no-op  ``RESUME``
                    shutdown|guest-panicked: refused
``reset``           phase → reset; not running → prelaunch      ``RESET {guest, reason}``
``powerdown``       guest in kernel/running acts on it: after   ``POWERDOWN``, later
                    ``shutdown_delay`` it shuts down             ``SHUTDOWN`` (guest)
``quit``/signal     → shutdown, the process ends                ``SHUTDOWN {guest: false}``
guest panic         → guest-panicked (``-action panic=pause``)  ``GUEST_PANICKED``, ``STOP``
==================  ==========================================  =============================

Pure: time comes in through :meth:`Lifecycle.advance`, events and phase changes leave
through callbacks.
"""

from __future__ import annotations

import enum
import errno
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from vmctl.model import ModelError


class RunState(str, enum.Enum):
    """QEMU's ``RunState`` values the simulator can be in (``query-status`` ``status``)."""

    PRELAUNCH = "prelaunch"
    RUNNING = "running"
    PAUSED = "paused"
    SHUTDOWN = "shutdown"
    GUEST_PANICKED = "guest-panicked"


class Phase(str, enum.Enum):
    """The guest's progress since the last reset."""

    RESET = "reset"
    FIRMWARE = "firmware"
    KERNEL = "kernel"
    RUNNING = "running"


#: Run states QEMU leaves only through a reset (``runstate_needs_reset``).
NEEDS_RESET = frozenset({RunState.SHUTDOWN, RunState.GUEST_PANICKED})


@dataclass(frozen=True)
class BootTimes:
    """Virtual seconds spent in each boot phase, and the guest's reaction times."""

    firmware: float
    kernel: float
    shutdown_delay: float = 0.3
    panic_at_root: bool = False


Emit = Callable[[str, "dict[str, Any] | None"], None]


class Lifecycle:
    """Run state and boot phase of one machine; see the module docstring for the table.

    ``emit(event, data)`` is called for every QMP event, ``phase(name)`` for every phase
    or lifecycle change devices hear about (``SimDevice.on_phase``), and
    ``tick(now, dt)`` for every slice of running virtual time.
    """

    def __init__(self, times: BootTimes, *, emit: Emit, phase: Callable[[str], None],
                 tick: Callable[[float, float], None]) -> None:
        self.times = times
        self._emit = emit
        self._phase_cb = phase
        self._tick = tick
        self.run_state = RunState.PRELAUNCH
        self.phase = Phase.RESET
        self.now = 0.0
        self.phase_elapsed = 0.0
        self.shutdown_in: float | None = None
        self.finished = False
        self.shutdown_reason: str | None = None
        self.resets = 0
        self.powered = False

    # -- start-up ------------------------------------------------------------------------
    def power_on(self, paused: bool) -> None:
        """Power the machine on: ``reset`` phase, then run unless ``paused`` (``-S``)."""
        if self.powered:
            raise ModelError(errno.EALREADY, "machine already powered on")
        self.powered = True
        self._phase_cb(Phase.RESET.value)
        if not paused:
            self.run_state = RunState.RUNNING
            self._enter(Phase.FIRMWARE)

    # -- host requests -------------------------------------------------------------------
    def stop(self) -> None:
        """Pause the vCPUs (QMP ``stop``); a no-op unless running, as in QEMU."""
        self._check_alive()
        if self.run_state is not RunState.RUNNING:
            return
        self.run_state = RunState.PAUSED
        self._emit("STOP", None)
        self._phase_cb("stop")

    def cont(self) -> None:
        """Resume (QMP ``cont``); refused after a shutdown or a guest panic."""
        self._check_alive()
        if self.run_state in NEEDS_RESET:
            raise ModelError(errno.EINVAL, "Resetting the Virtual Machine is required")
        if self.run_state is RunState.RUNNING:
            return
        self.run_state = RunState.RUNNING
        self._emit("RESUME", None)
        self._phase_cb("cont")
        if self.phase is Phase.RESET:
            self._enter(Phase.FIRMWARE)

    def reset(self, *, guest: bool = False, reason: str = "host-qmp-system-reset") -> None:
        """System reset: the guest starts over; a machine not running becomes prelaunch."""
        self._check_alive()
        self._emit("RESET", {"guest": guest, "reason": reason})
        self.resets += 1
        self.shutdown_in = None
        self.phase = Phase.RESET
        self.phase_elapsed = 0.0
        self._phase_cb(Phase.RESET.value)
        if self.run_state is RunState.RUNNING:
            self._enter(Phase.FIRMWARE)
        else:
            self.run_state = RunState.PRELAUNCH

    def powerdown(self) -> None:
        """ACPI/EPOW power button: a booted guest shuts itself down shortly after."""
        self._check_alive()
        self._emit("POWERDOWN", None)
        self._phase_cb("powerdown")
        if (self.phase in (Phase.KERNEL, Phase.RUNNING) and self.run_state not in NEEDS_RESET
                and self.shutdown_in is None):
            self.shutdown_in = self.times.shutdown_delay

    def quit(self, reason: str = "host-qmp-quit") -> None:
        """End the machine at the host's request (QMP ``quit``, a signal)."""
        self._check_alive()
        self._finish(guest=False, reason=reason)

    def guest_panic(self) -> None:
        """The guest reported a panic; with ``-action panic=pause`` the vCPUs stop."""
        self._check_alive()
        if self.run_state in NEEDS_RESET:
            raise ModelError(errno.EINVAL, f"guest already {self.run_state.value}")
        was_running = self.run_state is RunState.RUNNING
        self._emit("GUEST_PANICKED", {"action": "pause"})
        self.run_state = RunState.GUEST_PANICKED
        self.shutdown_in = None
        if was_running:
            self._emit("STOP", None)
            self._phase_cb("stop")

    # -- time ----------------------------------------------------------------------------
    def advance(self, dt: float) -> None:
        """Let ``dt`` virtual seconds pass; nothing moves unless the state is running."""
        if dt < 0:
            raise ModelError(errno.EINVAL, f"time cannot go backwards (dt={dt})")
        remaining = dt
        while remaining > 1e-12 and self.run_state is RunState.RUNNING and not self.finished:
            step = min(remaining, self._next_boundary())
            self.now += step
            self.phase_elapsed += step
            remaining -= step
            self._tick(self.now, step)
            if self.shutdown_in is not None:
                self.shutdown_in -= step
            self._cross_boundaries()

    def _next_boundary(self) -> float:
        limits = [float("inf")]
        if self.phase is Phase.FIRMWARE:
            limits.append(self.times.firmware - self.phase_elapsed)
        elif self.phase is Phase.KERNEL:
            limits.append(self.times.kernel - self.phase_elapsed)
        if self.shutdown_in is not None:
            limits.append(self.shutdown_in)
        return max(min(limits), 0.0)

    def _cross_boundaries(self) -> None:
        if self.shutdown_in is not None and self.shutdown_in <= 1e-12:
            self._finish(guest=True, reason="guest-shutdown")
            return
        if self.phase is Phase.FIRMWARE and self.phase_elapsed >= self.times.firmware - 1e-12:
            self._enter(Phase.KERNEL)
        elif self.phase is Phase.KERNEL and self.phase_elapsed >= self.times.kernel - 1e-12:
            if self.times.panic_at_root:
                self.guest_panic()
            else:
                self._enter(Phase.RUNNING)

    # -- helpers -------------------------------------------------------------------------
    def _enter(self, phase: Phase) -> None:
        self.phase = phase
        self.phase_elapsed = 0.0
        self._phase_cb(phase.value)

    def _finish(self, *, guest: bool, reason: str) -> None:
        self._emit("SHUTDOWN", {"guest": guest, "reason": reason})
        self.run_state = RunState.SHUTDOWN
        self.shutdown_in = None
        self.finished = True
        self.shutdown_reason = reason
        self._phase_cb("shutdown")

    def _check_alive(self) -> None:
        if self.finished:
            raise ModelError(errno.ESHUTDOWN, "the machine has shut down")
