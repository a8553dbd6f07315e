"""The ``i6300esb`` device kind: its options are the single source for validation,
``vmctl show``, the docs and shell completion.

The numbers are the Linux driver's (``drivers/watchdog/i6300esb.c``): the ``heartbeat``
module parameter is 1…2046 seconds (default 30), because the driver writes
``heartbeat << 9`` into 20-bit preload registers.  The actions are QEMU's
``-action watchdog=`` values (``qapi/run-state.json``, ``WatchdogAction``); QEMU's default
is ``reset``.
"""

from __future__ import annotations

from vmctl.api import DeviceKind, Option

#: The name vmctl knows this plugin by (the entry point's name; QMP and ``vmctl status`` use it).
PLUGIN = "i6300esb"

KIND = "i6300esb"

#: QEMU's ``WatchdogAction`` values, in the order ``qapi/run-state.json`` lists them.
ACTIONS = ("reset", "shutdown", "poweroff", "pause", "debug", "none", "inject-nmi")

HEARTBEAT_MIN, HEARTBEAT_MAX, HEARTBEAT_DEFAULT = 1, 2046, 30

#: The machines with a PCI bus QEMU can put the device on (s390x has diag288 instead).
ARCHES = ("x86_64", "ppc64", "aarch64")

DEVICE_KIND = DeviceKind(
    KIND,
    "Intel 6300ESB PCI watchdog: resets (or pauses, or powers off) a guest that stops "
    "petting it (-device i6300esb)",
    (
        Option("action", "str", "what QEMU does when the timer expires (-action watchdog=)",
               default="reset", choices=ACTIONS),
        Option("heartbeat", "int", "timeout the guest driver programs, in seconds "
               "(i6300esb.heartbeat=); the device fires 1.017 × this after the last ping",
               default=HEARTBEAT_DEFAULT, minimum=HEARTBEAT_MIN, maximum=HEARTBEAT_MAX),
        Option("nowayout", "bool", "once started, the guest cannot stop the watchdog "
               "(i6300esb.nowayout=1)", default=False),
        Option("sim-hang-after", "int", "simulator only: the guest's watchdog daemon hangs "
               "this many seconds after userspace starts (to watch the watchdog fire)",
               minimum=0),
    ),
    arches=ARCHES,
    max_per_machine=1,  # QEMU's -action watchdog= is one setting for the whole machine
)


def device_kinds() -> list[DeviceKind]:
    """``vmctl_device_kinds``: the one kind this plugin adds."""
    return [DEVICE_KIND]
