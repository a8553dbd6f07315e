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
import re
from collections.abc import Iterable, Iterator, Mapping
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
    """One wire line, byte for byte as QEMU's JSON writer makes it.

    ``", "`` and ``": "`` separators; non-ASCII, control characters and DEL as ``\\uXXXX``
    with upper-case hex (characters beyond the BMP as surrogate pairs); doubles printed
    with ``%.17g`` (``0.1`` → ``0.10000000000000001``, ``1e2`` → ``100``, overflow →
    ``inf``).  Any nesting depth is fine (QEMU echoes an ``id`` 1023 levels deep).
    """
    text: str | None = None
    if _plain(message):
        try:
            text = json.dumps(message)
        except RecursionError:  # the C encoder recurses; _write does not
            pass
    if text is None:
        text = "".join(_write(message))
    if "\\u" in text:
        text = _ESCAPE.sub(_upper_escape, text)
    if "\x7f" in text:
        text = text.replace("\x7f", "\\u007F")
    return text.encode("ascii") + b"\r\n"


_ESCAPE = re.compile(r"\\\\|\\u[0-9a-f]{4}")
_PLAIN_DEPTH = 32


def _upper_escape(m: re.Match[str]) -> str:
    text = m.group()
    return "\\u" + text[2:].upper() if text[1] == "u" else text


_SCALARS = frozenset((str, int, bool, type(None)))


def _plain(value: Any) -> bool:
    """True when ``json.dumps`` writes ``value`` as QEMU does: no doubles, not deep."""
    if type(value) in _SCALARS:
        return True
    stack = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        kind = type(item)
        if kind is dict:
            children: Any = item.values()
        elif kind is list or kind is tuple:
            children = item
        elif kind in _SCALARS or isinstance(item, (str, int)):  # str/int subclasses: enums
            continue
        else:
            return False
        if depth >= _PLAIN_DEPTH:
            return False
        stack.extend((child, depth + 1) for child in children
                     if type(child) not in _SCALARS)
    return True


def _write(value: Any) -> Iterator[str]:
    """The pieces of ``value`` as QEMU writes it, without recursion."""
    stack: list[list[Any]] = []  # [iterator, is_object, written_one]
    pending: Any = value
    while True:
        if isinstance(pending, Mapping):
            yield "{"
            stack.append([iter(pending.items()), True, False])
        elif isinstance(pending, (list, tuple)):
            yield "["
            stack.append([iter(pending), False, False])
        elif isinstance(pending, float):
            yield "%.17g" % pending
        else:
            yield json.dumps(pending)
        while stack:
            frame = stack[-1]
            item = next(frame[0], _END)
            if item is not _END:
                break
            stack.pop()
            yield "}" if frame[1] else "]"
        else:
            return
        if frame[2]:
            yield ", "
        frame[2] = True
        if frame[1]:
            key, pending = item
            yield json.dumps(str(key)) + ": "
        else:
            pending = item


_END = object()


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


def check_request(obj: Any, allow_oob: bool = False) -> Request:
    """Validate a decoded message the way QEMU's dispatcher does, in the same order.

    Members are looked at in QEMU's dictionary order (:func:`qdict_order`), so the error
    for ``{"execute": 1, "foo": 2}`` is the one QEMU gives.  ``exec-oob`` is a member
    like any other unless out-of-band execution was negotiated (``allow_oob``).  Raises
    :class:`QMPError` with QEMU's exact descriptions; the caller still echoes the ``id``
    when the object had one (see :func:`request_id`).
    """
    if not isinstance(obj, dict):
        raise QMPError.generic("QMP input must be a JSON object")
    exec_key: str | None = None
    for key in qdict_order(obj):
        value = obj[key]
        if key == "execute" or (key == "exec-oob" and allow_oob):
            if not isinstance(value, str):
                raise QMPError.generic(f"QMP input member '{key}' must be a string")
            if exec_key is not None:
                raise QMPError.generic(f"QMP input member '{key}' clashes with '{exec_key}'")
            exec_key = key
        elif key == "arguments":
            if not isinstance(value, dict):
                raise QMPError.generic("QMP input member 'arguments' must be an object")
        elif key != "id":
            raise QMPError.generic(f"QMP input member '{key}' is unexpected")
    if exec_key is None:
        raise QMPError.generic("QMP input lacks member 'execute'")
    return Request(obj[exec_key], obj.get("arguments", {}), qdict_sorted(obj.get("id")),
                   "id" in obj, exec_key == "exec-oob")


def request_id(obj: Any) -> tuple[Any, bool]:
    """``(id, present)`` of a raw message, for echoing in an error reply.

    An object ``id`` comes back with its members in QEMU's order (:func:`qdict_sorted`).
    """
    if isinstance(obj, dict) and "id" in obj:
        return qdict_sorted(obj["id"]), True
    return None, False


