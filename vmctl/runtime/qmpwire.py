"""The QMP multiplexer's wire rules (pure: bytes and objects in, bytes out, no sockets).

What :mod:`vmctl.runtime.qmpmux` answers itself, in QEMU 7.2's words, and how it rewrites
ids on the way to QEMU and back:

* :func:`negotiation` — a request before ``qmp_capabilities`` has succeeded: QEMU's
  negotiation mode (its request checks, "Expecting capabilities negotiation with
  'qmp_capabilities'", the capabilities' argument checks, "Capability oob not available");
* :func:`refusal` — what a negotiated client sends that cannot be forwarded (not an
  object; ``exec-oob`` without ``oob``), refused as QEMU's dispatcher refuses it;
* :func:`wire` — a request as sent to QEMU, with the multiplexer's integer ``id``;
* :func:`reply_for` — QEMU's reply with the sender's own ``id`` spliced back into QEMU's
  bytes (QEMU writes a success reply's id last and an error's first, its QDict order), or
  none when the request had none; :func:`id_text` writes an id as QEMU would echo it;
* :data:`SIMPLE` — the commonest request, handled without the parser.

QEMU's parser and request checks are the simulator's exact ports (:mod:`vmctl.sim.stream`,
:mod:`vmctl.sim.qmp`), imported on first need by :func:`protocol` — by path when no
``vmctl`` package is importable (the supervisor runs ``python -I -S``).  Also here: where
QEMU's private monitor socket goes (:func:`qemu_socket`).  Standard library only.
"""

from __future__ import annotations

import json
import os
import re
import sys

#: QEMU's private monitor socket in the instance folder.
QEMU_SOCKET = "qemu-qmp.sock"
#: ``sizeof(sun_path) - 1`` on Linux.
MAX_SOCKET_PATH = 107

OK_ID = b', "id": '          # QEMU writes a success reply's id last ...
ERR_ID = b'{"id": '          # ... and an error reply's id first (its QDict order)
EVENT = b'{"timestamp": '
#: ``{"execute": "NAME"}`` with at most an integer or a plain string ``id``: what qemu.qmp
#: sends for a command without arguments, and ``vmctl run``'s probe.  Whole messages of
#: this shape at a message boundary need no parser (nor its import), and QEMU writes such
#: an ``id`` back exactly as sent.  Only QEMU's white space (space, tab, CR, LF).
SIMPLE = re.compile(rb'[ \t\r\n]*\{[ \t\r\n]*"execute"[ \t\r\n]*:[ \t\r\n]*"([A-Za-z0-9_.-]+)"'
                    rb'[ \t\r\n]*(?:,[ \t\r\n]*"id"[ \t\r\n]*:[ \t\r\n]*'
                    rb'(0|[1-9][0-9]{0,17}|"[ !#-\[\]-~]*")[ \t\r\n]*)?\}[ \t\r\n]*')
_NEGOTIATE = (b'"error": {"class": "CommandNotFound", "desc": "Expecting capabilities '
              b"negotiation with 'qmp_capabilities'\"}}\r\n")
#: JSON as QEMU reads it back exactly (no NaN or infinity, which it cannot read).
_dumps = json.JSONEncoder(allow_nan=False, check_circular=False).encode


# -- paths ---------------------------------------------------------------------------------
def qemu_socket(folder: str, qmp_socket: str) -> str:
    """QEMU's private monitor socket for an instance folder: ``FOLDER/qemu-qmp.sock``, or,
    when that is too long for a Unix socket, next to the public QMP socket (which always
    fits, see :mod:`vmctl.runtime.sockpath`) as ``STEM.qmon``."""
    first = os.path.join(str(folder), QEMU_SOCKET)
    if len(os.fsencode(first)) <= MAX_SOCKET_PATH or not qmp_socket:
        return first
    head, tail = os.path.split(str(qmp_socket))
    return os.path.join(head, tail.rsplit(".", 1)[0] + ".qmon")


