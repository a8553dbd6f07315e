"""Choosing the QMP socket path within the Unix limit (107 bytes plus the NUL).

In order: ``INSTANCE_DIR/qmp.sock``; ``STATE/.s/HASH.sock``; ``/tmp/vmctl-UID/HASH.sock``
(a folder of mode 0700 that must belong to the user and be private — anything else there
is refused rather than trusted).  When none fits, a :class:`~vmctl.errors.VmctlError` says
so with a hint, instead of a crash in ``bind``.
"""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

from vmctl.errors import VmctlError

#: ``sizeof(sun_path) - 1`` on Linux.
MAX_SOCKET_PATH = 107


def fits(path: str | Path) -> bool:
    return len(os.fsencode(str(path))) <= MAX_SOCKET_PATH


def staging_path(path: str | Path) -> Path:
    """Where a server binds before renaming into ``path``: never longer than ``path``.

    ``qmp.sock`` → ``.qmp.new``; ``HASH.sock`` → ``.HASH.new``.  One name per instance is
    enough: the instance lock lets only one server bind at a time.
    """
    p = Path(path)
    return p.with_name(f".{p.stem}.new")


def is_short_socket(path: Path, state: Path, tmp: Path = Path("/tmp")) -> bool:
    """Whether ``path`` is in one of the folders :func:`choose_socket` puts sockets in."""
    return path.parent in (state / ".s", tmp / f"vmctl-{os.getuid()}")


def _private_tmp(base: Path) -> Path:
    uid = os.getuid()
    folder = base / f"vmctl-{uid}"
    try:
        folder.mkdir(mode=0o700)
    except FileExistsError:
        pass
    st = os.lstat(folder)
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != uid or st.st_mode & 0o077:
        raise VmctlError(f"{folder} exists but is not a private directory owned by uid {uid}",
                         hint="remove it, or set VMCTL_STATE_DIR to a shorter path")
    return folder


def choose_socket(instance_dir: Path, state: Path, tmp: Path = Path("/tmp"), *,
                  create: bool = True) -> Path:
    """The socket path for an instance folder (see the module docstring).

    ``create=False`` only says which path ``run`` would use (``vmctl plan``): it makes no
    folder and checks none."""
    first = instance_dir / "qmp.sock"
    if fits(first):
        return first
    digest = hashlib.sha256(os.fsencode(str(instance_dir))).hexdigest()[:16]
    second = state / ".s" / f"{digest}.sock"
    if fits(second):
        if create:
            second.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        return second
    third = tmp / f"vmctl-{os.getuid()}" / f"{digest}.sock"
    if fits(third) and not create:
        return third
    if fits(third):
        try:
            return _private_tmp(tmp) / third.name
        except OSError as exc:
            raise VmctlError(f"cannot create a short socket folder in {tmp}: {exc.strerror}",
                             hint="set VMCTL_STATE_DIR to a shorter path") from exc
    raise VmctlError(f"no QMP socket path within {MAX_SOCKET_PATH} bytes for {instance_dir}",
                     hint="set VMCTL_STATE_DIR to a shorter path, e.g. /tmp/vmctl")
