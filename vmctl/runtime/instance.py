"""The instance folder: one per running (or crashed) machine, under the state dir.

``STATE/NAME/`` (mode 0700) holds:

=================  ===================================================================
``instance.json``  written by ``run``: name, backend, socket, paused, created, argv
``machine.json``   the resolved machine (``Machine.to_json()``), read by the simulator
                   and by ``status`` for the plugins' live probes
``proc.json``      written by the supervisor once the backend runs: both pids and their
                   start times (``/proc`` ticks, to survive pid reuse), start wall time
``pid``            the backend's pid, plain text (for ``kill $(cat pid)``)
``qmp.sock``       the QMP socket, mode 0600 (elsewhere when the path would be too long:
                   ``instance.json`` has the real path)
``log``            console and the backend's stdout/stderr
``exit.json``      written by the supervisor when the backend ends: returncode, signal
=================  ===================================================================
"""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vmctl.errors import UsageError, VmctlError

NAME_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
BACKENDS = ("sim", "qemu")


def check_name(name: str) -> str:
    """An instance name must be a machine name: ``[a-z0-9][a-z0-9-]{0,62}``."""
    if not NAME_RE.match(name):
        raise UsageError(f"invalid instance name {name!r}",
                         hint="use lower-case letters, digits and '-' (at most 63), "
                              "starting with a letter or digit")
    return name


def ensure_state_dir(state: Path) -> Path:
    """Create the state dir (0700) or explain why it cannot be used."""
    try:
        state.mkdir(mode=0o700, parents=True, exist_ok=True)
        probe = state / f".probe-{os.getpid()}"
        probe.touch()
        probe.unlink()
    except OSError as exc:
        raise VmctlError(f"state directory {state} is not usable: {exc.strerror}",
                         hint="set VMCTL_STATE_DIR to a writable directory") from exc
    return state


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Write ``path`` atomically (readers see the old file or the new one, never half).

    No fsync: instance state lives in a runtime dir and is rebuilt from the processes.
    """
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w",
              encoding="utf-8") as f:
        json.dump(data, f, indent=1)
    os.replace(tmp, path)


def read_json(path: Path) -> dict[str, Any] | None:
    """A JSON object from ``path``; None when missing or unreadable (half-written)."""
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


@dataclass
class Instance:
    """An instance folder and the paths in it."""

    state: Path
    name: str

    @property
    def dir(self) -> Path:
        return self.state / self.name

    @property
    def meta_path(self) -> Path:
        return self.dir / "instance.json"

    @property
    def machine_path(self) -> Path:
        return self.dir / "machine.json"

    @property
    def proc_path(self) -> Path:
        return self.dir / "proc.json"

    @property
    def exit_path(self) -> Path:
        return self.dir / "exit.json"

    @property
    def pid_path(self) -> Path:
        return self.dir / "pid"

    @property
    def log_path(self) -> Path:
        return self.dir / "log"

    def exists(self) -> bool:
        return self.dir.is_dir()

    def meta(self) -> dict[str, Any] | None:
        return read_json(self.meta_path)

    def proc(self) -> dict[str, Any] | None:
        return read_json(self.proc_path)

    def exit(self) -> dict[str, Any] | None:
        return read_json(self.exit_path)

    def socket(self) -> Path:
        meta = self.meta() or {}
        return Path(meta.get("socket") or self.dir / "qmp.sock")

    def create(self, meta: dict[str, Any], machine_json: dict[str, Any]) -> None:
        """Make the folder (0700) and write ``instance.json`` and ``machine.json``."""
        try:
            self.dir.mkdir(mode=0o700)
            os.chmod(self.dir, 0o700)
            write_json(self.machine_path, machine_json)
            write_json(self.meta_path, meta)
        except OSError as exc:
            raise VmctlError(f"cannot create instance folder {self.dir}: {exc.strerror}",
                             hint="set VMCTL_STATE_DIR to a writable directory") from exc

    def remove(self) -> None:
        """Delete the folder and a socket kept outside it."""
        sock = self.socket()
        if sock.parent != self.dir:
            try:
                sock.unlink()
            except FileNotFoundError:
                pass
        shutil.rmtree(self.dir, ignore_errors=True)

    def log_tail(self, lines: int = 10, max_bytes: int = 16384) -> list[str]:
        """The last ``lines`` non-empty lines of the log."""
        if lines <= 0:
            return []
        try:
            with open(self.log_path, "rb") as f:
                f.seek(0, os.SEEK_END)
                size = f.tell()
                f.seek(max(0, size - max_bytes))
                data = f.read().decode("utf-8", "replace")
        except OSError:
            return []
        return [ln.rstrip("\r") for ln in data.splitlines() if ln.strip()][-lines:]


def list_instances(state: Path) -> list[Instance]:
    """Every instance folder under ``state``, by name (hidden entries skipped)."""
    try:
        entries = sorted(os.scandir(state), key=lambda e: e.name)
    except (FileNotFoundError, NotADirectoryError):
        return []
    except OSError as exc:
        raise VmctlError(f"cannot read state directory {state}: {exc.strerror}",
                         hint="set VMCTL_STATE_DIR to a readable directory") from exc
    return [Instance(state, e.name) for e in entries
            if not e.name.startswith(".") and e.is_dir(follow_symlinks=False)]
