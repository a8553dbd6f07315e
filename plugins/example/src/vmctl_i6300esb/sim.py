"""The watchdog inside vmctl's simulator: device, guest driver and guest daemon.

Timeline of a simulated guest (phases come from the simulator):

* ``reset`` — the device is reset (QEMU keeps its "previous reboot" flag);
* ``kernel`` — the ``i6300esb`` driver probes: ``bootstatus`` says whether the last reboot
  came from the watchdog, the timer is programmed and left off;
* ``running`` — the guest's watchdog daemon (think systemd's ``RuntimeWatchdogSec``)
  opens ``/dev/watchdog0`` and pings every ``heartbeat / 2`` seconds.

The vendor QMP command ``__org.vmctl_watchdog-guest`` plays the guest's part:
``{"daemon": "hang"}`` (a hung guest: no more pings), ``"resume"``, ``"stop"`` (a clean
exit: magic close), ``"kill"`` (the daemon dies: close without the magic ``V``), or
``{"timeout": N}`` (``WDIOC_SETTIMEOUT``; ``EINVAL`` outside 1…2046).  Kernel refusals come
back as QMP errors naming the errno.

When the timer expires the device emits QEMU's ``WATCHDOG`` event ``{"action": …}`` and the
machine does what QEMU would: ``reset`` (a guest reset), ``shutdown`` (ACPI power button),
``poweroff`` (the machine ends), ``pause`` (the vCPUs stop; QEMU's run state would read
``watchdog``), ``inject-nmi``/``debug``/``none`` (a console line at most).
"""

from __future__ import annotations

import errno
from typing import Any

from vmctl.api import ModelError, SimDevice

from .model import DevState, Esb6300, WatchdogDev, expiry_seconds
from .schema import KIND, PLUGIN

COMMAND = "__org.vmctl_watchdog-guest"
EVENT = "WATCHDOG"
#: Used only by a simulator that lets devices send vendor events alone.
DAEMON_STATES = ("not-started", "running", "hung", "stopped", "killed")


