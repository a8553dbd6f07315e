"""A ``newc`` cpio writer: the format Linux unpacks as an initramfs (``-initrd``).

Each member is a 110-byte ASCII header, the name, then the data::

    070701 ino mode uid gid nlink mtime filesize devmajor devminor rdevmajor rdevminor namesize check
    (magic, then 13 fields of 8 upper-case hex digits; namesize counts the trailing NUL)

The name (NUL-terminated) is padded with NULs so the data starts on a 4-byte boundary, and
the data so the next header does too. A symbolic link's data is its target. The archive ends
with a member named ``TRAILER!!!``. Linux's ``init/initramfs.c`` and GNU ``cpio -i -H newc``
read exactly this.

Archives are reproducible: owner root, a fixed mtime (0 unless given), inode numbers in the
order members are added, and :func:`gzip_bytes` writes no name and a zero gzip timestamp, so
the same members give the same bytes.
"""

from __future__ import annotations

import gzip
import stat
from dataclasses import dataclass

MAGIC = b"070701"
TRAILER = "TRAILER!!!"


@dataclass(frozen=True)
class Member:
    """One archive member: ``mode`` holds the file type bits (``stat.S_IFREG | 0o755``)."""

    name: str
    mode: int
    data: bytes = b""
    rdev: tuple[int, int] = (0, 0)     # (major, minor) of a device node
    nlink: int = 1


def _pad(n: int) -> bytes:
    return b"\0" * (-n % 4)


def header(ino: int, member: Member, mtime: int = 0) -> bytes:
    """The 110-byte header of ``member`` followed by its padded name."""
    name = member.name.encode() + b"\0"
    fields = (ino, member.mode, 0, 0, member.nlink, mtime, len(member.data), 0, 0,
              member.rdev[0], member.rdev[1], len(name), 0)
    head = MAGIC + b"".join(b"%08X" % f for f in fields)
    return head + name + _pad(len(head) + len(name))


class Archive:
    """Members in order; :meth:`bytes` is the archive. Parents must be added before children."""

    def __init__(self, mtime: int = 0) -> None:
        self.mtime = mtime
        self.members: list[Member] = []
        self._names: set[str] = set()

    def add(self, member: Member) -> None:
        name = member.name.strip("/")
        if not name or name in self._names or "\0" in name:
            raise ValueError(f"bad or duplicate cpio member name {member.name!r}")
        parent = name.rpartition("/")[0]
        if parent and parent not in self._names:
            raise ValueError(f"cpio member {name!r} added before its folder {parent!r}")
        self._names.add(name)
        self.members.append(Member(name, member.mode, member.data, member.rdev, member.nlink))

    def dir(self, name: str, perm: int = 0o755) -> None:
        self.add(Member(name, stat.S_IFDIR | perm, nlink=2))

    def file(self, name: str, data: bytes, perm: int = 0o644) -> None:
        self.add(Member(name, stat.S_IFREG | perm, data))

    def symlink(self, name: str, target: str) -> None:
        self.add(Member(name, stat.S_IFLNK | 0o777, target.encode()))

    def chardev(self, name: str, major: int, minor: int, perm: int = 0o600) -> None:
        self.add(Member(name, stat.S_IFCHR | perm, rdev=(major, minor)))

    def names(self) -> list[str]:
        return [m.name for m in self.members]

    def bytes(self) -> bytes:
        out = bytearray()
        for ino, m in enumerate(self.members, start=1):
            out += header(ino, m, self.mtime)
            out += m.data + _pad(len(m.data))
        out += header(0, Member(TRAILER, 0, nlink=1), 0)
        return bytes(out)


def gzip_bytes(data: bytes, level: int = 9) -> bytes:
    """``data`` gzip-compressed with no file name and a zero timestamp (reproducible)."""
    return gzip.compress(data, compresslevel=level, mtime=0)


def read(data: bytes) -> list[Member]:
    """Members of a newc archive (the trailer excluded): the inverse of :meth:`Archive.bytes`."""
    out: list[Member] = []
    pos = 0
    while True:
        head = data[pos:pos + 110]
        if len(head) < 110 or head[:6] != MAGIC:
            raise ValueError(f"no newc header at offset {pos}")
        f = [int(head[6 + 8 * i:14 + 8 * i], 16) for i in range(13)]
        namesize, filesize = f[11], f[6]
        name_end = pos + 110 + namesize
        name = data[pos + 110:name_end - 1].decode()
        start = name_end + (-name_end % 4)
        body = data[start:start + filesize]
        pos = start + filesize + (-(start + filesize) % 4)
        if name == TRAILER:
            return out
        out.append(Member(name, f[1], body, (f[9], f[10]), f[4]))
