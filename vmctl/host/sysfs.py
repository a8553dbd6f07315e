"""Sysfs access under a root prefix.

Every host read and write vmctl does goes through :class:`Sysfs`, rooted at ``/`` on a real
host and at a folder in tests (``--sysfs-root DIR``).  Paths are given as absolute kernel
paths (``/sys/bus/ap/apmask``) and are resolved *inside* the root: ``..`` cannot escape it.

Fake trees
----------
This machine has no VFIO or AP hardware, so tests build trees shaped exactly like the
kernel's.  A real sysfs attribute write has side effects (writing ``unbind`` moves a device
off its driver; writing ``create`` makes an mdev).  A tree whose root holds the marker file
``.vmctl-fake-sysfs`` gets those side effects from *fake-kernel handlers* that plugins
register with the ``vmctl_fake_kernel`` hook: a write whose path matches a handler's pattern
goes to the handler, which mutates the tree the way the kernel would, or raises
``OSError(errno, ...)`` the way the kernel would refuse.  Writes with no handler are plain
file writes.  Without the marker nothing is emulated: the tree is the real kernel's.
"""

from __future__ import annotations

import errno
import fnmatch
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

FAKE_MARKER = ".vmctl-fake-sysfs"


@dataclass(frozen=True)
class FakeKernelHandler:
    """Emulates the kernel's reaction to a write on a fake tree.

    ``pattern`` is an fnmatch pattern over the kernel path, e.g.
    ``"/sys/bus/pci/drivers/*/unbind"``.  ``write(sysfs, path, value)`` performs the side
    effects on the tree (through ``sysfs.raw_*`` methods, which never re-enter handlers)
    and raises ``OSError(errno.X, message)`` where the kernel would fail the write.
    ``store`` says whether the written value is also stored in the file (true for
    ordinary attributes such as ``driver_override``; false for write-only action
    attributes such as ``bind``, ``unbind``, ``create``, ``assign_adapter``).
    """

    pattern: str
    write: Callable[["Sysfs", str, str], None]
    store: bool = False
    plugin: str = ""


class Sysfs:
    """Reads and writes kernel paths under ``root``."""

    def __init__(self, root: str | os.PathLike[str] = "/",
                 handlers: Iterable[FakeKernelHandler] = ()) -> None:
        self.root = Path(root).resolve()
        self.fake = (self.root / FAKE_MARKER).is_file()
        self._handlers = tuple(handlers) if self.fake else ()

    # -- paths --------------------------------------------------------------------------
    def path(self, kpath: str) -> Path:
        """The host path for kernel path ``kpath``; refuses paths that leave the root."""
        pure = PurePosixPath("/", kpath)
        parts = [p for p in pure.parts[1:] if p not in ("", ".")]
        if ".." in parts:
            raise ValueError(f"path {kpath!r} may not contain '..'")
        return self.root.joinpath(*parts)

    def exists(self, kpath: str) -> bool:
        return self.path(kpath).exists() or self.path(kpath).is_symlink()

    def is_dir(self, kpath: str) -> bool:
        return self.path(kpath).is_dir()

    def listdir(self, kpath: str) -> list[str]:
        """Sorted entry names; empty when the folder does not exist."""
        try:
            return sorted(os.listdir(self.path(kpath)))
        except FileNotFoundError:
            return []

    def read(self, kpath: str, default: str | None = None) -> str:
        """The attribute's text, trailing newline removed."""
        try:
            return self.path(kpath).read_text().rstrip("\n")
        except FileNotFoundError:
            if default is not None:
                return default
            raise

    def readlink_name(self, kpath: str) -> str | None:
        """The last component of a symlink's target (``driver`` → ``vfio-pci``), or None."""
        p = self.path(kpath)
        if not p.is_symlink():
            return None
        return PurePosixPath(os.readlink(p)).name

    def handler_for(self, kpath: str) -> FakeKernelHandler | None:
        """The fake-kernel handler a write to ``kpath`` goes to (first match), or None."""
        for h in self._handlers:
            if fnmatch.fnmatchcase(kpath, h.pattern):
                return h
        return None

    # -- writes -------------------------------------------------------------------------
    def write(self, kpath: str, value: str) -> None:
        """Write an attribute as ``echo VALUE > PATH`` would.

        On a fake tree a matching handler emulates the kernel; otherwise the file is
        written (it must already exist: sysfs never creates attributes on write).
        """
        h = self.handler_for(kpath)
        if h is not None:
            h.write(self, kpath, value)
            if h.store:
                self.raw_write(kpath, value)
            return
        p = self.path(kpath)
        if not p.exists():
            raise FileNotFoundError(errno.ENOENT, "no such sysfs attribute", kpath)
        with open(p, "w") as f:
            f.write(value if value.endswith("\n") else value + "\n")

    # -- raw tree edits, for fake-kernel handlers and fixtures only ----------------------
    def raw_write(self, kpath: str, value: str) -> None:
        p = self.path(kpath)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(value if value.endswith("\n") or value == "" else value + "\n")

    def raw_mkdir(self, kpath: str) -> None:
        self.path(kpath).mkdir(parents=True, exist_ok=True)

    def raw_symlink(self, kpath: str, target: str) -> None:
        """Make ``kpath`` a symlink to kernel path ``target`` (stored relative, as sysfs does)."""
        p = self.path(kpath)
        p.parent.mkdir(parents=True, exist_ok=True)
        if p.is_symlink() or p.exists():
            p.unlink()
        rel = os.path.relpath(self.path(target), p.parent)
        p.symlink_to(rel)

    def raw_unlink(self, kpath: str) -> None:
        p = self.path(kpath)
        if p.is_symlink() or p.is_file():
            p.unlink()

    def raw_rmtree(self, kpath: str) -> None:
        import shutil

        p = self.path(kpath)
        if p.is_symlink():
            p.unlink()
        elif p.exists():
            shutil.rmtree(p)


def tree_snapshot(root: str | os.PathLike[str]) -> dict[str, str]:
    """Every entry under ``root``, for exact before/after comparisons of a (fake) tree.

    Keys are kernel-style paths (``/sys/bus/ap/apmask``); values are the file's text
    (decoded losslessly), ``-> TARGET`` for a symlink, ``<dir>`` for a folder.
    """
    base = Path(root)
    out: dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(base):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            rel = "/" + p.relative_to(base).as_posix()
            if p.is_symlink():
                out[rel] = "-> " + os.readlink(p)
            elif p.is_file():
                out[rel] = p.read_bytes().decode("utf-8", "surrogateescape")
            else:
                out[rel] = "<dir>"
    return dict(sorted(out.items()))


def mark_fake(root: str | os.PathLike[str], description: str = "") -> None:
    """Mark ``root`` as a fake sysfs tree (tests and the ``vmctl.testing`` kit do this)."""
    Path(root).mkdir(parents=True, exist_ok=True)
    (Path(root) / FAKE_MARKER).write_text(description + "\n")