def qemu_monitor_path(cmd: list) -> str | None:
    """The Unix socket of ``-qmp unix:PATH,…`` in a QEMU command, or None."""
    for i, arg in enumerate(cmd[:-1]):
        if arg == "-qmp" and cmd[i + 1].startswith("unix:"):
            return cmd[i + 1][len("unix:"):].split(",", 1)[0]
    return None


# -- QEMU's parser and checks, from vmctl.sim -------------------------------------------------
qmp = None
JsonStream = None
_IN_START = None


def protocol() -> None:
    """Import :mod:`vmctl.sim.qmp` and :mod:`vmctl.sim.stream` (standard library only);
    by path, under their own names and without the packages' ``__init__``, when no
    ``vmctl`` package is importable."""
    global qmp, JsonStream, _IN_START
    if qmp is not None:
        return
    try:
        from vmctl.sim import qmp as module
        from vmctl.sim.stream import JsonStream as stream
    except ImportError:
        import importlib.util

        folder = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "sim")
        for name in ("qjson", "stream", "qmp"):
            full = f"vmctl.sim.{name}"
            if full not in sys.modules:
                path = os.path.join(folder, name + ".py")
                spec = importlib.util.spec_from_file_location(full, path)
                loaded = importlib.util.module_from_spec(spec)
                sys.modules[full] = loaded
                spec.loader.exec_module(loaded)
        module, stream = sys.modules["vmctl.sim.qmp"], sys.modules["vmctl.sim.stream"].JsonStream
    _IN_START = sys.modules["vmctl.sim.qjson"].IN_START
    qmp, JsonStream = module, stream


def clean(stream) -> bool:
    """``stream`` holds no part of a message (what its own fast path checks)."""
    return stream._state == _IN_START and not stream._tokens and not stream._tok


# -- answered here ---------------------------------------------------------------------------
def simple_before_negotiation(name: bytes, id_text: bytes | None) -> tuple[bytes, bool]:
    """A :data:`SIMPLE` request before negotiation: ``(reply, negotiated)``."""
    if name == b"qmp_capabilities":  # no arguments: nothing to check
        return b'{"return": {}' + (OK_ID + id_text if id_text else b"") + b"}\r\n", True
    return (ERR_ID + id_text + b", " if id_text else b"{") + _NEGOTIATE, False


def parse_error(desc: str) -> bytes:
    return qmp.encode(qmp.failure("GenericError", desc))


def negotiation(obj: object, offered_oob: bool) -> tuple[bytes, bool | None]:
    """A parsed request before negotiation: ``(reply, oob)``; ``oob`` is None while the
    client is still negotiating, else whether it enabled ``oob``."""
    req_id, has_id = qmp.request_id(obj)
    try:
        request = qmp.check_request(obj, allow_oob=False)
        if request.command != "qmp_capabilities":
            raise qmp.QMPError("CommandNotFound",
                               "Expecting capabilities negotiation with 'qmp_capabilities'")
        enable = _capabilities(request.arguments, offered_oob)
    except qmp.QMPError as exc:
        return qmp.encode(qmp.failure(exc.error_class, exc.desc, req_id, has_id)), None
    return qmp.encode(qmp.success({}, request)), "oob" in enable


def _capabilities(arguments: dict, offered_oob: bool) -> list:
    """``qmp_capabilities``' arguments checked as QEMU 7.2 does; the capabilities to
    enable, refused when QEMU did not offer them."""
    enable = qmp.check_capabilities(arguments)
    if enable and not offered_oob:
        raise qmp.QMPError.generic(f"Capability {', '.join(enable)} not available")
    return enable