class WatchdogDevice(SimDevice):
    """One i6300esb in a simulated machine (see the module docstring)."""

    def __init__(self, options: dict[str, Any], plugin: str = KIND) -> None:
        self.plugin = plugin
        self.action = str(options.get("action", "reset"))
        self.heartbeat = int(options.get("heartbeat", 30))
        self.nowayout = bool(options.get("nowayout", False))
        self.hang_after = options.get("sim-hang-after")
        self.hw = Esb6300()
        self.dev: WatchdogDev | None = None
        self.daemon = "not-started"
        self.next_ping: float | None = None
        self.last_ping: float | None = None
        self.userspace_at: float | None = None
        self.fired: list[dict[str, Any]] = []
        self.now = 0.0
        self._logged = 0

    # -- the simulator's calls --------------------------------------------------------------
    def on_phase(self, phase: str) -> None:
        if phase == "reset":
            self.hw.reset()
            self.dev, self.daemon, self.userspace_at = None, "not-started", None
            self.next_ping = self.last_ping = None
        elif phase == "kernel":
            self.dev = WatchdogDev(self.hw, timeout=self.heartbeat, nowayout=self.nowayout)
            self._logged = 0
            self._console_log()
        elif phase == "running":
            self.userspace_at = self.now
            self._start_daemon()

    def tick(self, now: float, dt: float) -> None:
        self.now = now
        if self.daemon == "running" and self.hang_after is not None and self.userspace_at is not None \
                and now - self.userspace_at >= int(self.hang_after):
            self.daemon = "hung"
            self.vm.console("watchdog-daemon: stopped responding (sim-hang-after)")
        if self.daemon == "running" and self.next_ping is not None and now >= self.next_ping:
            self._ping()
        if self.hw.advance(dt):
            self._fire()

    def qmp_commands(self) -> dict[str, Any]:
        return {COMMAND: self.guest_command}

    def state(self) -> dict[str, Any]:
        dev = self.dev
        left = self.hw.time_left
        return {
            "action": self.action,
            "heartbeat": self.heartbeat,
            "nowayout": self.nowayout,
            "expires_after": round(expiry_seconds(self.heartbeat), 3),
            "stage": self.hw.stage.value,
            "time_left": None if left is None else round(left, 3),
            "locked": self.hw.locked,
            "driver": "bound" if dev else "not loaded",
            "device": dev.state.value if dev else DevState.CLOSED.value,
            "active": bool(dev and dev.active),
            "daemon": self.daemon,
            "pings": dev.pings if dev else 0,
            "last_ping_at": None if self.last_ping is None else round(self.last_ping, 3),
            "expiries": self.hw.expiries,
            "card_reset": bool(dev and dev.bootstatus),
            "fired": self.fired[-5:],
            "kernel_log": dev.log[-5:] if dev else [],
        }

    # -- the vendor command ------------------------------------------------------------------
    def guest_command(self, args: dict[str, Any]) -> dict[str, Any]:
        """``__org.vmctl_watchdog-guest {"daemon": hang|resume|stop|kill} | {"timeout": N}``."""
        if self.dev is None:
            raise ModelError(errno.ENODEV, "the guest has not loaded the i6300esb driver yet "
                                           f"(phase {self.vm.phase})")
        daemon, timeout = args.get("daemon"), args.get("timeout")
        if (daemon is None) == (timeout is None):
            raise ModelError(errno.EINVAL, 'give exactly one of "daemon" or "timeout"')
        if timeout is not None:
            if not isinstance(timeout, int) or isinstance(timeout, bool):
                raise ModelError(errno.EINVAL, f"timeout must be an integer, not {timeout!r}")
            self.dev.set_timeout(timeout)
            self.heartbeat = timeout
            self._schedule()
        elif daemon == "hang":
            self._need_daemon("hang")
            self.daemon = "hung"
        elif daemon == "resume":
            self._start_daemon()
        elif daemon in ("stop", "kill"):
            self._need_daemon(daemon)
            if daemon == "stop":
                self.dev.write("V")
            self.dev.close()
            self.daemon = "stopped" if daemon == "stop" else "killed"
            self._console_log()
        else:
            raise ModelError(errno.EINVAL, f"daemon must be hang, resume, stop or kill, not {daemon!r}")
        return self.state()

    # -- helpers ----------------------------------------------------------------------------
    def _need_daemon(self, what: str) -> None:
        if self.daemon not in ("running", "hung"):
            raise ModelError(errno.ESRCH, f"cannot {what}: the watchdog daemon is {self.daemon}")

    def _start_daemon(self) -> None:
        assert self.dev is not None
        if self.dev.state is DevState.CLOSED:
            self.dev.open()
            self.dev.set_timeout(self.heartbeat)
        self.daemon = "running"
        self._schedule()

    def _schedule(self) -> None:
        """The daemon pinged (opening and WDIOC_SETTIMEOUT ping too): next one at half the timeout."""
        self.last_ping = self.now
        self.next_ping = self.now + self.heartbeat / 2

    def _ping(self) -> None:
        assert self.dev is not None
        self.dev.write("\n")
        self._schedule()

    def _console_log(self) -> None:
        if self.dev:
            for line in self.dev.log[self._logged:]:
                self.vm.console(line)
            self._logged = len(self.dev.log)

    def _fire(self) -> None:
        """Stage 2 expired: tell QMP clients, then do what QEMU's watchdog_perform_action does."""
        self.fired.append({"at": round(self.now, 3), "action": self.action})
        self.vm.emit(EVENT, {"action": self.action})
        if self.action == "reset":
            self.vm.guest_reset()
        elif self.action == "shutdown":
            self.vm.press_power_button()
        elif self.action == "poweroff":
            self.vm.guest_poweroff()
        elif self.action == "pause":
            self.vm.pause()
        elif self.action == "inject-nmi":
            self.vm.console("Uhhuh. NMI received for unknown reason 30 on CPU 0.")
        elif self.action == "debug":
            self.vm.console("watchdog: timer fired")


def sim_devices(machine: Any) -> list[WatchdogDevice]:
    """One model per ``[[device]] kind = "i6300esb"`` (the schema allows one)."""
    return [WatchdogDevice(dev, PLUGIN) for _, dev in machine.devices_of(KIND)]
