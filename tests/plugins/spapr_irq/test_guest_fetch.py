"""``vmctl guest fetch``: the private apt recipe, the cache, and the errors (no network here)."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from tests.guest.conftest import FakeApt
from vmctl import guest
from vmctl.errors import VmctlError
from vmctl.guest import Source, resolve_package, system_source

DEPENDS = """linux-image-powerpc64le
  Depends: linux-image-6.1.0-50-powerpc64le
"""


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("VMCTL_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    return tmp_path / "xdg" / "vmctl" / "guest" / "ppc64le"


SRC = Source("http://deb.debian.org/debian", "bookworm", "/usr/share/keyrings/debian-archive-keyring.gpg")


def test_fetch_uses_private_apt_state_only(cache: Path) -> None:
    apt = FakeApt()
    kernel = guest.fetch("ppc64le", runner=apt, source=SRC)
    assert kernel.path == cache / "vmlinux-6.1.0-50-powerpc64le" and kernel.path.read_bytes()[:4] == b"\x7fELF"
    assert (kernel.package, kernel.version, kernel.cached) == ("linux-image-6.1.0-50-powerpc64le", "6.1.176-1", False)
    assert [c[0] for c in apt.calls] == ["apt-get", "apt-cache", "apt-get", "dpkg-deb"]
    for call in apt.calls[:3]:
        opts = {call[i + 1] for i, a in enumerate(call) if a == "-o"}
        assert {"APT::Architecture=ppc64el", "APT::Architectures=ppc64el", "Dir::Etc::SourceList=/dev/null",
                "Dir::State::status=/dev/null", f"Dir::State::Lists={cache}/apt/lists",
                f"Dir::Etc::SourceParts={cache}/apt/sources", f"Dir::Cache={cache}/apt/cache"} <= opts
    assert apt.calls[1][-2:] == ["depends", "linux-image-powerpc64le"]
    assert apt.calls[2][-2:] == ["download", "linux-image-6.1.0-50-powerpc64le"]
    sources = (cache / "apt" / "sources" / "debian.sources").read_text()
    assert "Suites: bookworm\n" in sources and "Components: main\n" in sources
    assert not list(cache.glob(".fetch-*")) and not list(cache.glob("*.deb"))      # nothing left over


def test_second_fetch_comes_from_the_cache_and_refresh_downloads_again(cache: Path) -> None:
    guest.fetch(runner=FakeApt(), source=SRC)
    again = FakeApt()
    kernel = guest.fetch(runner=again, source=SRC)
    assert kernel.cached and again.calls == []
    guest.fetch(runner=again, source=SRC, refresh=True)
    assert len(again.calls) == 4


def test_a_truncated_cached_kernel_is_fetched_again(cache: Path) -> None:
    kernel = guest.fetch(runner=FakeApt(), source=SRC)
    kernel.path.write_bytes(b"x")
    assert not guest.fetch(runner=FakeApt(), source=SRC).cached


def test_apt_failure_is_a_user_error_with_a_hint(cache: Path) -> None:
    with pytest.raises(VmctlError) as info:
        guest.fetch(runner=FakeApt(fail="update"), source=SRC)
    assert "apt-get update failed" in info.value.message and "404" in info.value.message
    assert "--mirror" in info.value.hint


def test_unknown_arch() -> None:
    with pytest.raises(VmctlError, match="no guest kernel recipe for 'riscv64'"):
        guest.fetch("riscv64")


def test_mirror_and_suite_override(cache: Path) -> None:
    guest.fetch(runner=FakeApt(), source=SRC, suite="trixie", mirror="http://mirror.example/debian")
    text = (cache / "apt" / "sources" / "debian.sources").read_text()
    assert "URIs: http://mirror.example/debian\n" in text and "Suites: trixie\n" in text


def test_resolve_package() -> None:
    assert resolve_package(DEPENDS, "m") == "linux-image-6.1.0-50-powerpc64le"
    with pytest.raises(VmctlError):
        resolve_package("linux-image-powerpc64le\n", "linux-image-powerpc64le")


def test_system_source_keeps_the_main_suite_of_debian(tmp_path: Path) -> None:
    etc = tmp_path / "apt"
    (etc / "sources.list.d").mkdir(parents=True)
    (etc / "sources.list.d" / "debian.sources").write_text(
        "Types: deb\nURIs: http://deb.debian.org/debian\nSuites: bookworm bookworm-updates\nComponents: main\n"
        "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\n"
        "Types: deb\nURIs: http://deb.debian.org/debian-security\nSuites: bookworm-security\nComponents: main\n")
    (etc / "sources.list.d" / "other.sources").write_text(
        "Types: deb\nURIs: https://deb.nodesource.com/node_20.x\nSuites: nodistro\nComponents: main\n")
    assert system_source(etc) == Source("http://deb.debian.org/debian", "bookworm",
                                         "/usr/share/keyrings/debian-archive-keyring.gpg")


def test_system_source_one_line_format_and_fallback(tmp_path: Path) -> None:
    etc = tmp_path / "apt"
    etc.mkdir()
    (etc / "sources.list").write_text("deb [signed-by=/k.gpg] http://ftp.de.debian.org/debian trixie main contrib\n")
    assert system_source(etc) == Source("http://ftp.de.debian.org/debian", "trixie", "/k.gpg")
    (etc / "sources.list").unlink()
    osr = tmp_path / "os-release"
    osr.write_text('VERSION_CODENAME=trixie\n')
    assert system_source(etc, osr).suite == "trixie"


def test_cli_print_path(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from vmctl.cli import guest as guest_cli

    monkeypatch.setattr(guest, "system_source", lambda: SRC)
    monkeypatch.setattr(guest.subprocess, "run", FakeApt())
    app = typer.Typer()
    guest_cli.register(app)
    app.command("noop")(lambda: None)          # a second command keeps "guest" a sub-command
    result = CliRunner().invoke(app, ["guest", "fetch", "ppc64le", "--print-path"])
    assert result.exit_code == 0, result.output
    assert result.stdout == f"{cache / 'vmlinux-6.1.0-50-powerpc64le'}\n"
