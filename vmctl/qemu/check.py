"""Checking a machine's QEMU command line against the installed QEMU's capabilities.

``vmctl validate --backend qemu`` calls :func:`check_argv`.  Each finding is an error that
names the QEMU version and binary, points at the TOML key the argument came from (and the
plugin that produced it), and suggests the nearest valid name::

    error: QEMU 7.2.22 (/usr/bin/qemu-system-ppc64) has no CPU model "power11"
      hint: did you mean "power10"?

Checked: ``-machine`` type and properties (accelerator options such as
``kernel-irqchip`` excepted), ``-cpu`` model and properties, ``-device`` driver and
properties, ``-object`` types, ``-accel`` names.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from vmctl.qemu.caps import ACCEL_MACHINE_OPTIONS, QemuCaps
from vmctl.types import Diagnostic

#: Options every ``-device`` takes although ``device-list-properties`` does not list them.
GENERIC_DEVICE_OPTIONS = frozenset({"id", "bus", "driver"})


def split_opts(text: str) -> list[str]:
    """QEMU's option syntax: ``a,b=c,d=e,,f`` → ``["a", "b=c", "d=e,f"]``."""
    parts: list[str] = []
    cur: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == ",":
            if text[i + 1:i + 2] == ",":
                cur.append(",")
                i += 2
                continue
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
        i += 1
    parts.append("".join(cur))
    return parts


def _hint(word: str, candidates: Sequence[str]) -> str:
    from vmctl.config.schema import nearest

    near = nearest(word, list(candidates))
    return f'did you mean "{near}"?' if near else ""


class _Checker:
    def __init__(self, machine: Any, caps: QemuCaps) -> None:
        self.m = machine
        self.caps = caps
        self.where = f"QEMU {caps.version} ({caps.binary})"
        self.diags: list[Diagnostic] = []

    def error(self, origin: Any, code: str, message: str, hint: str) -> None:
        key = getattr(origin, "key", "") or ""
        d = self.m.error(code, key, message, hint)
        plugin = getattr(origin, "plugin", "")
        if plugin and plugin != "vmctl":
            d = dataclasses.replace(d, plugin=plugin)
        self.diags.append(d)

    def head_and_props(self, value: str, head_key: str) -> tuple[str, list[tuple[str, str]]]:
        head = ""
        props: list[tuple[str, str]] = []
        for i, part in enumerate(split_opts(value)):
            name, eq, val = part.partition("=")
            if i == 0 and not eq:
                head = name
            elif name == head_key:
                head = val
            elif part:
                props.append((name, val))
        return head, props

    @staticmethod
    def origin(origins: list[Any], index: int) -> Any:
        if 0 <= index < len(origins):
            return origins[index]
        return origins[0] if origins else None

    def machine(self, value: str, origins: list[Any]) -> None:
        mtype, props = self.head_and_props(value, "type")
        known = self.caps.machine_properties(mtype)
        if self.caps.machine_type(mtype) is None:
            self.error(self.origin(origins, 0), "qemu-unknown-machine",
                       f'{self.where} has no machine type "{mtype}"',
                       _hint(mtype, list(self.caps.machines)))
            return
        for i, (name, _val) in enumerate(props):
            if name in ACCEL_MACHINE_OPTIONS or known is None or name in known:
                continue
            self.error(self.origin(origins, i + 1), "qemu-unknown-property",
                       f'{self.where}: machine type "{mtype}" has no property "{name}"',
                       _hint(name, list(known)))

    def cpu(self, value: str, origins: list[Any]) -> None:
        model, props = self.head_and_props(value, "model")
        if model not in self.caps.cpus:
            self.error(self.origin(origins, 0), "qemu-unknown-cpu",
                       f'{self.where} has no CPU model "{model}"',
                       _hint(model, list(self.caps.cpus)))
            return
        known = self.caps.cpu_properties(model)
        for i, (name, _val) in enumerate(props):
            bare = name.lstrip("+-")
            if known is None or bare in known:
                continue
            self.error(self.origin(origins, i + 1), "qemu-unknown-property",
                       f'{self.where}: CPU model "{model}" has no property "{bare}"',
                       _hint(bare, list(known)))

    def device(self, value: str, origins: list[Any]) -> None:
        driver, props = self.head_and_props(value, "driver")
        if driver not in self.caps.devices:
            self.error(self.origin(origins, 0), "qemu-unknown-device",
                       f'{self.where} has no device "{driver}"',
                       _hint(driver, list(self.caps.devices)))
            return
        known = self.caps.devices[driver]
        for name, _val in props:
            if known is None or name in known or name in GENERIC_DEVICE_OPTIONS:
                continue
            self.error(self.origin(origins, 0), "qemu-unknown-property",
                       f'{self.where}: device "{driver}" has no property "{name}"',
                       _hint(name, list(known)))

    def object(self, value: str, origins: list[Any]) -> None:
        qom_type, _props = self.head_and_props(value, "qom-type")
        if qom_type not in self.caps.objects:
            self.error(self.origin(origins, 0), "qemu-unknown-object",
                       f'{self.where} has no object type "{qom_type}"',
                       _hint(qom_type, self.caps.objects))

    def accels(self, requested: list[tuple[str, Any]]) -> None:
        if not requested or not self.caps.accels:
            return
        if any(name in self.caps.accels for name, _ in requested):
            return
        names = ", ".join(name for name, _ in requested)
        self.error(requested[0][1], "qemu-no-accel",
                   f"{self.where} was built without the {names} accelerator",
                   f"available: {', '.join(self.caps.accels)}")


def check_argv(machine: Any, argv: Any, caps: QemuCaps) -> list[Diagnostic]:
    """Errors for every part of ``argv`` (an :class:`~vmctl.qemu.argv.Argv`) that the
    probed QEMU does not know; an empty list when it would accept them all."""
    chk = _Checker(machine, caps)
    accels: list[tuple[str, Any]] = []
    for unit in argv.units:
        args = list(unit.args)
        origins = list(unit.origins)
        i = 0
        while i < len(args) - 1:
            opt, value = args[i], args[i + 1]
            i += 2
            if opt == "-machine":
                chk.machine(value, origins)
            elif opt == "-cpu":
                chk.cpu(value, origins)
            elif opt == "-device":
                chk.device(value, origins)
            elif opt == "-object":
                chk.object(value, origins)
            elif opt == "-accel":
                accels.append((split_opts(value)[0], chk.origin(origins, 0)))
            else:
                i -= 1  # not an option with a value we check: move one word on
    chk.accels(accels)
    return chk.diags
