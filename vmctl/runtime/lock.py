"""One ``run`` per instance name: an ``flock`` held for the instance's whole life.

The lock file is ``STATE/.locks/NAME.lock`` and is never deleted (deleting a lock file
while someone waits on it lets two holders in).  ``vmctl run`` takes it without waiting,
passes the descriptor to the supervisor and the backend, and closes its own copy: the lock
stays held until the last of them exits.  So a second ``run`` of the same name fails at
once and says which process holds the name; ``stop`` takes the lock (waiting) only to
remove a folder nobody is using any more.
"""

from __future__ import annotations

import errno
import fcntl
import os
import time
from pathlib import Path

from vmctl.errors import VmctlError


class InstanceLock:
    """The lock for instance ``name`` under ``state``."""

    def __init__(self, state: Path, name: str) -> None:
        from vmctl.runtime.instance import check_name

        self.path = state / ".locks" / f"{check_name(name)}.lock"
        self.fd: int | None = None

    def _open(self) -> int:
        try:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            return os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise VmctlError(f"cannot create lock file {self.path}: {exc.strerror}",
                             hint="set VMCTL_STATE_DIR to a writable directory") from exc

    def acquire(self, wait: float = 0.0) -> bool:
        """Try to take the lock, retrying for ``wait`` seconds; True when held."""
        fd = self._open()
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                    os.close(fd)
                    raise
                if time.monotonic() >= deadline:
                    os.close(fd)
                    return False
                time.sleep(0.01)
                continue
            self.fd = fd
            return True

    def is_held(self) -> bool:
        """Whether anybody holds the lock right now (a momentary shared probe)."""
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:
            return True
        finally:
            os.close(fd)
        return False

    def release(self) -> None:
        """Close our descriptor (children that inherited it keep the lock)."""
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
