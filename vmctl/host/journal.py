"""The host change journal: apply steps in order, roll back on failure, undo later.

Each ``vmctl host apply --apply`` is one transaction in a journal file under the state
dir (one file per sysfs root, mode 0600).  The transaction is written with every step
*pending* before the first write, and each step is marked *done* right after its write,
so a crash leaves a journal that ``vmctl host undo`` can still reverse exactly.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vmctl.errors import VmctlError
from vmctl.fsutil import atomic_write, private_dir
from vmctl.host.sysfs import Sysfs
from vmctl.paths import state_dir
from vmctl.types import HostStep


def journal_path(sysfs: Sysfs) -> Path:
    digest = hashlib.sha256(str(sysfs.root).encode()).hexdigest()[:16]
    return private_dir(state_dir() / ".host") / f"journal-{digest}.json"  # "." keeps it out of vmctl ps


def _load(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return {"root": "", "transactions": []}
    except json.JSONDecodeError as exc:
        raise VmctlError(f"host journal {path} is damaged: {exc}",
                         "inspect it by hand; nothing was changed") from None


def _save(path: Path, journal: dict[str, Any]) -> None:
    atomic_write(path, json.dumps(journal, indent=1) + "\n", mode=0o600)


def _errmsg(exc: OSError) -> str:
    name = errno.errorcode.get(exc.errno or 0, "")
    return f"{name}: {exc.strerror or exc}" if name else str(exc)


@dataclass
class Result:
    applied: int
    transaction: int


def apply_steps(steps: list[HostStep], sysfs: Sysfs, machine: str) -> Result:
    """Perform ``steps`` in order, journaled; on a failed write undo what was done and raise."""
    path = journal_path(sysfs)
    journal = _load(path)
    journal["root"] = str(sysfs.root)
    tx = {"id": len(journal["transactions"]) + 1, "machine": machine, "time": time.time(), "state": "applying",
          "steps": [{"description": s.description, "plugin": s.plugin,
                     "write": [s.write.path, s.write.value],
                     "undo": [[u.path, u.value] for u in s.undo], "done": False} for s in steps]}
    journal["transactions"].append(tx)
    _save(path, journal)
    for i, step in enumerate(steps):
        try:
            sysfs.write(step.write.path, step.write.value)
        except OSError as exc:
            problems = _rollback(tx, sysfs)
            tx["state"] = "rolled-back" if not problems else "rollback-failed"
            _save(path, journal)
            hint = ("every earlier step was undone; the host is as it was"
                    if not problems else "undo failed for: " + "; ".join(problems))
            raise VmctlError(f"step {i + 1} ({step.description}) failed: writing {step.write.value!r} to "
                             f"{step.write.path}: {_errmsg(exc)}", hint) from None
        tx["steps"][i]["done"] = True
        _save(path, journal)
    tx["state"] = "applied"
    _save(path, journal)
    return Result(len(steps), tx["id"])


def _rollback(tx: dict[str, Any], sysfs: Sysfs) -> list[str]:
    problems = []
    for step in reversed(tx["steps"]):
        if not step["done"]:
            continue
        for upath, uvalue in step["undo"]:
            try:
                sysfs.write(upath, uvalue)
            except OSError as exc:
                problems.append(f"{step['description']}: {upath}: {_errmsg(exc)}")
        step["done"] = False
    return problems


def undo_last(sysfs: Sysfs) -> dict[str, Any] | None:
    """Reverse the newest applied transaction on this root; None when there is none."""
    path = journal_path(sysfs)
    journal = _load(path)
    for tx in reversed(journal["transactions"]):
        if tx["state"] in ("applied", "applying", "rollback-failed"):
            problems = _rollback(tx, sysfs)
            tx["state"] = "undone" if not problems else "undo-failed"
            _save(path, journal)
            if problems:
                raise VmctlError(f"undo of transaction {tx['id']} was incomplete", "; ".join(problems))
            return tx
    return None


def history(sysfs: Sysfs) -> list[dict[str, Any]]:
    return _load(journal_path(sysfs))["transactions"]
