"""Reversing a journaled transaction: which files can be read back, drift, and the undo writes.

Readable attributes
    A step's files are of two kinds.  *Value* attributes (``driver_override``,
    ``apmask``) read back what was written; the journal records them before and after each
    write.  *Action* attributes (``bind``, ``unbind``, ``drivers_probe``, ``create``,
    ``remove``, ``assign_adapter``) are write-only: the kernel gives them mode 0200.  On a
    fake tree a file is an action attribute when a fake-kernel handler takes its writes
    without storing them and the file is empty (fake trees do not model modes).

Settling a write whose outcome is unknown
    A step in state ``intent`` (vmctl stopped between announcing the write and recording
    its outcome) may or may not have been written.  When the written file is a value
    attribute, reading it decides: unchanged since ``before`` means not written, and the
    step needs no reversal.  Otherwise its undo writes are made; if the kernel refuses one
    with ENODEV, EBUSY, EEXIST or ENOENT — what it answers to unbinding a device that is
    not bound, binding one that is, removing an mdev that does not exist — the step had not
    taken effect and is settled as ``not-performed``, saying so; when the kernel accepts
    them, the step counts as reversed and is reported as possibly never performed.  An undo
    write in flight when vmctl stopped (state ``undoing``) is made again under the same rule.

Drift
    The transaction's ``expect`` maps every value attribute its steps touch to what vmctl
    saw there right after its own last write; :func:`drift` lists the files that show
    something else now (files of a write whose outcome is unknown excepted).

Order
    Steps are reversed newest first and each step's undo writes in order; the first write
    the kernel refuses stops the reversal, so the reversed steps are always the newest ones
    and the journal says exactly which remain.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from vmctl.host import journal_faults as faults
from vmctl.host.journal_format import TO_REVERSE
from vmctl.host.sysfs import Sysfs

#: What the kernel answers when an undo write finds nothing to undo.
NOTHING_TO_UNDO = frozenset({errno.ENODEV, errno.EBUSY, errno.EEXIST, errno.ENOENT})


def errmsg(exc: OSError) -> str:
    """``EACCES: Permission denied``."""
    name = errno.errorcode.get(exc.errno or 0, "")
    return f"{name}: {exc.strerror or exc}" if name else str(exc)


def errname(exc: OSError) -> str:
    """``EACCES`` (or the message when the errno has no name)."""
    return errno.errorcode.get(exc.errno or 0, "") or str(exc)


def is_value_attr(sysfs: Sysfs, kpath: str) -> bool:
    """Whether ``kpath`` is a readable attribute that shows what was written to it."""
    try:
        st = os.lstat(sysfs.path(kpath))
    except (FileNotFoundError, NotADirectoryError):
        return False
    if not stat.S_ISREG(st.st_mode) or not st.st_mode & 0o444:
        return False
    if not sysfs.fake:
        return True
    h = sysfs.handler_for(kpath)
    return True if h is None else h.store or st.st_size > 0


def read_value(sysfs: Sysfs, kpath: str) -> str | None:
    """The attribute's text; None when it does not exist; ``<unreadable: ERRNO>`` on error."""
    try:
        return sysfs.read(kpath)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as exc:
        return f"<unreadable: {errmsg(exc)}>"


def step_paths(step: dict[str, Any]) -> list[str]:
    """The files a journaled step writes or will write when undone, without repeats."""
    return list(dict.fromkeys([step["write"][0], *(p for p, _ in step["undo"])]))


def refresh_expect(sysfs: Sysfs, tx: dict[str, Any], new: list[str] = ()) -> None:
    """Record what every tracked file (and the value attributes in ``new``) shows now."""
    expect = tx.setdefault("expect", {})
    for p in new:
        if p not in expect and is_value_attr(sysfs, p):
            expect[p] = None
    for p in expect:
        expect[p] = read_value(sysfs, p)


@dataclass(frozen=True)
class Drift:
    """A file changed since vmctl's last write to the host: ``wrote`` then, ``now`` now."""

    path: str
    wrote: str | None
    now: str | None

    def __str__(self) -> str:
        now = "gone" if self.now is None else repr(self.now)
        return f"{self.path}: vmctl wrote {self.wrote!r}, now it is {now}"


def _in_flight(step: dict[str, Any]) -> bool:
    return step["state"] == "intent" or step["state"] == "undoing" and not step.get("error")


