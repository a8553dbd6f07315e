"""``vmctl guest fetch``/``list``: kernel, modules and busybox through the private apt recipe,
the initramfs packed from them, the cache and its stable names (no network here)."""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from tests.guest.conftest import BUSYBOX, SRC, FakeApt
from vmctl import cpio, guest, initramfs
from vmctl.errors import VmctlError

PRIVATE = ("APT::Architecture={a}", "APT::Architectures={a}", "Dir::Etc::SourceList=/dev/null",
           "Dir::State::status=/dev/null", "Dir::State::Lists={c}/apt/lists", "Dir::Etc::SourceParts={c}/apt/sources",
           "Dir::Cache={c}/apt/cache")


def opts(call: list[str]) -> set[str]:
    return {call[i + 1] for i, a in enumerate(call) if a == "-o"}


def test_fetch_guest_downloads_kernel_and_busybox_with_one_update(xdg_cache: Path) -> None:
    apt = FakeApt()
    g = guest.fetch_guest("ppc64le", runner=apt, source=SRC)
    base = xdg_cache / "guest" / "ppc64le"
    assert apt.tools() == ["apt-get update", "apt-cache depends", "apt-get download", "dpkg-deb",
                           "apt-get download", "dpkg-deb"]
    assert apt.calls[1][-1] == "linux-image-powerpc64le"
    assert apt.calls[2][-1] == "linux-image-6.1.0-50-powerpc64le" and apt.calls[4][-1] == "busybox-static"
    for call in (c for c in apt.calls if c[0] != "dpkg-deb"):
        assert {o.format(a="ppc64el", c=base) for o in PRIVATE} <= opts(call)
    # the kernel, its modules (wanted ones and their dependencies only), the initramfs
    assert g.kernel.path == base / "vmlinux-6.1.0-50-powerpc64le" and g.kernel.release == "6.1.0-50-powerpc64le"
    assert g.kernel.modules == ("virtio_ring", "virtio", "virtio_pci", "failover", "net_failover", "virtio_net",
                                "virtio_blk")
    assert sorted(p.name for p in (base / "modules-6.1.0-50-powerpc64le").iterdir()) == \
        sorted(f"{m}.ko" for m in g.kernel.modules)
    assert g.initrd.path == base / "initramfs-6.1.0-50-powerpc64le.cpio.gz"
    assert (g.initrd.package, g.initrd.version, g.initrd.cached) == ("busybox-static", "1:1.35.0-4+deb12u1+b1", False)
    members = {m.name: m for m in cpio.read(gzip.decompress(g.initrd.path.read_bytes()))}
    assert members["bin/busybox"].data == BUSYBOX
    assert members["lib/modules/order"].data.decode().split() == list(g.kernel.modules)
    assert b"busybox 1:1.35.0-4+deb12u1+b1 on Linux" in members["init"].data
    # stable names: what guest:ppc64le resolves to
    assert os.readlink(base / "kernel") == "vmlinux-6.1.0-50-powerpc64le"
    assert os.readlink(base / "initrd") == "initramfs-6.1.0-50-powerpc64le.cpio.gz"
    assert guest.is_ready("ppc64le")
    manifest = json.loads((base / "initrd.json").read_text())
    assert manifest["kernel_release"] == "6.1.0-50-powerpc64le" and manifest["format"] == initramfs.FORMAT
    assert manifest["source"] == "http://deb.debian.org/debian bookworm main"
    assert not list(base.glob(".fetch-*")) and not list(base.glob("*.deb")) and not list(base.glob(".*.tmp"))


def test_a_cached_guest_needs_no_command_and_refresh_fetches_all_again(xdg_cache: Path) -> None:
    guest.fetch_guest(runner=FakeApt(), source=SRC)
    again = FakeApt()
    g = guest.fetch_guest(runner=again, source=SRC)
    assert again.calls == [] and g.kernel.cached and g.initrd.cached
    guest.fetch_guest(runner=again, source=SRC, refresh=True)
    assert len(again.calls) == 6


