"""vmctl.cpio: byte-exact newc headers, padding, the trailer, reproducible gzip (the kernel
accepting the archive is tested in test_real_qemu.py)."""

from __future__ import annotations

import gzip
import stat

import pytest

from vmctl import cpio


def test_header_is_byte_exact() -> None:
    m = cpio.Member("init", stat.S_IFREG | 0o755, b"abc")
    head = cpio.header(1, m, mtime=0x5F5E100)
    assert head == (b"070701" b"00000001" b"000081ED" b"00000000" b"00000000" b"00000001" b"05F5E100"
                    b"00000003" b"00000000" b"00000000" b"00000000" b"00000000" b"00000005" b"00000000"
                    b"init\0" b"\0")                  # 110 + 5 bytes of name, padded to 116
    assert len(head) % 4 == 0


@pytest.mark.parametrize("name", ["a", "ab", "abc", "abcd", "abcde"])
def test_name_and_data_padding_keep_every_header_on_a_4_byte_boundary(name: str) -> None:
    a = cpio.Archive()
    a.file(name, b"x" * len(name))
    a.file("next", b"")
    data = a.bytes()
    second = data.index(b"070701", 6)
    assert second % 4 == 0
    expect = 110 + len(name) + 1
    expect += -expect % 4
    expect += len(name) + (-len(name) % 4)
    assert second == expect


def test_archive_layout_and_trailer() -> None:
    a = cpio.Archive(mtime=7)
    a.dir("bin")
    a.file("bin/busybox", b"\x7fELF", 0o755)
    a.symlink("bin/sh", "busybox")
    a.dir("dev")
    a.chardev("dev/console", 5, 1)
    data = a.bytes()
    assert data.endswith(b"TRAILER!!!\0" + b"\0" * (-(110 + 11) % 4))
    trailer = data.rindex(b"070701")
    assert data[trailer:trailer + 110] == b"070701" + b"00000000" * 4 + b"00000001" + b"00000000" * 6 \
        + b"0000000B" + b"00000000"
    members = cpio.read(data)
    assert [m.name for m in members] == ["bin", "bin/busybox", "bin/sh", "dev", "dev/console"]
    by = {m.name: m for m in members}
    assert stat.S_ISDIR(by["bin"].mode) and by["bin"].nlink == 2
    assert by["bin/busybox"].mode == stat.S_IFREG | 0o755 and by["bin/busybox"].data == b"\x7fELF"
    assert stat.S_ISLNK(by["bin/sh"].mode) and by["bin/sh"].data == b"busybox"
    assert stat.S_ISCHR(by["dev/console"].mode) and by["dev/console"].rdev == (5, 1)
    # inode numbers count up from 1 in order; every member's mtime is the archive's
    inos = [int(data[p + 6:p + 14], 16) for p in range(0, trailer, 4) if data[p:p + 6] == b"070701"]
    assert inos == [1, 2, 3, 4, 5]
    assert all(data[p + 46:p + 54] == b"00000007" for p in range(0, trailer, 4) if data[p:p + 6] == b"070701")


def test_members_need_their_folder_first_and_unique_names() -> None:
    a = cpio.Archive()
    with pytest.raises(ValueError, match="before its folder"):
        a.file("etc/passwd", b"")
    a.dir("etc")
    a.file("/etc/passwd", b"")                 # a leading slash is dropped, as gen_init_cpio does
    assert a.names() == ["etc", "etc/passwd"]
    with pytest.raises(ValueError, match="duplicate"):
        a.file("etc/passwd", b"")
    with pytest.raises(ValueError):
        a.file("", b"")


def test_gzip_is_reproducible_and_plain() -> None:
    a = cpio.Archive()
    a.file("init", b"#!/bin/sh\n", 0o755)
    one, two = cpio.gzip_bytes(a.bytes()), cpio.gzip_bytes(a.bytes())
    assert one == two and one[:2] == b"\x1f\x8b"
    assert one[4:8] == b"\0\0\0\0"             # no timestamp
    assert one[3] & 0x08 == 0                   # no file name
    assert gzip.decompress(one) == a.bytes()


def test_read_refuses_garbage() -> None:
    with pytest.raises(ValueError, match="no newc header"):
        cpio.read(b"070707" + b"0" * 200)