def refusal(obj: object) -> bytes:
    """Not an object, or ``exec-oob`` without ``oob``: QEMU's dispatcher's error."""
    req_id, has_id = qmp.request_id(obj)
    try:
        qmp.check_request(obj, allow_oob=False)
        cls, desc = "GenericError", "QMP input member 'exec-oob' is unexpected"  # not reached
    except qmp.QMPError as exc:
        cls, desc = exc.error_class, exc.desc
    return qmp.encode(qmp.failure(cls, desc, req_id, has_id))


# -- ids -----------------------------------------------------------------------------------------
def id_text(value: object) -> bytes:
    """A request's ``id`` as QEMU writes it back (members in QDict order, ``%.17g``)."""
    kind = type(value)
    if kind is int:
        return str(value).encode()
    if kind is str and value.isascii() and value.isprintable():
        return _dumps(value).encode()  # no escapes but \" and \\, written alike
    return qmp.encode({"id": qmp.qdict_sorted(value)})[7:-3]


def wire(request: dict | bytes, mux_id: int) -> bytes:
    """The line sent to QEMU: ``request`` (or the command so named) with ``mux_id``."""
    if type(request) is bytes:
        return b'{"execute": "' + request + b'", "id": ' + str(mux_id).encode() + b"}\n"
    msg = dict(request)
    msg["id"] = mux_id
    try:
        return _dumps(msg).encode("ascii") + b"\n"
    except (ValueError, RecursionError):
        # Deeper than json goes, or an infinity: QEMU's writer copes with any depth, and
        # QEMU parses 1e999 back to the infinity it read (its parser refuses U+0000 in
        # strings, so the markers cannot clash with a client's text).
        text = qmp.encode(_finite(msg))[:-2]
        return (text.replace(b'"\\u0000+inf"', b"1e999")
                .replace(b'"\\u0000-inf"', b"-1e999") + b"\n")


def _finite(value: object) -> object:
    """``value`` with ±inf (an overflowing literal such as ``1e400``) as marker strings."""
    top: list = [None]
    stack = [(value, top, 0)]
    while stack:
        src, dst, key = stack.pop()
        if isinstance(src, float) and src in (float("inf"), float("-inf")):
            dst[key] = "\0+inf" if src > 0 else "\0-inf"
        elif isinstance(src, dict):
            dst[key] = copy = dict(src)
            stack.extend((v, copy, k) for k, v in src.items())
        elif isinstance(src, list):
            dst[key] = copy = list(src)
            stack.extend((v, copy, i) for i, v in enumerate(src))
        else:
            dst[key] = src
    return top[0]


def reply_for(line: bytes, pending: dict) -> tuple[tuple, bytes] | None:
    """``(entry, line for the sender)`` for one of QEMU's replies, its entry ``(client,
    slot, id_text or None)`` taken from ``pending`` (by the multiplexer's id).  None for a
    reply to nobody."""
    error = line.startswith(ERR_ID)
    if error:
        comma = line.find(b", ", 7)
        key = line[7:comma]
    else:
        comma = line.rfind(OK_ID)
        key = line[comma + 8:-3] if comma > 0 and line.endswith(b"}\r\n") else b""
    if not key.isdigit():
        return _reply_slow(line, pending)
    entry = pending.pop(int(key), None)
    if entry is None:
        return None
    id_text = entry[2]
    if error:
        rest = line[comma + 2:]
        return entry, b"{" + rest if id_text is None else ERR_ID + id_text + b", " + rest
    return entry, line[:comma] + (b"" if id_text is None else OK_ID + id_text) + b"}\r\n"


def _reply_slow(line: bytes, pending: dict) -> tuple[tuple, bytes] | None:
    """A reply in a shape the fast path does not know: parsed and written whole."""
    protocol()
    try:
        msg = json.loads(line)
        entry = pending.pop(msg["id"], None) if type(msg.get("id")) is int else None
    except (ValueError, KeyError, AttributeError):
        return None
    if entry is None:
        return None
    if entry[2] is None:
        del msg["id"]
    else:
        msg["id"] = json.loads(entry[2])  # already in QEMU's order
    return entry, qmp.encode(msg)
