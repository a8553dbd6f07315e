"""Debian's archive through a private apt: packages for another architecture, and no change
to the system's apt state.

:class:`Apt` runs ``apt-get`` and ``apt-cache`` with their own package lists, cache and
sources under a folder of the caller's (``-o Dir::State::Lists=… -o Dir::Cache=…
-o Dir::Etc::SourceParts=… -o Dir::Etc::SourceList=/dev/null -o Dir::State::status=/dev/null``)
and the foreign architecture (``-o APT::Architecture=ppc64el``). Its sources file holds
:func:`system_source`: a copy of the machine's Debian source, limited to the main suite and
component. :mod:`vmctl.guest` uses it to fetch kernels and ``busybox-static``.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

from vmctl.errors import VmctlError
from vmctl.fsutil import atomic_write

Runner = Callable[..., subprocess.CompletedProcess[str]]
Progress = Callable[[str], None]
DEBIAN_KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"
DEFAULT_MIRROR = "http://deb.debian.org/debian"


@dataclass(frozen=True)
class Source:
    """One Debian archive: where, which suite, and the key that signs it."""

    uri: str
    suite: str
    signed_by: str | None = None

    def deb822(self) -> str:
        lines = ["Types: deb", f"URIs: {self.uri}", f"Suites: {self.suite}", "Components: main"]
        if self.signed_by:
            lines.append(f"Signed-By: {self.signed_by}")
        return "\n".join(lines) + "\n"


def _is_main_suite(suite: str) -> bool:
    return not re.search(r"-(updates|security|backports|proposed-updates)$|/updates$", suite)


def system_source(etc: Path = Path("/etc/apt"), os_release: Path = Path("/etc/os-release")) -> Source:
    """The machine's Debian source, main suite only; deb.debian.org and the release codename otherwise."""
    for path in sorted(etc.glob("sources.list.d/*.sources")):
        for stanza in path.read_text().split("\n\n"):
            fields = {k.strip().lower(): v.strip() for k, _, v in
                      (line.partition(":") for line in stanza.splitlines() if ":" in line and not line.startswith("#"))}
            if "deb" not in fields.get("types", "").split() or "enabled" in fields and fields["enabled"] == "no":
                continue
            suites = [s for s in fields.get("suites", "").split() if _is_main_suite(s)]
            uris = fields.get("uris", "").split()
            if suites and uris and "debian" in uris[0]:
                return Source(uris[0], suites[0], fields.get("signed-by") or None)
    for path in [etc / "sources.list", *sorted(etc.glob("sources.list.d/*.list"))]:
        if not path.is_file():
            continue
        for line in path.read_text().splitlines():
            m = re.match(r"^\s*deb\s+(\[[^]]*\]\s+)?(\S+)\s+(\S+)\s+(.*)$", line)
            if m and "debian" in m[2] and _is_main_suite(m[3]) and "main" in m[4].split():
                signed = re.search(r"signed-by=(\S+?)[\s\]]", m[1] or "")
                return Source(m[2], m[3], signed[1] if signed else None)
    codename = "bookworm"
    if os_release.is_file():
        m = re.search(r"^VERSION_CODENAME=\"?([a-z]+)", os_release.read_text(), re.M)
        codename = m[1] if m else codename
    return Source(DEFAULT_MIRROR, codename, DEBIAN_KEYRING if Path(DEBIAN_KEYRING).exists() else None)


class Apt:
    """apt-get/apt-cache with private state under ``root``; the system's apt is only read."""

    def __init__(self, root: Path, arch: str, source: Source, runner: Runner | None = None) -> None:
        self.root, self.arch, self.source = root, arch, source
        self.runner = runner or subprocess.run
        self.lists = root / "lists"
        self.parts = root / "sources"
        self.cache = root / "cache"

    def options(self) -> list[str]:
        opts = {"APT::Architecture": self.arch, "APT::Architectures": self.arch,
                "Dir::State::Lists": str(self.lists), "Dir::State::status": "/dev/null",
                "Dir::Etc::SourceParts": str(self.parts), "Dir::Etc::SourceList": "/dev/null",
                "Dir::Cache": str(self.cache)}
        if os.geteuid() == 0:
            opts["APT::Sandbox::User"] = "root"      # our private dirs are not the _apt user's
        return [a for k, v in opts.items() for a in ("-o", f"{k}={v}")]

    def prepare(self) -> None:
        for d in (self.lists / "partial", self.parts, self.cache / "archives" / "partial"):
            d.mkdir(parents=True, exist_ok=True)
        atomic_write(self.parts / "debian.sources", self.source.deb822(), 0o644)

    def run(self, tool: str, *args: str, cwd: Path | None = None) -> str:
        cmd = [tool, "-q", *self.options(), *args]
        try:
            proc = self.runner(cmd, capture_output=True, text=True, cwd=cwd, timeout=600)
        except FileNotFoundError as exc:
            raise VmctlError(f"{tool} not found", "vmctl guest fetch needs apt (Debian or Ubuntu)") from exc
        if proc.returncode != 0:
            tail = (proc.stderr or proc.stdout or "").strip().splitlines()[-3:]
            raise VmctlError(f"{tool} {' '.join(args[:2])} failed (exit {proc.returncode}): " + " / ".join(tail),
                             f"source: {self.source.uri} {self.source.suite}; check the network or pass --mirror")
        return proc.stdout

    def download(self, package: str, work: Path, progress: Progress) -> tuple[Path, str]:
        """``apt-get download`` into ``work``: the ``.deb`` and its version (epoch kept)."""
        progress(f"downloading {package}")
        self.run("apt-get", "download", package, cwd=work)
        debs = sorted(work.glob(f"{package}_*.deb"))
        if not debs:
            raise VmctlError(f"apt-get download {package} left no .deb", f"look in {work}")
        return debs[0], unquote(debs[0].name.split("_")[1])     # apt writes an epoch's ':' as %3a


def resolve_package(depends_output: str, meta: str) -> str:
    """The real kernel package a meta package depends on (``linux-image-6.1.0-50-powerpc64le``)."""
    for line in depends_output.splitlines():
        m = re.match(r"^\s*\|?Depends:\s*(linux-image-\S+)", line)
        if m and not m[1].startswith("<"):
            return m[1]
    raise VmctlError(f"apt-cache depends {meta} named no kernel package", "try --suite with another Debian release")
