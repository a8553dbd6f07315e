"""The host change journal: apply steps in order, roll back on failure, undo later.

Each ``vmctl host apply --apply`` is one *transaction* in the journal of its sysfs root
(the file format: :mod:`vmctl.host.journal_format`; where it lives and how it is written:
:mod:`vmctl.host.journal_store`).  Use it under its lock::

    with journal.locked(sysfs) as j:           # waits while another apply/undo runs
        steps = plan(...)                      # plan against the state the lock protects
        result = j.apply(steps, machine.name)

    with journal.locked(sysfs) as j:
        done = j.undo(force=False)             # the newest transaction not yet undone

Write-ahead protocol (every record is fsync'd, file and folder, before the next action):

1. the transaction is recorded (``applying``, every step ``planned``);
2. per step: the values of its readable files are read, the step is recorded as
   ``intent`` ("the write may happen"), the write is made, the files are read again and
   the step is recorded as ``done`` with both values;
3. the transaction is recorded as ``applied``.

A write the kernel refuses marks the step ``failed`` and reverses the earlier ones
(``rolled-back``, or ``rollback-failed`` when a reversal fails too).  ``undo`` reverses
every step recorded as ``intent``, ``done`` or half-reversed, of the newest transaction
not ``undone``/``rolled-back`` — whatever state a crash, a race or a fault left it in —
and records its own progress the same way, so it can be run again until it finishes
(:mod:`vmctl.host.journal_undo`).  Before writing anything, ``undo`` compares every
readable file with what vmctl left there and refuses when someone else changed it,
unless ``force``.

The lock is an ``flock`` per sysfs root: two applies on one root run one after the other,
and the second plans against what the first did.

``apply_steps``, ``undo_last``, ``history`` and ``journal_path`` are the one-call forms;
each takes the lock itself.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

from vmctl.errors import VmctlError
from vmctl.host import journal_faults as faults
from vmctl.host.journal_format import FINAL
from vmctl.host.journal_store import JournalStore
from vmctl.host.journal_undo import (Drift, Outcome, drift, errmsg, is_value_attr, read_value,
                                     refresh_expect, reverse, step_paths)
from vmctl.host.sysfs import Sysfs
from vmctl.types import HostStep


@dataclass
class Result:
    """What ``apply`` did: ``applied`` steps, as transaction number ``transaction``."""

    applied: int
    transaction: int


@dataclass
class UndoResult:
    """What one ``undo`` run did to ``transaction`` (the journal record, as saved).

    ``reversed``: step numbers reversed by this run, newest first; ``uncertain``:
    ``(step, why)`` for those of them interrupted before their outcome was recorded, whose
    undo the kernel accepted either way; ``not_performed``: ``(step, why)`` for steps
    found never to have taken effect; ``earlier``: steps an earlier, interrupted or failed
    run (or rollback) had already settled; ``was``: the transaction's state before this
    run; ``forced``: drift that ``force`` overrode.
    """

    transaction: dict[str, Any]
    reversed: list[int]
    uncertain: list[tuple[int, str]]
    not_performed: list[tuple[int, str]]
    earlier: int
    was: str
    forced: list[Drift] = field(default_factory=list)


def _steps(ns: list[int]) -> str:
    """``step 3`` / ``steps 3, 2, 1``."""
    return f"step {ns[0]}" if len(ns) == 1 else "steps " + ", ".join(map(str, ns))


class Journal:
    """The journal of one sysfs root, held under its lock (see :func:`locked`)."""

    def __init__(self, sysfs: Sysfs, store: JournalStore) -> None:
        self.sysfs = sysfs
        self.store = store
        self.data = store.load()
        self.data["root"] = str(sysfs.root)

    @property
    def path(self) -> Path:
        return self.store.path

    @property
    def transactions(self) -> list[dict[str, Any]]:
        return self.data["transactions"]

    def unfinished(self) -> list[dict[str, Any]]:
        """Transactions with steps still to reverse that are not simply ``applied``."""
        return [tx for tx in self.transactions if tx["state"] not in FINAL | {"applied"}]

    def _save(self) -> None:
        self.store.save(self.data)

    # -- apply ------------------------------------------------------------------------------
    def apply(self, steps: list[HostStep], machine: str) -> Result:
        """Perform ``steps`` in order, write-ahead journaled; on a refused write, reverse the
        earlier ones and raise a VmctlError naming the step, file, value and errno."""
        tx: dict[str, Any] = {
            "id": max((t["id"] for t in self.transactions), default=0) + 1, "machine": machine,
            "time": time.time(), "pid": os.getpid(), "state": "applying", "expect": {},
            "steps": [{"description": s.description, "plugin": s.plugin, "key": s.key,
                       "write": [s.write.path, s.write.value],
                       "undo": [[u.path, u.value] for u in s.undo], "state": "planned",
                       "before": {}, "after": {}, "undone": 0, "error": None, "note": None}
                      for s in steps]}
        self.transactions.append(tx)
        self._save()
        for n, (step, rec) in enumerate(zip(steps, tx["steps"]), 1):
            faults.point("before-intent", n)
            tracked = [p for p in step_paths(rec) if is_value_attr(self.sysfs, p)]
            rec.update(state="intent", before={p: read_value(self.sysfs, p) for p in tracked})
            self._save()
            faults.point("before-write", n)
            try:
                self.sysfs.write(step.write.path, step.write.value)
            except OSError as exc:
                rec.update(state="failed", error=f"writing {step.write.value!r} to "
                                                 f"{step.write.path}: {errmsg(exc)}")
                self._rollback(tx, n, step, exc)
            faults.point("after-write", n)
            rec.update(state="done", after={p: read_value(self.sysfs, p) for p in tracked})
            refresh_expect(self.sysfs, tx, tracked)
            self._save()
            faults.point("after-done", n)
        tx["state"] = "applied"
        self._save()
        return Result(len(steps), tx["id"])

    def _rollback(self, tx: dict[str, Any], n: int, step: HostStep, exc: OSError) -> NoReturn:
        tx["state"] = "rolling-back"
        self._save()
        out = reverse(tx, self.sysfs, self._save)
        tx["state"] = "rolled-back" if out.failure is None else "rollback-failed"
        self._save()
        message = (f"step {n} ({step.description}) failed: writing {step.write.value!r} to "
                   f"{step.write.path}: {errmsg(exc)}")
        if out.failure is None:
            raise VmctlError(message, "every earlier step was undone; the host is as it was") from None
        raise VmctlError(message, f"the rollback failed: {out.failure}; not reversed: "
                         f"{_steps(out.remaining)} (transaction {tx['id']} is kept as "
                         f"rollback-failed). {self._retry_hint(out)}") from None

    def _retry_hint(self, out: Outcome) -> str:
        return (f"Fix the cause, then `vmctl host undo --sysfs-root {self.sysfs.root}` continues "
                f"from step {out.remaining[0]}")

    # -- undo -------------------------------------------------------------------------------
    def undo(self, force: bool = False) -> UndoResult | None:
        """Reverse the newest transaction with steps to reverse; None when there is none.

        Refuses (VmctlError, nothing written) when a file vmctl wrote has changed since,
        unless ``force``; raises a VmctlError naming the step, file, value and errno, and
        every step still not reversed, when the kernel refuses an undo write.
        """
        tx = next((t for t in reversed(self.transactions) if t["state"] not in FINAL), None)
        if tx is None:
            return None
        changed = drift(self.sysfs, tx)
        if changed and not force:
            raise VmctlError(
                f"undo of transaction {tx['id']} ({tx['machine']}) refused: "
                f"{'a file' if len(changed) == 1 else 'files'} vmctl wrote changed since: "
                + "; ".join(map(str, changed)),
                "someone else changed the host after `vmctl host apply`, and undo would overwrite "
                "it; nothing was changed. Find out who, then `vmctl host undo --force "
                f"--sysfs-root {self.sysfs.root}` reverses the steps anyway")
        was = tx["state"]
        earlier = sum(1 for s in tx["steps"] if s["state"] in ("reversed", "not-performed"))
        tx["state"] = "undoing"
        self._save()
        out = reverse(tx, self.sysfs, self._save)
        tx["state"] = "undone" if out.failure is None else "undo-failed"
        self._save()
        if out.failure is not None:
            done = f"reversed now: {_steps(out.reversed)}; " if out.reversed else ""
            raise VmctlError(f"undo of transaction {tx['id']} ({tx['machine']}) is incomplete: "
                             f"{out.failure}",
                             f"{done}not reversed: {_steps(out.remaining)}. {self._retry_hint(out)}")
        return UndoResult(tx, out.reversed, out.uncertain, out.not_performed, earlier, was, changed)


@contextmanager
def locked(sysfs: Sysfs, *, shared: bool = False,
           on_wait: Callable[[int | None], None] | None = None) -> Iterator[Journal]:
    """The journal of ``sysfs``'s root, under its lock for the ``with`` body.

    Exclusive unless ``shared`` (reading only).  While another process holds it,
    ``on_wait(pid)`` is called once and the call waits.  A damaged journal, or a symlink
    where the journal's folder or files belong, is a VmctlError before anything is written.
    """
    store = JournalStore(sysfs.root)
    with store.opened(shared=shared, on_wait=on_wait):
        faults.point("locked", 0)
        yield Journal(sysfs, store)


# -- one-call forms -------------------------------------------------------------------------
def journal_path(sysfs: Sysfs) -> Path:
    """The journal file of ``sysfs``'s root (its private folder is created if missing)."""
    return JournalStore(sysfs.root).ensure_dir()


def apply_steps(steps: list[HostStep], sysfs: Sysfs, machine: str) -> Result:
    """Perform ``steps`` in order, journaled; on a failed write undo what was done and raise."""
    with locked(sysfs) as j:
        return j.apply(steps, machine)


def undo_last(sysfs: Sysfs, force: bool = False) -> dict[str, Any] | None:
    """Reverse the newest transaction not yet undone on this root; None when there is none."""
    with locked(sysfs) as j:
        done = j.undo(force=force)
    return done.transaction if done else None


def history(sysfs: Sysfs) -> list[dict[str, Any]]:
    """Every transaction of this root, oldest first (the records of the journal format)."""
    with locked(sysfs, shared=True) as j:
        return j.transactions


__all__ = ["Journal", "Result", "UndoResult", "apply_steps", "history", "journal_path", "locked",
           "undo_last"]
