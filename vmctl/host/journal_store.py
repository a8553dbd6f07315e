"""Where the host journal lives, how it is locked, read and durably written.

Layout (``STATE`` is :func:`vmctl.paths.state_dir`)::

    STATE/                       created 0700 when missing
    STATE/.host/                 0700, owned by the user; never a symlink ("." keeps it out of ``vmctl ps``)
    STATE/.host/journal-H.json   the journal of one sysfs root (H: sha256 of the root), 0600
    STATE/.host/journal-H.lock   its lock file, 0600; never deleted

Every file is opened relative to a descriptor of ``.host`` with ``O_NOFOLLOW``, so a
symlink planted at ``.host``, the journal or the lock is refused, never followed or
chmod'ed.  :meth:`JournalStore.opened` holds an ``flock`` on the lock file (exclusive for
apply and undo, shared for reading) while the journal is read and rewritten; the holder
writes its pid into the lock file so a waiter can say whom it waits for.

A save writes ``.journal-H.json.PID.tmp``, fsyncs it, renames it over the journal and
fsyncs the folder: after :meth:`save` returns, the new contents survive a crash or a power
cut, and a reader sees the old file or the new one, never half of one.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import os
import stat
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from vmctl.errors import VmctlError
from vmctl.host import journal_format as fmt
from vmctl.paths import state_dir

_RDONLY = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC

#: Journals whose lock this process holds (the lock is not re-entrant).
_HELD: set[tuple[str, str]] = set()


def _symlink_error(path: Path, what: str) -> VmctlError:
    return VmctlError(f"{path} is a symlink: vmctl keeps its {what} there and never follows links "
                      "in it; nothing was changed",
                      f"remove the link (rm {path}) and run the command again; vmctl creates what it "
                      "needs itself, private to you")


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def open_private_dir(path: Path) -> int:
    """A descriptor of folder ``path`` (mode 0700, yours, not a symlink), created if missing.

    Its parent (the state dir) is created 0700 when missing; an existing one is left as it is.
    """
    try:
        if not os.path.lexists(path.parent):
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        try:
            os.mkdir(path, 0o700)
            _fsync_dir(path.parent)        # the new folder's entry survives a crash too
        except FileExistsError:
            pass
        fd = os.open(path, _RDONLY | os.O_DIRECTORY)
    except OSError as exc:
        if exc.errno == errno.ELOOP or os.path.islink(path):
            raise _symlink_error(path, "host journal") from None
        raise VmctlError(f"cannot use {path} for the host journal: {exc.strerror}",
                         "set VMCTL_STATE_DIR to a writable directory of yours") from None
    st = os.fstat(fd)
    if st.st_uid != os.geteuid():
        os.close(fd)
        raise VmctlError(f"{path} belongs to uid {st.st_uid}, not to you (uid {os.geteuid()}): "
                         "vmctl keeps its host journal there; nothing was changed",
                         "set VMCTL_STATE_DIR to a directory of yours")
    if stat.S_IMODE(st.st_mode) != 0o700:
        os.fchmod(fd, 0o700)
    return fd


class JournalStore:
    """The journal file of the sysfs root ``root``, its folder and its lock."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = str(root)
        digest = hashlib.sha256(self.root.encode()).hexdigest()[:16]
        self.dir = state_dir() / ".host"
        self.name = f"journal-{digest}.json"
        self.lock_name = f"journal-{digest}.lock"
        self._dfd: int | None = None

    @property
    def path(self) -> Path:
        return self.dir / self.name

    def ensure_dir(self) -> Path:
        """Create the private folder (as :func:`open_private_dir`); the journal's path."""
        os.close(open_private_dir(self.dir))
        return self.path

    # -- lock -------------------------------------------------------------------------------
    @contextmanager
    def opened(self, *, shared: bool = False,
               on_wait: Callable[[int | None], None] | None = None) -> Iterator[JournalStore]:
        """Hold the journal's lock (exclusive unless ``shared``) for the ``with`` body.

        Not re-entrant: taking it again in the same process is a RuntimeError (a bug), not
        a wait.  When another process holds it, ``on_wait(pid or None)`` is called once,
        then the call waits until the lock is free.  The lock goes with the process: a
        ``kill -9`` releases it.
        """
        key = (str(self.dir), self.name)
        if key in _HELD:    # a second flock from this process would wait for itself forever
            raise RuntimeError(f"the journal lock of {self.root} is already held by this process")
        self._dfd = open_private_dir(self.dir)
        _HELD.add(key)
        try:
            lfd = self._open(self.lock_name, os.O_RDWR | os.O_CREAT, "lock file")
            try:
                self._flock(lfd, shared, on_wait)
                if not shared:
                    os.ftruncate(lfd, 0)
                    os.pwrite(lfd, f"{os.getpid()}\n".encode(), 0)
                    self._remove_stale_temporaries()
                yield self
            finally:
                os.close(lfd)              # releases the flock
        finally:
            _HELD.discard(key)
            os.close(self._dfd)
            self._dfd = None

    def _open(self, name: str, flags: int, what: str) -> int:
        path = self.dir / name
        try:
            fd = os.open(name, flags | _RDONLY, 0o600, dir_fd=self._dfd_or_open())
        except FileNotFoundError:
            raise
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise _symlink_error(path, what) from None
            raise VmctlError(f"cannot open {what} {path}: {exc.strerror}; nothing was changed",
                             "check its owner and mode (vmctl makes it 0600, yours)") from None
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise VmctlError(f"{path} is not a regular file; nothing was changed",
                             f"move it aside (mv {path} {path}.bad) and run the command again")
        return fd

    def _dfd_or_open(self) -> int:
        if self._dfd is None:
            raise RuntimeError("the journal folder is not open")  # a bug: use opened()
        return self._dfd

    @staticmethod
    def _flock(fd: int, shared: bool, on_wait: Callable[[int | None], None] | None) -> None:
        mode = fcntl.LOCK_SH if shared else fcntl.LOCK_EX
        try:
            fcntl.flock(fd, mode | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            pass
        if on_wait is not None:
            text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
            on_wait(int(text) if text.isdigit() else None)
        fcntl.flock(fd, mode)

    def _remove_stale_temporaries(self) -> None:
        """Temporary files of saves that a killed vmctl never renamed (we hold the lock)."""
        prefix = f".{self.name}."
        for name in os.listdir(self._dfd_or_open()):
            if name.startswith(prefix) and name.endswith(".tmp"):
                os.unlink(name, dir_fd=self._dfd)

    # -- contents ---------------------------------------------------------------------------
    def load(self) -> dict[str, Any]:
        """The journal (version 2), empty when there is none; a damaged one is a VmctlError."""
        try:
            fd = self._open(self.name, 0, "host journal")
        except FileNotFoundError:
            return fmt.empty(self.root)
        except OSError as exc:
            raise VmctlError(f"cannot read host journal {self.path}: {exc.strerror}",
                             "nothing was changed") from None
        with os.fdopen(fd, "rb") as f:
            raw = f.read()
        try:
            return fmt.check(json.loads(raw.decode("utf-8")))
        except (UnicodeDecodeError, json.JSONDecodeError, fmt.Damaged) as exc:
            what = str(exc) if isinstance(exc, fmt.Damaged) else f"it is not JSON ({exc})"
            raise VmctlError(
                f"host journal {self.path} is damaged: {what}",
                f"nothing was changed on the host or in the journal. Look at it, then move it aside "
                f"to start a new one: mv {self.path} {self.path}.damaged (vmctl can then no longer "
                "undo the changes it recorded)") from None

    def save(self, journal: dict[str, Any]) -> None:
        """Replace the journal durably (file and folder fsync'd before returning)."""
        dfd = self._dfd_or_open()
        tmp = f".{self.name}.{os.getpid()}.tmp"
        data = (json.dumps(journal, indent=1) + "\n").encode()
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC,
                     0o600, dir_fd=dfd)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, self.name, src_dir_fd=dfd, dst_dir_fd=dfd)
        os.fsync(dfd)
