"""The 6300ESB watchdog, as QEMU emulates it and as Linux drives it: two state machines.

:class:`Esb6300` is the device (QEMU ``hw/watchdog/wdt_i6300esb.c``).  Two timers count
down one after the other from preload values at 1 kHz (the PCI clock / 2^15): when the
first expires the second starts (the stage-1 interrupt is disabled by Linux), when the
second expires QEMU performs the machine's watchdog action, sets the "previous reboot"
flag, and resets the device — so after an expiry the watchdog is off until the guest
enables it again.  A reload (a ping) restarts stage 1.  Once the lock bit is set (Linux
does with ``nowayout``) the enable bit cannot be cleared until the device is reset.

:class:`WatchdogDev` is ``/dev/watchdog0`` as ``drivers/watchdog/watchdog_dev.c`` serves it
over the ``i6300esb`` driver, with the kernel's errnos:

================  ======================================================================
operation         refused with
================  ======================================================================
``open``          ``EBUSY`` while another process holds it open
``write``/ioctls  ``EBADF`` when not open
``set_timeout``   ``EINVAL`` outside 1…2046 s (the driver's ``min``/``max_timeout``)
``stop``          ``EBUSY`` with ``nowayout`` ("nowayout prevents watchdog being stopped")
``get_timeleft``  ``EOPNOTSUPP``: the i6300esb driver has no ``get_timeleft``
unknown ioctl     ``ENOTTY``
================  ======================================================================

Closing without the magic character ``V`` (or with ``nowayout``) leaves the watchdog
running: the kernel logs "watchdog did not stop!", pings once, and the machine's action
follows one timeout later.  Pure: time comes in as ``advance(dt)``, kernel messages go to
:attr:`WatchdogDev.log`.
"""

from __future__ import annotations

import enum
import errno

from vmctl.api import ModelError

from .schema import HEARTBEAT_MAX, HEARTBEAT_MIN

PCI_CLOCK_HZ = 33_000_000
SCALE_1KHZ_SHIFT = 15        # ESB_WDT_FREQ clear: the PCI clock divided by 2^15
PRELOAD_MASK = 0xFFFFF       # 20-bit preload registers
HEARTBEAT_SHIFT = 9          # the driver writes heartbeat << 9 into both timers
WDIOF_CARDRESET = 0x0020     # bootstatus bit: the last reboot came from the watchdog


def stage_seconds(preload: int) -> float:
    """How long one timer stage lasts for a preload value (QEMU's arithmetic)."""
    return ((preload & PRELOAD_MASK) << SCALE_1KHZ_SHIFT) / PCI_CLOCK_HZ


def expiry_seconds(heartbeat: int) -> float:
    """Seconds from the last ping to the watchdog action: both stages."""
    return 2 * stage_seconds(heartbeat << HEARTBEAT_SHIFT)


class Stage(str, enum.Enum):
    """Which timer is counting down."""

    OFF = "off"
    FIRST = "stage1"
    SECOND = "stage2"


class Esb6300:
    """The device's registers and timers (see the module docstring)."""

    def __init__(self) -> None:
        self.previous_reboot = False  # survives device resets, like QEMU's flag
        self.expiries = 0
        self.reset()

    def reset(self) -> None:
        """Power-on or system reset: disabled, unlocked, preloads at their maximum."""
        self.enabled = False
        self.locked = False
        self.reboot_enabled = True
        self.preload = PRELOAD_MASK
        self.stage = Stage.OFF
        self.remaining = 0.0

    def set_preload(self, value: int) -> None:
        """Write both timer preload registers (the driver always writes the same value)."""
        self.preload = value & PRELOAD_MASK

    def reload(self) -> None:
        """A write of ESB_WDT_RELOAD: stage 1 starts over, if the watchdog is enabled."""
        if self.enabled:
            self.stage, self.remaining = Stage.FIRST, stage_seconds(self.preload)

    def write_lock(self, enable: bool, lock: bool = False) -> bool:
        """Write the lock register; ignored (False) once locked, as the hardware does."""
        if self.locked:
            return False
        self.locked, self.enabled = lock, enable
        if enable:
            self.reload()
        else:
            self.stage, self.remaining = Stage.OFF, 0.0
        return True

    def clear_timeout_flag(self) -> bool:
        """Read and clear the "previous reboot was the watchdog" flag (RELOAD register)."""
        was, self.previous_reboot = self.previous_reboot, False
        return was

    @property
    def time_left(self) -> float | None:
        """Seconds until the action if nobody pings; None when disabled."""
        if self.stage is Stage.OFF:
            return None
        extra = stage_seconds(self.preload) if self.stage is Stage.FIRST else 0.0
        return self.remaining + extra

    def advance(self, dt: float) -> bool:
        """Let ``dt`` seconds pass; True when stage 2 expired and the action is due."""
        if dt < 0:
            raise ModelError(errno.EINVAL, f"time cannot go backwards (dt={dt})")
        while self.stage is not Stage.OFF and dt > 0:
            step = min(dt, self.remaining)
            self.remaining -= step
            dt -= step
            if self.remaining > 1e-12:
                break
            if self.stage is Stage.FIRST:
                self.stage, self.remaining = Stage.SECOND, stage_seconds(self.preload)
                continue
            self.stage = Stage.OFF
            if self.reboot_enabled:
                self.expiries += 1
                self.previous_reboot = True
                self.reset()
                return True
        return False


