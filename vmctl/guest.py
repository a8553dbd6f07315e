"""Real guest kernels from Debian's archive, for tests and users (``vmctl guest fetch``).

The recipe (DESIGN.md "Real parts"): a private apt run that never touches the system's apt
state — its own package lists, cache, and a sources file holding a copy of the machine's
Debian source limited to the main suite and component — asks for the foreign architecture
(``ppc64el``), resolves the meta package (``linux-image-powerpc64le``) to the real kernel
package with ``apt-cache depends``, downloads it with ``apt-get download`` and unpacks
``boot/vmlinux-*`` with ``dpkg-deb -x``. The kernel is cached under
``$XDG_CACHE_HOME/vmctl/guest/<arch>/`` (``$VMCTL_CACHE_DIR/guest/…`` when set) with a
``manifest.json``; later calls return the cached path without the network.

Commands run through an injectable ``runner`` so tests can check every command line.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from vmctl.errors import VmctlError
from vmctl.fsutil import atomic_write, private_dir
from vmctl.paths import cache_dir

Runner = Callable[..., subprocess.CompletedProcess[str]]
DEBIAN_KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"
DEFAULT_MIRROR = "http://deb.debian.org/debian"


@dataclass(frozen=True)
class GuestArch:
    """How to get a kernel for one guest architecture."""

    name: str            # vmctl's name: ppc64le
    debian_arch: str     # ppc64el
    meta_package: str    # linux-image-powerpc64le
    image_glob: str      # boot/vmlinux-*


GUEST_ARCHES = {"ppc64le": GuestArch("ppc64le", "ppc64el", "linux-image-powerpc64le", "boot/vmlinux-*")}


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


@dataclass(frozen=True)
class Kernel:
    """A fetched kernel: the ``vmlinux`` path and where it came from."""

    path: Path
    package: str
    version: str
    source: str
    cached: bool


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


def resolve_package(depends_output: str, meta: str) -> str:
    """The real kernel package a meta package depends on (``linux-image-6.1.0-50-powerpc64le``)."""
    for line in depends_output.splitlines():
        m = re.match(r"^\s*\|?Depends:\s*(linux-image-\S+)", line)
        if m and not m[1].startswith("<"):
            return m[1]
    raise VmctlError(f"apt-cache depends {meta} named no kernel package", "try --suite with another Debian release")


def guest_dir(arch: str) -> Path:
    return cache_dir() / "guest" / arch


def cached(arch: str = "ppc64le") -> Kernel | None:
    """The cached kernel for ``arch``, if one was fetched and is still there."""
    manifest = guest_dir(arch) / "manifest.json"
    try:
        info = json.loads(manifest.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    path = guest_dir(arch) / info["file"]
    if not path.is_file() or path.stat().st_size != info.get("size"):
        return None
    return Kernel(path, info["package"], info["version"], info["source"], True)


def fetch(arch: str = "ppc64le", *, refresh: bool = False, suite: str | None = None, mirror: str | None = None,
          runner: Runner | None = None, progress: Callable[[str], None] = lambda _msg: None,
          source: Source | None = None) -> Kernel:
    """The ``vmlinux`` of Debian's kernel for ``arch``, downloaded once and cached."""
    spec = GUEST_ARCHES.get(arch)
    if spec is None:
        raise VmctlError(f"no guest kernel recipe for {arch!r}", f"known: {', '.join(sorted(GUEST_ARCHES))}")
    base = private_dir(guest_dir(arch))
    with open(base / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)          # two fetches at once: the second waits, then hits the cache
        hit = None if refresh else cached(arch)
        if hit is not None:
            return hit
        src = source or system_source()
        src = Source(mirror or src.uri, suite or src.suite, src.signed_by)
        apt = Apt(base / "apt", spec.debian_arch, src, runner)
        apt.prepare()
        progress(f"updating package lists for {spec.debian_arch} from {src.uri} {src.suite} (main)")
        apt.run("apt-get", "update")
        package = resolve_package(apt.run("apt-cache", "depends", spec.meta_package), spec.meta_package)
        return _download_and_extract(apt, spec, package, base, src, progress, apt.runner)


def _download_and_extract(apt: Apt, spec: GuestArch, package: str, base: Path, src: Source,
                          progress: Callable[[str], None], runner: Runner) -> Kernel:
    with tempfile.TemporaryDirectory(dir=base, prefix=".fetch-") as tmp:
        work = Path(tmp)
        progress(f"downloading {package}")
        apt.run("apt-get", "download", package, cwd=work)
        debs = sorted(work.glob(f"{package}_*.deb"))
        if not debs:
            raise VmctlError(f"apt-get download {package} left no .deb", f"look in {work}")
        version = debs[0].name.split("_")[1]
        progress(f"extracting {spec.image_glob} from {debs[0].name}")
        _run_checked(runner, ["dpkg-deb", "-x", str(debs[0]), str(work / "x")])
        images = sorted((work / "x").glob(spec.image_glob))
        if not images:
            raise VmctlError(f"{debs[0].name} holds no {spec.image_glob}", "the package layout changed")
        target = base / images[0].name
        tmp_target = base / f".{images[0].name}.tmp"
        shutil.copyfile(images[0], tmp_target)
        os.replace(tmp_target, target)
    info = {"file": target.name, "size": target.stat().st_size, "package": package, "version": version,
            "source": f"{src.uri} {src.suite} main"}
    atomic_write(base / "manifest.json", json.dumps(info, indent=2) + "\n", 0o644)
    return Kernel(target, package, version, info["source"], False)


def _run_checked(runner: Runner, cmd: Sequence[str]) -> None:
    try:
        proc = runner(list(cmd), capture_output=True, text=True, timeout=600)
    except FileNotFoundError as exc:
        raise VmctlError(f"{cmd[0]} not found", "install dpkg") from exc
    if proc.returncode != 0:
        raise VmctlError(f"{' '.join(cmd[:2])} failed: {(proc.stderr or '').strip()[-300:]}")
