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
``console.sock``   ``vmctl console`` attaches here, mode 0600 (:mod:`~vmctl.runtime.consolemux`)
``console-qemu.sock`` QEMU's console chardev, read by the supervisor (qemu backend)
``qemu-qmp.sock``  QEMU's own QMP monitor (qemu backend): the supervisor holds its one
                   connection, removes the path and serves ``qmp.sock``
                   (:mod:`~vmctl.runtime.qmpmux`)
``exit.json``      written by the supervisor when the backend ends: returncode, signal
``.vmctl-instance`` the marker ``create`` writes first: vmctl removes no folder without it
=================  ===================================================================

Every name that reaches this module is checked against :data:`NAME_RE` in full (an
:class:`Instance` cannot be built with another), so a NAME on the command line can never
name the state dir itself, a path outside it, or a hidden entry such as ``.locks``.
Removal never follows a symlink: the folder is opened relative to the state dir with
``O_NOFOLLOW`` and removed through directory descriptors.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vmctl.errors import UsageError, VmctlError, describe_oserror

#: The one rule for every instance NAME, matched in full (``fullmatch``: no trailing newline).
NAME_RE = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")
NAME_RULE = "[a-z0-9][a-z0-9-]{0,62}"
BACKENDS = ("sim", "qemu")
#: Written first into every instance folder; a folder without it is never removed.
MARKER = ".vmctl-instance"


def valid_name(name: object) -> bool:
    return isinstance(name, str) and NAME_RE.fullmatch(name) is not None


def check_name(name: str) -> str:
    """An instance name must be a machine name: ``[a-z0-9][a-z0-9-]{0,62}``, in full."""
    if not valid_name(name):
        from vmctl.textfmt import safe

        shown = f"'{safe(name)}'" if isinstance(name, str) else repr(name)
        raise UsageError(f"invalid instance name {shown}: a NAME must match {NAME_RULE}",
                         hint="use lower-case letters, digits and '-' (at most 63), starting "
                              "with a letter or digit; vmctl ps lists the instances")
    return name


def ensure_state_dir(state: Path) -> Path:
    """Create the state dir (0700) or explain why it cannot be used."""
    probe = state / f".probe-{os.getpid()}"
    try:
        state.mkdir(mode=0o700, parents=True, exist_ok=True)
        # a few bytes, not an empty file: a full file system still has inodes to spare
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        try:
            os.write(fd, b"vmctl state probe\n" * 64)
        finally:
            os.close(fd)
            os.unlink(probe)
    except OSError as exc:
        raise state_error(exc, f"state directory {state} is not usable") from exc
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

    def __post_init__(self) -> None:
        check_name(self.name)

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
        """A real folder (not a symlink to one) called ``name`` in the state dir."""
        try:
            return stat.S_ISDIR(os.lstat(self.dir).st_mode)
        except OSError:
            return False

    def owned(self) -> bool:
        """Whether the folder is one vmctl created (it holds the marker, a regular file)."""
        try:
            st = os.lstat(self.dir / MARKER)
        except OSError:
            return False
        return self.exists() and stat.S_ISREG(st.st_mode)

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
        except OSError as exc:
            raise state_error(exc, f"cannot create instance folder {self.dir}") from exc
        try:
            os.chmod(self.dir, 0o700)
            fd = os.open(self.dir / MARKER, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW,
                         0o600)
            os.close(fd)
            write_json(self.machine_path, machine_json)
            write_json(self.meta_path, meta)
        except OSError as exc:
            self.remove()
            raise state_error(exc, f"cannot create instance folder {self.dir}") from exc

    def remove(self) -> bool:
        """Delete the folder (only when vmctl made it) and a socket kept outside it.

        Nothing is followed: the folder is opened with ``O_NOFOLLOW`` relative to the
        state dir, must hold :data:`MARKER`, and is removed through directory descriptors
        (``shutil.rmtree(dir_fd=…)``, which never follows a link inside it).  Returns
        whether the folder was removed.
        """
        try:
            state_fd = os.open(self.state, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError:
            return False
        try:
            try:
                fd = os.open(self.name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC,
                             dir_fd=state_fd)
            except OSError:
                return False
            try:
                marked = stat.S_ISREG(os.stat(MARKER, dir_fd=fd, follow_symlinks=False).st_mode)
            except OSError:
                marked = False
            finally:
                os.close(fd)
            if not marked:
                return False
            self._remove_outside_socket()
            shutil.rmtree(self.name, dir_fd=state_fd, ignore_errors=True)
            return True
        finally:
            os.close(state_fd)

    #: The sockets of one instance kept in the short-path folder: QMP (public), QEMU's own
    #: monitor, QEMU's console and the console clients' (same stem, these suffixes).
    OUTSIDE_SUFFIXES = (".sock", ".qmon", ".qcon", ".cons")

    def _remove_outside_socket(self) -> None:
        """Sockets kept elsewhere (see :mod:`vmctl.runtime.sockpath`): only sockets, only there."""
        from vmctl.runtime.sockpath import is_short_socket

        sock = self.socket()
        if sock.parent == self.dir or not is_short_socket(sock, self.state):
            return
        for path in {sock, *(sock.with_suffix(s) for s in self.OUTSIDE_SUFFIXES)}:
            try:
                if stat.S_ISSOCK(os.lstat(path).st_mode):
                    path.unlink()
            except OSError:
                pass

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
            if valid_name(e.name) and e.is_dir(follow_symlinks=False)]


def find_instance(state: Path, name: str,
                  describe: Callable[[Instance], str] = lambda i: i.name) -> Instance:
    """The instance ``name`` (a folder vmctl made); a VmctlError otherwise.

    The error for an unknown name lists the instances there are, each shown by
    ``describe``; a folder without vmctl's marker is refused, never used.
    """
    inst = Instance(state, name)
    if inst.exists():
        if not inst.owned():
            raise VmctlError(f"{inst.dir} was not created by vmctl (it has no {MARKER} marker)",
                             hint="vmctl leaves folders it did not make alone; remove it by hand "
                                  "if it is yours")
        return inst
    known = [describe(i) for i in list_instances(state)]
    hint = (f"instances: {', '.join(known)}" if known
            else "no instance is running; start one with: vmctl run PATH")
    raise VmctlError(f"no instance named {name!r}", hint=hint)


def state_error(exc: OSError, what: str) -> VmctlError:
    """``what`` failed on the state dir's file system: say why (ENOSPC, EROFS, EACCES …)."""
    import errno

    cause = describe_oserror(exc)
    hints = {errno.ENOSPC: "free space on that file system, or set VMCTL_STATE_DIR elsewhere",
             errno.EDQUOT: "the disk quota is exhausted; free space or set VMCTL_STATE_DIR elsewhere",
             errno.EROFS: "that file system is mounted read-only; set VMCTL_STATE_DIR to a "
                          "writable directory",
             errno.EACCES: "set VMCTL_STATE_DIR to a directory you may write",
             errno.EPERM: "set VMCTL_STATE_DIR to a directory you may write"}
    return VmctlError(f"{what}: {cause}",
                      hint=hints.get(exc.errno or 0, "set VMCTL_STATE_DIR to a writable directory"))