# -- QEMU's dictionary orders --------------------------------------------------------------
# Which of several bad members QEMU reports depends on the order its dictionaries iterate:
# a QDict (qobject/qdict.c) by bucket of tdb_hash, newest first within a bucket; the
# visitor's table of not-yet-visited arguments (a GLib GHashTable) by slot.

_QDICT_BUCKETS = 512
_bucket_cache: dict[str, int] = {}


def _qdict_bucket(key: str) -> int:
    bucket = _bucket_cache.get(key)
    if bucket is None:
        raw = key.encode("utf-8", "surrogatepass").replace(b"\0", b"\xc0\x80")
        value = (0x238F13AF * len(raw)) & 0xFFFFFFFF
        for i, byte in enumerate(raw):
            value = (value + (byte << (i * 5 % 24))) & 0xFFFFFFFF
        bucket = ((1103515243 * value + 12345) & 0xFFFFFFFF) % _QDICT_BUCKETS
        if len(_bucket_cache) < 4096:
            _bucket_cache[key] = bucket
    return bucket


_order_cache: dict[tuple[str, ...], list[str]] = {}


def qdict_order(obj: Mapping[str, Any]) -> list[str]:
    """The keys of ``obj`` (in insertion order) in the order QEMU's QDict iterates them:
    by bucket, the later inserted first within a bucket."""
    keys = tuple(obj)
    if len(keys) < 2:
        return list(keys)
    order = _order_cache.get(keys)
    if order is None:
        order = [k for _, _, k in sorted((_qdict_bucket(k), -i, k) for i, k in enumerate(keys))]
        if len(_order_cache) < 1024:
            _order_cache[keys] = order
    return order


def qdict_sorted(value: Any) -> Any:
    """``value`` with every object's members in QDict order, as QEMU echoes it back.

    Scalars come back as they are; containers are copied (without recursion: an ``id``
    may be nested 1023 levels deep).
    """
    if not isinstance(value, (dict, list)):
        return value
    top: Any = {} if isinstance(value, dict) else []
    stack = [(value, top)]
    while stack:
        src, dst = stack.pop()
        if isinstance(src, dict):
            for key in qdict_order(src):
                item = src[key]
                if isinstance(item, (dict, list)):
                    dst[key] = child = {} if isinstance(item, dict) else []
                    stack.append((item, child))
                else:
                    dst[key] = item
        else:
            for item in src:
                if isinstance(item, (dict, list)):
                    child = {} if isinstance(item, dict) else []
                    dst.append(child)
                    stack.append((item, child))
                else:
                    dst.append(item)
    return top


_GHASH_PRIMES = (1, 2, 3, 7, 13, 31, 61, 127, 251, 509, 1021, 2039, 4093, 8191, 16381, 32749,
                 65521, 131071, 262139, 524287, 1048573, 2097143, 4194301, 8388593, 16777213,
                 33554393, 67108859, 134217689, 268435399, 536870909, 1073741789, 2147483647)


class _GHashTable:
    """Just enough of GLib 2.74's GHashTable (g_str_hash keys) to know its iteration order."""

    def __init__(self) -> None:
        self._set_shift(3)
        self.hashes = [0] * self.size
        self.keys: list[str | None] = [None] * self.size
        self.nnodes = self.noccupied = 0

    def _set_shift(self, shift: int) -> None:
        self.size = 1 << shift
        self.mod = _GHASH_PRIMES[shift]
        self.mask = self.size - 1

    @staticmethod
    def _hash(key: str) -> int:
        h = 5381
        for byte in key.encode("utf-8", "surrogatepass").replace(b"\0", b"\xc0\x80"):
            h = (h * 33 + (byte - 256 if byte > 127 else byte)) & 0xFFFFFFFF  # signed char
        return h if h > 1 else 2

    def _lookup(self, key: str, h: int) -> int:
        i = ((h * 11) & 0xFFFFFFFF) % self.mod
        step, tombstone = 0, -1
        while self.hashes[i]:
            if self.hashes[i] == h and self.keys[i] == key:
                return i
            if self.hashes[i] == 1 and tombstone < 0:
                tombstone = i
            step += 1
            i = (i + step) & self.mask
        return tombstone if tombstone >= 0 else i

    def insert(self, key: str) -> None:
        h = self._hash(key)
        i = self._lookup(key, h)
        old = self.hashes[i]
        if old > 1:
            return
        self.hashes[i], self.keys[i] = h, key
        self.nnodes += 1
        if old == 0:
            self.noccupied += 1
            self._maybe_resize()

    def remove(self, key: str) -> None:
        i = self._lookup(key, self._hash(key))
        if self.hashes[i] > 1:
            self.hashes[i], self.keys[i] = 1, None
            self.nnodes -= 1
            self._maybe_resize()

    def _maybe_resize(self) -> None:
        if (self.size > self.nnodes * 4 and self.size > 8) \
                or self.size <= self.noccupied + self.noccupied // 16:
            self._resize()

    def _resize(self) -> None:  # resize_map(): in place, evicting as it goes
        old_size = self.size
        n, shift = int(self.nnodes * 1.333), 0
        while n:
            n >>= 1
            shift += 1
        self._set_shift(max(shift, 3))
        if self.size > old_size:
            self.hashes += [0] * (self.size - old_size)
            self.keys += [None] * (self.size - old_size)
        placed = [False] * max(self.size, old_size)
        for i in range(old_size):
            node_hash = self.hashes[i]
            if node_hash < 2:
                self.hashes[i] = 0
                continue
            if placed[i]:
                continue
            self.hashes[i] = 0
            key, self.keys[i] = self.keys[i], None
            while True:
                j = ((node_hash * 11) & 0xFFFFFFFF) % self.mod
                step = 0
                while placed[j]:
                    step += 1
                    j = (j + step) & self.mask
                placed[j] = True
                replaced = self.hashes[j]
                self.hashes[j] = node_hash
                if replaced < 2:
                    self.keys[j] = key
                    break
                node_hash = replaced
                key, self.keys[j] = self.keys[j], key
        del self.hashes[self.size:], self.keys[self.size:]
        self.noccupied = self.nnodes

    def first(self) -> str | None:
        for h, key in zip(self.hashes, self.keys):
            if h > 1:
                return key
        return None