class DevState(str, enum.Enum):
    """``/dev/watchdog0`` from userspace's side."""

    CLOSED = "closed"
    OPEN = "open"


class WatchdogDev:
    """``/dev/watchdog0`` over the i6300esb driver (see the module docstring)."""

    def __init__(self, hw: Esb6300, *, timeout: int, nowayout: bool) -> None:
        self.hw = hw
        self.nowayout = nowayout
        self.state = DevState.CLOSED
        self.active = False
        self.allow_release = False
        self.pings = 0
        self.log: list[str] = []
        self.bootstatus = 0
        self.timeout = timeout
        self.probe()

    def probe(self) -> None:
        """The driver's ``esb_initdevice``: note a watchdog reboot, disable, program the timeout."""
        if self.hw.locked:
            self.log.append("i6300esb: nowayout already set")
        self.hw.write_lock(enable=False)
        self.bootstatus = WDIOF_CARDRESET if self.hw.clear_timeout_flag() else 0
        self.hw.set_preload(self.timeout << HEARTBEAT_SHIFT)
        self.state, self.active, self.allow_release = DevState.CLOSED, False, False
        self.log.append(f"i6300esb: initialized. heartbeat={self.timeout} sec "
                        f"(nowayout={int(self.nowayout)})")

    def _need_open(self, what: str) -> None:
        if self.state is not DevState.OPEN:
            raise ModelError(errno.EBADF, f"{what} on /dev/watchdog0 without an open file")

    def open(self) -> None:
        """``open("/dev/watchdog0")`` starts the watchdog; one opener at a time."""
        if self.state is DevState.OPEN:
            raise ModelError(errno.EBUSY, "/dev/watchdog0 is already open")
        self.state = DevState.OPEN
        if not self.active:
            self.hw.write_lock(enable=True, lock=self.nowayout)
            self.active = True

    def write(self, data: str) -> None:
        """Any write pings; a ``V`` in it allows the next close to stop the watchdog."""
        self._need_open("write")
        self.allow_release = "V" in data
        self.ping()

    def ping(self) -> None:
        """``WDIOC_KEEPALIVE`` (or a write): restart the countdown."""
        self._need_open("WDIOC_KEEPALIVE")
        if self.active:
            self.hw.reload()
            self.pings += 1

    def set_timeout(self, seconds: int) -> None:
        """``WDIOC_SETTIMEOUT``: reprogram both timers and ping."""
        self._need_open("WDIOC_SETTIMEOUT")
        if not HEARTBEAT_MIN <= seconds <= HEARTBEAT_MAX:
            raise ModelError(errno.EINVAL, f"timeout {seconds} s is outside "
                                           f"{HEARTBEAT_MIN}..{HEARTBEAT_MAX}")
        self.hw.set_preload(seconds << HEARTBEAT_SHIFT)
        self.timeout = seconds
        self.ping()

    def get_timeleft(self) -> int:
        """``WDIOC_GETTIMELEFT``: the i6300esb driver cannot answer."""
        self._need_open("WDIOC_GETTIMELEFT")
        raise ModelError(errno.EOPNOTSUPP, "i6300esb has no get_timeleft operation")

    def ioctl(self, name: str) -> None:
        """Any other ioctl request."""
        self._need_open(name)
        raise ModelError(errno.ENOTTY, f"{name} is not a watchdog ioctl")

    def stop(self) -> None:
        """``WDIOC_SETOPTIONS`` with ``WDIOS_DISABLECARD``, or a close with the magic ``V``."""
        if self.nowayout:
            self.log.append("watchdog: watchdog0: nowayout prevents watchdog being stopped!")
            raise ModelError(errno.EBUSY, "nowayout prevents watchdog being stopped")
        self.hw.write_lock(enable=False)
        self.active = False

    def close(self) -> bool:
        """Release the file; True when the watchdog stopped, False when it keeps running."""
        self._need_open("close")
        stopped = not self.active
        if self.active and self.allow_release:
            try:
                self.stop()
                stopped = True
            except ModelError:
                stopped = False
        if not stopped:
            self.log.append("watchdog: watchdog0: watchdog did not stop!")
            self.hw.reload()
        self.state, self.allow_release = DevState.CLOSED, False
        return stopped
