"""QMP wire format as QEMU 7.2 speaks it: messages, error shapes, request checks.

Everything here is pure (no sockets, no clock) and imports only the standard library, so a
plugin's device model can ``from vmctl.sim.qmp import QMPError`` cheaply.

Shapes are copied from a real ``qemu-system-ppc64`` 7.2 (``-qmp stdio``), key order
included, because QEMU's dictionaries serialise in a fixed order that raw-socket tools and
tests see::

    {"QMP": {"version": {"qemu": {"micro": 0, "minor": 2, "major": 7}, "package": "…"},
             "capabilities": ["oob"]}}
    {"return": {}, "id": 1}
    {"id": 5, "error": {"class": "GenericError", "desc": "…"}}
    {"timestamp": {"seconds": 1, "microseconds": 2}, "event": "STOP"}

Lines end with ``\\r\\n`` like QEMU's monitor.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

#: Error classes QEMU uses on the wire (``qapi/error.json``).
ERROR_CLASSES = ("GenericError", "CommandNotFound", "DeviceNotActive", "DeviceNotFound",
                 "KVMMissingCap")

#: The QEMU release whose protocol the simulator reproduces.
QEMU_VERSION = {"micro": 0, "minor": 2, "major": 7}

#: Prefix of every vmctl-specific command and event (QMP's vendor-extension rule).
VENDOR_PREFIX = "__org.vmctl_"


class QMPError(Exception):
    """A command's failure, answered as ``{"error": {"class": ..., "desc": ...}}``.

    Raise it from a :class:`~vmctl.types.SimDevice` command handler::

        raise QMPError("DeviceNotFound", "no AP queue 05.0004 in the matrix")

    ``error_class`` must be one of :data:`ERROR_CLASSES` (QEMU's own set; clients such as
    ``qemu.qmp`` expose it as ``ExecuteError.error_class``).
    """

    def __init__(self, error_class: str, desc: str) -> None:
        if error_class not in ERROR_CLASSES:
            raise ValueError(f"unknown QMP error class {error_class!r}; use one of "
                             f"{', '.join(ERROR_CLASSES)}")
        super().__init__(desc)
        self.error_class = error_class
        self.desc = desc

    @classmethod
    def generic(cls, desc: str) -> QMPError:
        """The common case: ``GenericError`` with ``desc``."""
        return cls("GenericError", desc)


@dataclass(frozen=True)
class Request:
    """A checked QMP request: ``execute`` (or ``exec-oob``), ``arguments`` and ``id``."""

    command: str
    arguments: dict[str, Any]
    id: Any = None
    has_id: bool = False
    oob: bool = False


def encode(message: Mapping[str, Any]) -> bytes:
    """One wire line (QEMU escapes non-ASCII, separates with ``", "`` and ``": "``)."""
    return json.dumps(message).encode("ascii") + b"\r\n"


def greeting(package: str, oob: bool = True) -> dict[str, Any]:
    """The banner QEMU sends on connect, before any request."""
    return {"QMP": {"version": {"qemu": dict(QEMU_VERSION), "package": package},
                    "capabilities": ["oob"] if oob else []}}


def success(value: Any, request: Request | None) -> dict[str, Any]:
    """A reply carrying ``return`` (and the request's ``id`` when it had one)."""
    reply: dict[str, Any] = {"return": value}
    if request is not None and request.has_id:
        reply["id"] = request.id
    return reply


def failure(error_class: str, desc: str, req_id: Any = None,
            has_id: bool = False) -> dict[str, Any]:
    """An error reply; QEMU puts ``id`` first in these."""
    reply: dict[str, Any] = {}
    if has_id:
        reply["id"] = req_id
    reply["error"] = {"class": error_class, "desc": desc}
    return reply


def event(name: str, wall_time: float, data: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """An asynchronous event stamped with ``wall_time`` (seconds since the epoch)."""
    seconds = int(wall_time)
    micro = int(round((wall_time - seconds) * 1_000_000))
    if micro >= 1_000_000:
        seconds, micro = seconds + 1, micro - 1_000_000
    msg: dict[str, Any] = {"timestamp": {"seconds": seconds, "microseconds": micro},
                           "event": name}
    if data is not None:
        msg["data"] = dict(data)
    return msg


def check_request(obj: Any) -> Request:
    """Validate a decoded message the way QEMU's dispatcher does, in the same order.

    Raises :class:`QMPError` with QEMU's exact descriptions; the caller still echoes the
    ``id`` when the object had one (see :func:`request_id`).
    """
    if not isinstance(obj, dict):
        raise QMPError.generic("QMP input must be a JSON object")
    command: str | None = None
    oob = False
    arguments: dict[str, Any] = {}
    for key, value in obj.items():
        if key in ("execute", "exec-oob"):
            if not isinstance(value, str):
                raise QMPError.generic(f"QMP input member '{key}' must be a string")
            if command is not None:
                raise QMPError.generic(
                    "QMP input must not contain both 'execute' and 'exec-oob'")
            command, oob = value, key == "exec-oob"
        elif key == "arguments":
            if not isinstance(value, dict):
                raise QMPError.generic("QMP input member 'arguments' must be an object")
            arguments = value
        elif key != "id":
            raise QMPError.generic(f"QMP input member '{key}' is unexpected")
    if command is None:
        raise QMPError.generic("QMP input lacks member 'execute'")
    return Request(command, arguments, obj.get("id"), "id" in obj, oob)


def request_id(obj: Any) -> tuple[Any, bool]:
    """``(id, present)`` of a raw message, for echoing in an error reply."""
    if isinstance(obj, dict) and "id" in obj:
        return obj["id"], True
    return None, False


# -- argument checking (QAPI visitor messages) ------------------------------------------
_TYPE_NAMES = {str: "string", int: "integer", bool: "boolean", dict: "object", list: "array"}


def check_arguments(arguments: Mapping[str, Any],
                    spec: Mapping[str, tuple[type, bool]]) -> None:
    """Check ``arguments`` against ``spec`` (name → (type, required)) like QEMU's visitor.

    Unknown members are reported first, then missing and mistyped ones.  ``bool`` is not
    accepted where an integer is expected (JSON has distinct types).
    """
    for name in arguments:
        if name not in spec:
            raise QMPError.generic(f"Parameter '{name}' is unexpected")
    for name, (typ, required) in spec.items():
        if name not in arguments:
            if required:
                raise QMPError.generic(f"Parameter '{name}' is missing")
            continue
        value = arguments[name]
        if not isinstance(value, typ) or (typ is int and isinstance(value, bool)):
            raise QMPError.generic(
                f"Invalid parameter type for '{name}', expected: {_TYPE_NAMES.get(typ, typ.__name__)}")
