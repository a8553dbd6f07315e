"""Lowering: what a watchdog device becomes on QEMU's command line and in libvirt XML.

Pure functions of the machine (no I/O), so tests call them directly::

    -device i6300esb,id=wdt0           the device (its TOML ``id`` when set)
    -action watchdog=pause             the machine-wide watchdog action (QEMU ≥ 6.0)
    -append "… i6300esb.heartbeat=60 i6300esb.nowayout=1"
                                       the guest driver's parameters, when vmctl boots the
                                       kernel itself ([boot] kernel); otherwise the guest's
                                       own modprobe configuration decides

libvirt: ``<watchdog model='i6300esb' action='…'/>`` under ``<devices>``; libvirt has no
``debug`` action, so that export is refused with a hint.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

from vmctl.api import ArgFragment, KernelArg, QemuFragment, VmctlError

from .schema import HEARTBEAT_DEFAULT, KIND

#: QEMU's watchdog action → libvirt's ``<watchdog action=…>`` (``debug`` has none).
LIBVIRT_ACTIONS = {"reset": "reset", "shutdown": "shutdown", "poweroff": "poweroff",
                   "pause": "pause", "none": "none", "inject-nmi": "inject-nmi"}


def kernel_args(machine: Any, index: int, dev: dict[str, Any]) -> list[KernelArg]:
    """The driver's module parameters, when they differ from its defaults."""
    out = []
    if int(dev.get("heartbeat", HEARTBEAT_DEFAULT)) != HEARTBEAT_DEFAULT:
        out.append(KernelArg(f"i6300esb.heartbeat={dev['heartbeat']}", key=f"device[{index}].heartbeat"))
    if dev.get("nowayout"):
        out.append(KernelArg("i6300esb.nowayout=1", key=f"device[{index}].nowayout"))
    return out


def qemu_args(machine: Any) -> list[QemuFragment]:
    """``-device i6300esb``, ``-action watchdog=…`` and the guest's kernel arguments."""
    out: list[QemuFragment] = []
    boots_kernel = bool(machine.get("boot.kernel"))
    for index, dev in machine.devices_of(KIND):
        device = KIND + (f",id={dev['id']}" if dev.get("id") else "")
        out.append(ArgFragment(("-device", device), key=f"device[{index}]"))
        out.append(ArgFragment(("-action", f"watchdog={dev.get('action', 'reset')}"),
                               key=f"device[{index}].action"))
        if boots_kernel:
            out.extend(kernel_args(machine, index, dev))
    return out


def libvirt_xml(machine: Any, domain: ET.Element) -> None:
    """Add ``<watchdog>`` (and the driver parameters to ``<cmdline>``) to the domain."""
    devices = domain.find("devices")
    for index, dev in machine.devices_of(KIND):
        action = str(dev.get("action", "reset"))
        if action not in LIBVIRT_ACTIONS:
            raise VmctlError(f"libvirt has no watchdog action {action!r} (device[{index}].action)",
                             hint="use reset, shutdown, poweroff, pause, none or inject-nmi, or "
                                  "export --format argv/sh, which keep QEMU's debug action")
        if devices is not None:
            ET.SubElement(devices, "watchdog", model=KIND, action=LIBVIRT_ACTIONS[action])
        cmdline = domain.find("os/cmdline")
        extra = [k.text for k in kernel_args(machine, index, dev)]
        if extra and machine.get("boot.kernel"):
            if cmdline is None:
                cmdline = ET.SubElement(domain.find("os"), "cmdline")  # type: ignore[arg-type]
            words = (cmdline.text or "").split()
            cmdline.text = " ".join(words + [w for w in extra if w not in words])
