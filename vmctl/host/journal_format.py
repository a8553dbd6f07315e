"""The host journal's file format (version 2), its validation, and reading version 1.

One JSON file per sysfs root, ``STATE/.host/journal-<first 16 hex of sha256(root)>.json``
(mode 0600 in a 0700 folder; :mod:`vmctl.host.journal_store` reads and writes it)::

    {
      "version": 2,
      "root": "/",                         # the sysfs root, resolved
      "transactions": [TRANSACTION, …]     # oldest first; ids 1, 2, 3 …
    }

A TRANSACTION is one ``vmctl host apply --apply``::

    {
      "id": 2, "machine": "x86-passthrough",
      "time": 1733212345.6,                # when apply started (Unix time)
      "pid": 4242,                         # the vmctl process that applied it
      "state": "applied",                  # TX_STATES
      "steps": [STEP, …],                  # in apply order; undone in reverse
      "expect": {"/sys/…/driver_override": "vfio-pci"}
    }

``expect`` holds, for every readable file a step writes or its undo will write, the value
vmctl last saw right after one of its own writes (``null``: the file was absent).  ``undo``
compares it with the file now: a difference is *drift* (someone else changed the host).

A STEP is one sysfs write and the writes that undo it::

    {
      "description": "0000:01:00.0 (device[0], on nouveau): unbind from nouveau",
      "plugin": "vfio", "key": "device[0].host",
      "write": ["/sys/bus/pci/drivers/nouveau/unbind", "0000:01:00.0"],
      "undo": [["/sys/…/driver_override", ""], ["/sys/bus/pci/drivers/nouveau/bind", "0000:01:00.0"]],
      "state": "done",                     # STEP_STATES
      "before": {"/sys/…/driver_override": "vfio-pci"},   # readable files, before the write
      "after": {"/sys/…/driver_override": "vfio-pci"},    # the same files, after it
      "undone": 0,                         # undo writes known to be performed
      "error": null,                       # the last refused write, "writing 'V' to P: ERRNO: text"
      "note": null                         # how an unknown outcome was settled
    }

Version 1 (vmctl before the write-ahead journal) had no ``version``, ``pid``, ``expect``,
``before``, ``after``; a step had ``"done": true|false`` instead of ``state``.
:func:`check` upgrades it in memory (the file is rewritten as version 2 on the next change).
"""

from __future__ import annotations

from typing import Any

VERSION = 2

#: Transaction states; a transaction in any but FINAL still has steps ``undo`` reverses.
TX_STATES = {
    "applying": "apply is running, or vmctl stopped while applying",
    "applied": "every step was performed",
    "rolling-back": "a step failed and the earlier ones are being reversed",
    "rolled-back": "a step failed; every earlier step was reversed",
    "rollback-failed": "a step failed and reversing the earlier ones failed too",
    "undoing": "undo is running, or vmctl stopped while undoing",
    "undone": "every performed step was reversed",
    "undo-failed": "undo stopped at a write the kernel refused",
}
FINAL = frozenset({"rolled-back", "undone"})

#: Step states.  ``intent`` and ``undoing`` are the write-ahead records: written (and
#: fsync'd) before the write they announce, so after a crash they mean "may have happened".
STEP_STATES = {
    "planned": "not attempted: nothing was written",
    "intent": "the write may have happened (vmctl stopped before recording its outcome)",
    "done": "the write was performed",
    "failed": "the kernel refused the write: nothing was written",
    "undoing": "undo writes [0, undone) were performed; write `undone` may have been "
               "(unless `error` says the kernel refused it)",
    "reversed": "every undo write was performed",
    "not-performed": "undo found that the write had not taken effect: nothing to reverse",
}
#: Steps whose write may have happened and that are not reversed yet.
TO_REVERSE = frozenset({"intent", "done", "undoing"})

_V1_STATES = ("applying", "applied", "rolled-back", "rollback-failed", "undone", "undo-failed")


class Damaged(ValueError):
    """The journal's contents are not a journal; the message says where and what."""


def empty(root: str) -> dict[str, Any]:
    return {"version": VERSION, "root": root, "transactions": []}


def _kind(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "true/false",
            type(None): "null"}.get(type(value), "a number")


def _field(obj: dict[str, Any], key: str, types: tuple[type, ...], where: str,
           required: bool = True) -> Any:
    if key not in obj:
        if required:
            raise Damaged(f"{where} has no {key!r}")
        return None
    value = obj[key]
    if isinstance(value, bool) and bool not in types or not isinstance(value, types):
        want = " or ".join(dict.fromkeys(_kind(None if t is type(None) else t()) for t in types))
        raise Damaged(f"{where}.{key} is {_kind(value)}, not {want}")
    return value