def first_unexpected(arguments: Mapping[str, Any], members: Iterable[str]) -> str | None:
    """The argument QEMU's ``visit_check_struct`` names in "Parameter '…' is unexpected".

    Arguments not among ``members``; of several, the first in the GHashTable the visitor
    fills in QDict order and removes visited members from.
    """
    known = set(members)
    if all(name in known for name in arguments):
        return None
    table = _GHashTable()
    for name in qdict_order(arguments):
        table.insert(name)
    for name in known:
        if name in arguments:
            table.remove(name)
    return table.first()


# -- argument checking (QAPI visitor messages) ------------------------------------------
_TYPE_NAMES = {str: "string", int: "integer", bool: "boolean", dict: "object", list: "array"}
_INT64 = (-(1 << 63), (1 << 63) - 1)


def check_members(arguments: Mapping[str, Any], spec: Mapping[str, tuple[type, bool]]) -> None:
    """The members of ``spec`` (name → (type, required)), in order, as QEMU's visitor does.

    ``int`` is QAPI's ``int``: a JSON integer in the int64 range (not a double, not
    ``true``).
    """
    for name, (typ, required) in spec.items():
        if name not in arguments:
            if required:
                raise QMPError.generic(f"Parameter '{name}' is missing")
            continue
        value = arguments[name]
        if not isinstance(value, typ) or (typ is int and (
                isinstance(value, bool) or not _INT64[0] <= value <= _INT64[1])):
            raise QMPError.generic(
                f"Invalid parameter type for '{name}', expected: "
                f"{_TYPE_NAMES.get(typ, typ.__name__)}")


def check_capabilities(arguments: Mapping[str, Any]) -> list[str]:
    """``qmp_capabilities``' arguments as QEMU 7.2's visitor and ``qmp_caps_accept`` check
    them; the capabilities to enable.  (The simulator's sessions and the qemu backend's
    multiplexer both answer negotiation with it.)"""
    check_members(arguments, {"enable": (list, False)})
    enable = arguments.get("enable", [])
    for i, cap in enumerate(enable):
        if not isinstance(cap, str):
            raise QMPError.generic(f"Invalid parameter type for 'enable[{i}]', expected: string")
        if cap != "oob":
            # QEMU 7.2 names a list element's enum 'null' here (seen on the real one).
            raise QMPError.generic(f"Parameter 'null' does not accept value '{cap}'")
    check_unexpected(arguments, ("enable",))
    return enable


def check_unexpected(arguments: Mapping[str, Any], members: Iterable[str]) -> None:
    """"Parameter '…' is unexpected" for an argument not among ``members``."""
    name = first_unexpected(arguments, members)
    if name is not None:
        raise QMPError.generic(f"Parameter '{name}' is unexpected")


def check_arguments(arguments: Mapping[str, Any],
                    spec: Mapping[str, tuple[type, bool]]) -> None:
    """Check ``arguments`` against ``spec`` (name → (type, required)) like QEMU's visitor.

    Declared members first, in declaration order (missing, then mistyped), then members
    nobody asked for; ``bool`` is not an integer (JSON has distinct types).
    """
    check_members(arguments, spec)
    check_unexpected(arguments, spec)