def test_a_kernel_from_an_older_vmctl_is_fetched_again_for_its_modules(xdg_cache: Path) -> None:
    base = xdg_cache / "guest" / "ppc64le"
    base.mkdir(parents=True)
    (base / "vmlinux-6.1.0-50-powerpc64le").write_bytes(b"\x7fELF")
    (base / "manifest.json").write_text(json.dumps({"file": "vmlinux-6.1.0-50-powerpc64le", "size": 4,
                                                    "package": "linux-image-6.1.0-50-powerpc64le",
                                                    "version": "6.1.176-1", "source": "x"}))
    assert guest.cached("ppc64le") is not None            # still a kernel for guest.fetch()
    assert guest.cached_guest("ppc64le") is None and not guest.is_ready("ppc64le")
    apt = FakeApt()
    g = guest.fetch_guest(runner=apt, source=SRC)
    assert "apt-cache depends" in apt.tools() and g.kernel.modules


def test_lost_modules_fetch_the_kernel_again(xdg_cache: Path) -> None:
    g = guest.fetch_guest(runner=FakeApt(), source=SRC)
    (g.kernel.path.parent / f"modules-{g.kernel.release}" / "virtio_net.ko").unlink()
    assert not guest.is_ready("ppc64le") and guest.cached("ppc64le") is not None
    apt = FakeApt()
    guest.fetch_guest(runner=apt, source=SRC)
    assert "apt-cache depends" in apt.tools() and guest.is_ready("ppc64le")


