"""What vmctl checks about a watchdog beyond its schema.

The schema already enforced types, choices, the 1…2046 s heartbeat range, the arches and
one watchdog per machine.  Here, the combinations that QEMU or the guest make meaningless:

=========================  ========  =====================================================
code                       severity  when
=========================  ========  =====================================================
``nmi-not-on-virt``        warning   ``inject-nmi`` on aarch64 ``virt``: QEMU has no NMI to
                                     inject there, so expiry does nothing
``driver-args-need-boot``  note      ``heartbeat``/``nowayout`` set without ``[boot]
                                     kernel``: vmctl cannot pass ``i6300esb.*=`` to the
                                     guest, its own modprobe configuration decides
``nowayout-no-action``     warning   ``nowayout`` with ``action = "none"``: the guest can
                                     never stop the watchdog, and its expiry does nothing
                                     but switch the device off
=========================  ========  =====================================================
"""

from __future__ import annotations

from typing import Any

from vmctl.api import Diagnostic

from .schema import HEARTBEAT_DEFAULT, KIND


def validate_machine(machine: Any, ctx: Any = None) -> list[Diagnostic]:
    out = []
    for index, dev in machine.devices_of(KIND):
        key = f"device[{index}]"
        action = dev.get("action", "reset")
        if action == "inject-nmi" and machine.arch == "aarch64":
            out.append(machine.warning(
                "nmi-not-on-virt", f"{key}.action",
                'action = "inject-nmi" does nothing on aarch64: QEMU cannot inject an NMI '
                "into an Arm virt machine, so an expired watchdog goes unnoticed",
                hint='use "reset" or "pause" on aarch64'))
        tuned = (["heartbeat"] if dev.get("heartbeat", HEARTBEAT_DEFAULT) != HEARTBEAT_DEFAULT else []) \
            + (["nowayout"] if dev.get("nowayout") else [])
        if tuned and not machine.get("boot.kernel"):
            out.append(machine.note(
                "driver-args-need-boot", f"{key}.{tuned[0]}",
                f"{' and '.join(tuned)} {'reach' if len(tuned) > 1 else 'reaches'} the guest "
                "driver through the kernel command line, which vmctl only sets when it boots "
                "the kernel itself ([boot] kernel)",
                hint="set [boot] kernel, or configure the guest: options i6300esb "
                     f"heartbeat={dev.get('heartbeat', HEARTBEAT_DEFAULT)} in /etc/modprobe.d"))
        if dev.get("nowayout") and action == "none":
            out.append(machine.warning(
                "nowayout-no-action", f"{key}.nowayout",
                'nowayout = true with action = "none": the guest cannot stop the watchdog and '
                "its expiry only switches the device off (QEMU resets it after firing)",
                hint='pick an action that recovers the guest, e.g. "reset"'))
    return out
