"""vmctl.initramfs: .modinfo from ELF modules, dependency order, and the archive's contents."""

from __future__ import annotations

import gzip
import stat

import pytest

from tests.guest.conftest import BUSYBOX, MODULES, elf_module
from vmctl import cpio, initramfs


@pytest.mark.parametrize("big_endian", [False, True], ids=["ppc64el", "s390x"])
def test_modinfo_reads_the_section_in_either_byte_order(big_endian: bool) -> None:
    info = initramfs.modinfo(elf_module("virtio_net", "virtio_ring,virtio,net_failover", big_endian))
    assert info["name"] == "virtio_net" and info["license"] == "GPL"
    assert initramfs.depends_of(info) == ["virtio_ring", "virtio", "net_failover"]
    assert initramfs.depends_of(initramfs.modinfo(elf_module("virtio", ""))) == []


def test_modinfo_refuses_what_is_no_module() -> None:
    with pytest.raises(ValueError, match="ELF64"):
        initramfs.modinfo(b"#!/bin/sh\n")
    plain = bytearray(elf_module("x"))
    plain[plain.index(b".modinfo")] = ord("_")
    with pytest.raises(ValueError, match="no .modinfo"):
        initramfs.modinfo(bytes(plain))


def deps(name: str) -> list[str] | None:
    return [d for d in MODULES[name][1].split(",") if d] if name in MODULES else None


def test_load_order_puts_dependencies_first_and_skips_built_ins() -> None:
    order = initramfs.load_order(["virtio_pci", "virtio_net", "virtio_blk", "ibmveth"], deps)
    assert order == ["virtio_ring", "virtio", "virtio_pci", "failover", "net_failover", "virtio_net", "virtio_blk"]
    for i, name in enumerate(order):
        assert set(deps(name) or ()) <= set(order[:i])
    # jbd2 is not a module file here (built in): ext4 loads without it
    assert initramfs.load_order(["ext4"], deps) == ["ext4"]


def test_load_order_reports_a_cycle() -> None:
    table = {"a": ["b"], "b": ["a"]}
    with pytest.raises(ValueError, match="cycle"):
        initramfs.load_order(["a"], table.get)


def members(data: bytes) -> dict[str, cpio.Member]:
    return {m.name: m for m in cpio.read(gzip.decompress(data))}


def test_build_packs_busybox_init_modules_and_console() -> None:
    mods = {"virtio": b"V", "virtio_net": b"N", "unused": b"U"}
    data = initramfs.build(BUSYBOX, "1:1.35.0-4", mods, ["virtio", "virtio_net", "missing"])
    m = members(data)
    assert m["bin/busybox"].data == BUSYBOX and m["bin/busybox"].mode == stat.S_IFREG | 0o755
    assert stat.S_ISLNK(m["bin/sh"].mode) and m["bin/sh"].data == b"busybox"
    assert stat.S_ISCHR(m["dev/console"].mode) and m["dev/console"].rdev == (5, 1)
    assert m["tmp"].mode == stat.S_IFDIR | 0o1777
    for d in ("proc", "sys", "dev", "root", "run", "sbin", "usr/bin", "usr/sbin", "lib/modules"):
        assert stat.S_ISDIR(m[d].mode), d
    assert m["lib/modules/order"].data == b"virtio\nvirtio_net\n"
    assert m["lib/modules/virtio_net.ko"].data == b"N" and "lib/modules/unused.ko" not in m
    init = m["init"].data.decode()
    assert m["init"].mode == stat.S_IFREG | 0o755 and init.startswith("#!/bin/sh\n")
    assert "busybox 1:1.35.0-4 on Linux" in init
    assert "mount -t devtmpfs devtmpfs /dev" in init and "mount -t proc proc /proc" in init
    assert "udhcpc -i eth0 -s /etc/udhcpc.script" in init
    assert init.index(initramfs.INTERRUPTS_BEGIN) < init.index("cat /proc/interrupts") \
        < init.index(initramfs.INTERRUPTS_END) < init.index("setsid cttyhack sh")
    assert f"PS1='{initramfs.PROMPT}'" in init
    assert "@" not in init                               # every placeholder filled in
    assert m["etc/udhcpc.script"].mode == stat.S_IFREG | 0o755


def test_build_is_reproducible() -> None:
    one = initramfs.build(BUSYBOX, "1.35", {"a": b"A"}, ["a"])
    assert one == initramfs.build(BUSYBOX, "1.35", {"a": b"A"}, ["a"])
    assert one != initramfs.build(BUSYBOX, "1.36", {"a": b"A"}, ["a"])