def _write(value: Any, where: str) -> None:
    if not (isinstance(value, list) and len(value) == 2 and all(isinstance(v, str) for v in value)):
        raise Damaged(f"{where} is not a [path, value] pair of strings")


def _values(obj: dict[str, Any], key: str, where: str) -> None:
    values = _field(obj, key, (dict,), where, required=False) or {}
    for path, value in values.items():
        if not isinstance(value, (str, type(None))):
            raise Damaged(f"{where}.{key}[{path!r}] is {_kind(value)}, not a string or null")


def _step(step: Any, where: str, version: int) -> None:
    if not isinstance(step, dict):
        raise Damaged(f"{where} is {_kind(step)}, not an object")
    _field(step, "description", (str,), where)
    _field(step, "plugin", (str,), where)
    _field(step, "key", (str,), where, required=False)
    _write(_field(step, "write", (list,), where), f"{where}.write")
    undo = _field(step, "undo", (list,), where)
    for k, u in enumerate(undo):
        _write(u, f"{where}.undo[{k}]")
    if version == 1:
        _field(step, "done", (bool,), where)
        return
    state = _field(step, "state", (str,), where)
    if state not in STEP_STATES:
        raise Damaged(f"{where}.state is {state!r}, not one of {', '.join(STEP_STATES)}")
    _values(step, "before", where)
    _values(step, "after", where)
    undone = _field(step, "undone", (int,), where, required=False) or 0
    if not 0 <= undone <= len(undo):
        raise Damaged(f"{where}.undone is {undone}, outside 0..{len(undo)}")
    _field(step, "error", (str, type(None)), where, required=False)
    _field(step, "note", (str, type(None)), where, required=False)


def _transaction(tx: Any, where: str, version: int) -> None:
    if not isinstance(tx, dict):
        raise Damaged(f"{where} is {_kind(tx)}, not an object")
    _field(tx, "id", (int,), where)
    _field(tx, "machine", (str,), where)
    _field(tx, "time", (int, float), where)
    _field(tx, "pid", (int,), where, required=False)
    state = _field(tx, "state", (str,), where)
    states = _V1_STATES if version == 1 else tuple(TX_STATES)
    if state not in states:
        raise Damaged(f"{where}.state is {state!r}, not one of {', '.join(states)}")
    steps = _field(tx, "steps", (list,), where)
    for i, step in enumerate(steps):
        _step(step, f"{where}.steps[{i}]", version)
    if version > 1:
        _values(tx, "expect", where)


def check(data: Any) -> dict[str, Any]:
    """``data`` (parsed JSON) as a version-2 journal; raises :class:`Damaged` if it is none."""
    if not isinstance(data, dict):
        raise Damaged(f"the file holds {_kind(data)}, not a journal object")
    version = _field(data, "version", (int,), "the journal", required=False) or 1
    if version > VERSION:
        raise Damaged(f"it has format version {version}, written by a newer vmctl "
                      f"(this one reads versions 1 and {VERSION})")
    _field(data, "root", (str,), "the journal")
    txs = _field(data, "transactions", (list,), "the journal")
    for i, tx in enumerate(txs):
        _transaction(tx, f"transactions[{i}]", version)
    return data if version == VERSION else _upgrade(data)


def _upgrade(old: dict[str, Any]) -> dict[str, Any]:
    """A version-1 journal as version 2.

    Version 1 marked a step done after its write and ran steps in order, so in an
    ``applying`` transaction the first step not done may have been written (``intent``).
    A failed rollback or undo cleared every ``done`` flag, so what is left is unknown:
    every step counts as possibly written.
    """
    txs = []
    for tx in old["transactions"]:
        state, steps = tx["state"], []
        in_flight = state == "applying"
        for s in tx["steps"]:
            if s["done"]:
                st = "done"
            elif state in ("rollback-failed", "undo-failed"):
                st = "intent"
            elif in_flight:
                st, in_flight = "intent", False
            else:
                st = "planned"
            steps.append({k: v for k, v in s.items() if k != "done"} | {
                "state": st, "before": {}, "after": {}, "undone": 0, "error": None, "note": None})
        txs.append({**tx, "pid": 0, "steps": steps, "expect": {}})
    return {"version": VERSION, "root": old["root"], "transactions": txs}
