"""Fakes for vmctl.guest: ELF modules with a ``.modinfo`` section, and an apt that plays the
archive (apt-get, apt-cache, dpkg-deb) while recording every command line."""

from __future__ import annotations

import struct
import subprocess
from pathlib import Path

import pytest

from vmctl.guest import Source

SRC = Source("http://deb.debian.org/debian", "bookworm", "/usr/share/keyrings/debian-archive-keyring.gpg")


def elf_module(name: str, depends: str = "", big_endian: bool = False) -> bytes:
    """A minimal ELF64 relocatable object whose ``.modinfo`` reads like a kernel module's."""
    e = ">" if big_endian else "<"
    shstrtab = b"\0.shstrtab\0.modinfo\0"
    modinfo = b"license=GPL\0" + f"depends={depends}\0".encode() + f"name={name}\0".encode() \
        + b"vermagic=6.1.0-50 SMP mod_unload\0"
    data_off = 64
    mod_off = data_off + len(shstrtab)
    shoff = mod_off + len(modinfo)
    shoff += -shoff % 8
    ident = b"\x7fELF" + bytes([2, 2 if big_endian else 1, 1]) + b"\0" * 9
    head = ident + struct.pack(e + "HHIQQQIHHHHHH", 1, 21, 1, 0, 0, shoff, 0, 64, 0, 0, 64, 3, 1)
    body = head + shstrtab + modinfo
    body += b"\0" * (shoff - len(body))

    def sh(name_off: int, typ: int, off: int, size: int) -> bytes:
        return struct.pack(e + "IIQQQQIIQQ", name_off, typ, 0, 0, off, size, 0, 0, 1, 0)

    return body + sh(0, 0, 0, 0) + sh(1, 3, data_off, len(shstrtab)) + sh(11, 1, mod_off, len(modinfo))


#: Modules in the fake kernel package: name -> (path under kernel/, depends)
MODULES = {
    "virtio": ("drivers/virtio/virtio.ko", ""),
    "virtio_ring": ("drivers/virtio/virtio_ring.ko", ""),
    "virtio_pci": ("drivers/virtio/virtio_pci.ko", "virtio_ring,virtio"),
    "failover": ("net/core/failover.ko", ""),
    "net_failover": ("drivers/net/net_failover.ko", "failover"),
    "virtio_net": ("drivers/net/virtio_net.ko", "virtio_ring,virtio,net_failover"),
    "virtio_blk": ("drivers/block/virtio_blk.ko", "virtio_ring,virtio"),
    "ext4": ("fs/ext4/ext4.ko", "jbd2"),                  # not wanted: never copied
}
BUSYBOX = b"\x7fELF-busybox"


class FakeApt:
    """Plays apt-get, apt-cache and dpkg-deb for one Debian architecture."""

    def __init__(self, fail: str | None = None, release: str = "6.1.0-50-powerpc64le",
                 image: str = "vmlinux", version: str = "6.1.176-1") -> None:
        self.calls: list[list[str]] = []
        self.fail, self.release, self.image, self.version = fail, release, image, version

    def __call__(self, cmd, capture_output=True, text=True, cwd=None, timeout=None):
        self.calls.append(list(cmd))
        tool = cmd[0]
        if self.fail and self.fail in " ".join(cmd):
            return subprocess.CompletedProcess(cmd, 100, "", "E: Failed to fetch http://deb.debian.org/x 404")
        out = ""
        if tool == "apt-cache":
            out = f"{cmd[-1]}\n  Depends: linux-image-{self.release}\n"
        elif tool == "apt-get" and "download" in cmd:
            pkg = cmd[-1]
            version = "1%3a1.35.0-4+deb12u1+b1" if pkg == "busybox-static" else self.version
            Path(cwd, f"{pkg}_{version}_ppc64el.deb").write_bytes(b"!<arch>\n")
        elif tool == "dpkg-deb":
            root = Path(cmd[3])
            if "busybox-static_" in cmd[2]:
                (root / "bin").mkdir(parents=True)
                (root / "bin" / "busybox").write_bytes(BUSYBOX)
            else:
                boot = root / "boot"
                boot.mkdir(parents=True)
                (boot / f"{self.image}-{self.release}").write_bytes(b"\x7fELF" + b"\0" * 60)
                (boot / f"config-{self.release}").write_text("CONFIG_PPC64=y\n")
                for name, (rel, deps) in MODULES.items():
                    ko = root / "lib" / "modules" / self.release / "kernel" / rel
                    ko.parent.mkdir(parents=True, exist_ok=True)
                    ko.write_bytes(elf_module(name, deps, big_endian=self.image == "vmlinuz"))
        return subprocess.CompletedProcess(cmd, 0, out, "")

    def tools(self) -> list[str]:
        """``"apt-get update"``, ``"apt-cache depends"``, ``"dpkg-deb"``: each call's tool and verb."""
        out = []
        for call in self.calls:
            rest, i = [], 1
            while i < len(call):
                if call[i] == "-o":
                    i += 2
                    continue
                if call[i] != "-q":
                    rest.append(call[i])
                i += 1
            out.append(call[0] + (f" {rest[0]}" if call[0] != "dpkg-deb" else ""))
        return out


@pytest.fixture
def xdg_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The cache root (``$XDG_CACHE_HOME/vmctl``), empty, in tmp_path."""
    monkeypatch.delenv("VMCTL_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    return tmp_path / "xdg" / "vmctl"