def test_a_new_initramfs_format_repacks_without_the_kernel(xdg_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    guest.fetch_guest(runner=FakeApt(), source=SRC)
    monkeypatch.setattr(initramfs, "FORMAT", initramfs.FORMAT + 1)
    assert not guest.is_ready("ppc64le")
    apt = FakeApt()
    g = guest.fetch_guest(runner=apt, source=SRC)
    assert apt.tools() == ["apt-get update", "apt-get download", "dpkg-deb"]
    assert g.kernel.cached and not g.initrd.cached and guest.is_ready("ppc64le")


def test_a_new_kernel_release_replaces_the_old_files(xdg_cache: Path) -> None:
    base = xdg_cache / "guest" / "ppc64le"
    guest.fetch_guest(runner=FakeApt(), source=SRC)
    guest.fetch_guest(runner=FakeApt(release="6.1.0-51-powerpc64le"), source=SRC, refresh=True)
    names = sorted(p.name for p in base.iterdir() if not p.name.startswith("."))
    assert names == ["apt", "initramfs-6.1.0-51-powerpc64le.cpio.gz", "initrd", "initrd.json", "kernel",
                     "manifest.json", "modules-6.1.0-51-powerpc64le", "vmlinux-6.1.0-51-powerpc64le"]
    assert guest.is_ready("ppc64le")


def test_kernel_only_fetch_of_a_new_release_unlinks_the_stale_initrd(xdg_cache: Path) -> None:
    base = xdg_cache / "guest" / "ppc64le"
    guest.fetch_guest(runner=FakeApt(), source=SRC)
    guest.fetch(runner=FakeApt(release="6.1.0-51-powerpc64le"), source=SRC, refresh=True)
    assert not os.path.lexists(base / "initrd") and not guest.is_ready("ppc64le")
    assert os.readlink(base / "kernel") == "vmlinux-6.1.0-51-powerpc64le"


def test_s390x_uses_its_own_packages_and_image(xdg_cache: Path) -> None:
    apt = FakeApt(release="6.1.0-50-s390x", image="vmlinuz")
    g = guest.fetch_guest("s390x", runner=apt, source=SRC)
    assert apt.calls[1][-1] == "linux-image-s390x" and "APT::Architecture=s390x" in opts(apt.calls[0])
    assert g.kernel.path.name == "vmlinuz-6.1.0-50-s390x"
    assert g.kernel.modules == ("virtio_ring", "virtio", "failover", "net_failover", "virtio_net", "virtio_blk")


def test_busybox_package_without_the_binary_is_a_user_error(xdg_cache: Path) -> None:
    class NoBusybox(FakeApt):
        def __call__(self, cmd, **kw):
            if cmd[0] == "dpkg-deb" and "busybox-static_" in cmd[2]:
                Path(cmd[3]).mkdir(parents=True)
                self.calls.append(list(cmd))
                return __import__("subprocess").CompletedProcess(cmd, 0, "", "")
            return super().__call__(cmd, **kw)

    with pytest.raises(VmctlError, match="holds no bin/busybox"):
        guest.fetch_guest(runner=NoBusybox(), source=SRC)


def test_apt_failure_names_the_step_and_the_mirror(xdg_cache: Path) -> None:
    with pytest.raises(VmctlError) as info:
        guest.fetch_guest(runner=FakeApt(fail="busybox-static"), source=SRC)
    assert "apt-get download busybox-static failed (exit 100)" in info.value.message
    assert "--mirror" in info.value.hint


# -- the CLI -------------------------------------------------------------------------------
@pytest.fixture
def cli(xdg_cache: Path, monkeypatch: pytest.MonkeyPatch):
    from vmctl.cli import guest as guest_cli

    monkeypatch.setattr(guest, "system_source", lambda: SRC)
    monkeypatch.setattr(guest.subprocess, "run", FakeApt())
    app = typer.Typer()
    guest_cli.register(app)
    app.command("noop")(lambda: None)          # a second command keeps "guest" a sub-command
    return lambda *args: CliRunner().invoke(app, ["guest", *args])


def test_cli_print_paths(cli, xdg_cache: Path) -> None:
    base = xdg_cache / "guest" / "ppc64le"
    kernel, initrd = base / "vmlinux-6.1.0-50-powerpc64le", base / "initramfs-6.1.0-50-powerpc64le.cpio.gz"
    assert cli("fetch", "ppc64le", "--print-path").stdout == f"{kernel}\n"
    assert cli("fetch", "ppc64le", "--print-initrd-path").stdout == f"{initrd}\n"
    assert cli("fetch", "ppc64le", "--print-path", "--print-initrd-path").stdout == f"{kernel}\n{initrd}\n"


def test_cli_text_and_json(cli, xdg_cache: Path) -> None:
    text = cli("fetch", "ppc64le")
    assert text.exit_code == 0, text.output
    assert "updating package lists for ppc64el" in text.stderr
    assert 'kernel = "guest:ppc64le" and initrd = "guest:ppc64le", append = "console=hvc0"' in text.stdout
    data = json.loads(cli("fetch", "ppc64le", "--format", "json").stdout)
    assert data["reference"] == "guest:ppc64le" and data["kernel"]["cached"] and data["initrd"]["cached"]
    assert data["kernel"]["stable_path"] == str(xdg_cache / "guest" / "ppc64le" / "kernel")
    assert data["initrd"]["package"] == "busybox-static"


def test_cli_list(cli, xdg_cache: Path) -> None:
    before = json.loads(cli("list", "--format", "json").stdout)
    assert [(r["reference"], r["machine_arch"], r["console"], r["cached"]) for r in before] == [
        ("guest:ppc64le", "ppc64", "hvc0", False), ("guest:s390x", "s390x", "ttysclp0", False)]
    cli("fetch", "ppc64le")
    after = cli("list")
    assert "guest:ppc64le   machine.arch ppc64   console hvc0      cached: linux-image-6.1.0-50-powerpc64le" \
        in after.stdout
    assert "guest:s390x" in after.stdout and "not fetched" in after.stdout


def test_cli_help_names_every_recipe() -> None:
    from vmctl.cli.guest import ARCH_HELP

    assert all(name in ARCH_HELP for name in guest.GUEST_ARCHES)


def test_cli_unknown_arch_is_one_error_without_traceback(xdg_cache: Path) -> None:
    from tests.conftest import run_vmctl

    proc = run_vmctl("guest", "fetch", "riscv64")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert proc.stderr == "error: no guest kernel recipe for 'riscv64'\nhint: known: ppc64le, s390x\n"


def test_json_keys_are_documented(cli) -> None:
    from tests.docs.test_json_keys import documented

    data = json.loads(cli("fetch", "ppc64le", "--format", "json").stdout)
    assert set(data) | set(data["kernel"]) | set(data["initrd"]) <= documented("guest fetch")
    rows = json.loads(cli("list", "--format", "json").stdout)
    assert set().union(*rows) <= documented("guest list")