def drift(sysfs: Sysfs, tx: dict[str, Any]) -> list[Drift]:
    """Tracked files whose value differs from what vmctl left (files of a write whose
    outcome is unknown are skipped: either value is expected there)."""
    unknown = {p for s in tx["steps"] if _in_flight(s) for p in step_paths(s)}
    out = []
    for path, wrote in tx.get("expect", {}).items():
        if path not in unknown and (now := read_value(sysfs, path)) != wrote:
            out.append(Drift(path, wrote, now))
    return out


@dataclass
class Failure:
    """The undo write the kernel refused."""

    step: int
    description: str
    path: str
    value: str
    error: str

    def __str__(self) -> str:
        return (f"step {self.step} ({self.description}) could not be reversed: writing "
                f"{self.value!r} to {self.path}: {self.error}")


@dataclass
class Outcome:
    """What one reversal run did (step numbers are 1-based).

    ``reversed``: steps whose undo writes were all made, newest first; ``uncertain``: those
    of them whose own write may never have happened (with a note); ``not_performed``:
    steps found never to have taken effect (with a note); ``failure`` and ``remaining``
    when the kernel refused an undo write.
    """

    reversed: list[int] = field(default_factory=list)
    not_performed: list[tuple[int, str]] = field(default_factory=list)
    uncertain: list[tuple[int, str]] = field(default_factory=list)
    failure: Failure | None = None
    remaining: list[int] = field(default_factory=list)


def remaining(tx: dict[str, Any]) -> list[int]:
    """Step numbers still to reverse, newest first."""
    return [i + 1 for i in reversed(range(len(tx["steps"]))) if tx["steps"][i]["state"] in TO_REVERSE]


def reverse(tx: dict[str, Any], sysfs: Sysfs, save: Callable[[], None]) -> Outcome:
    """Reverse every step of ``tx`` whose write may have happened, newest first.

    ``save()`` persists the journal; it is called before each undo write (write-ahead) and
    after each, so a crash anywhere leaves a record the next run continues from.
    """
    out = Outcome()
    for n in remaining(tx):
        step = tx["steps"][n - 1]
        settled = _settle_by_reading(sysfs, step)
        if settled:
            step.update(state="not-performed", note=settled)
            save()
            out.not_performed.append((n, settled))
            continue
        unknown_apply = step["state"] == "intent"
        unknown_undo = step["state"] == "undoing" and not step.get("error")
        first = step.get("undone", 0) if step["state"] == "undoing" else 0
        step.update(state="undoing", undone=first, error=None)
        save()
        faults.point("before-reverse", n)
        undo = step["undo"]
        for k in range(first, len(undo)):
            path, value = undo[k]
            try:
                sysfs.write(path, value)
            except OSError as exc:
                nothing = exc.errno in NOTHING_TO_UNDO and not is_value_attr(sysfs, path)
                note = (f"the kernel answered {errname(exc)} to echo {value} > {path}, "
                        "as it does when there is nothing to undo")
                if nothing and unknown_apply:
                    step.update(state="not-performed", undone=k, note=f"had not taken effect: {note}")
                    break
                if nothing and unknown_undo and k == first:
                    step["note"] = f"needed nothing more for undo write {k + 1}: {note}"
                else:
                    step.update(undone=k, error=f"writing {value!r} to {path}: {errmsg(exc)}")
                    refresh_expect(sysfs, tx)
                    save()
                    out.failure = Failure(n, step["description"], path, value, errmsg(exc))
                    out.remaining = remaining(tx)
                    return out
            refresh_expect(sysfs, tx, [path])
            if k + 1 < len(undo):
                step["undone"] = k + 1
                save()
        if step["state"] == "not-performed":
            refresh_expect(sysfs, tx)
            save()
            out.not_performed.append((n, step["note"]))
            continue
        faults.point("after-reverse", n)
        if unknown_apply:
            step["note"] = ("was interrupted before its outcome was recorded; its undo writes were "
                            "made and accepted (it may never have taken effect)")
            out.uncertain.append((n, step["note"]))
        step.update(state="reversed", undone=len(undo))
        save()
        out.reversed.append(n)
    return out


def _settle_by_reading(sysfs: Sysfs, step: dict[str, Any]) -> str | None:
    """For a step in ``intent`` writing a value attribute: a note when the file still shows
    its value from before the step (the write never took effect); else None."""
    path = step["write"][0]
    before = step.get("before", {})
    if step["state"] != "intent" or path not in before:
        return None
    now = read_value(sysfs, path)
    if now != before[path]:
        return None
    return f"had not taken effect: {path} still reads {now!r}, as before the step"
