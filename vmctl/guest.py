"""Real guests from Debian's archive, for tests and users (``vmctl guest fetch``).

A guest is Debian's kernel for one architecture and a small initramfs vmctl packs around
Debian's ``busybox-static`` (:mod:`vmctl.initramfs`): enough to boot to a shell.

The recipe (DESIGN.md "Real parts"): a private apt run (:mod:`vmctl.debian`) that never touches
the system's apt state — its own package lists, cache, and a sources file holding a copy of the machine's
Debian source limited to the main suite and component — asks for the foreign architecture
(``ppc64el``), resolves the meta package (``linux-image-powerpc64le``) to the real kernel
package with ``apt-cache depends``, downloads it with ``apt-get download`` and unpacks it
with ``dpkg-deb -x``: ``boot/vmlinux-*`` is the kernel, and the network and disk drivers
Debian builds as modules are kept for the initramfs. ``busybox-static`` comes the same way.

The cache, ``$XDG_CACHE_HOME/vmctl/guest/<arch>/`` (``$VMCTL_CACHE_DIR/guest/…`` when set)::

    vmlinux-6.1.0-50-powerpc64le        the kernel (vmlinuz-… on s390x)
    modules-6.1.0-50-powerpc64le/       its modules the initramfs carries
    manifest.json                       kernel: file, size, package, version, source, release
    initramfs-6.1.0-50-powerpc64le.cpio.gz
    initrd.json                         initramfs: busybox-static version, kernel release,
                                        modules in load order, format
    kernel -> vmlinux-…                 stable names: what ``guest:ARCH`` in a machine file
    initrd -> initramfs-….cpio.gz       resolves to, known before anything is fetched

Later calls return the cached files without the network. Machine files name a guest as
``kernel = "guest:ppc64le"`` / ``initrd = "guest:ppc64le"`` (:func:`reference_path`,
:func:`check_boot`); ``vmctl run --backend qemu`` fetches what is missing
(:func:`ensure_for_machine`), validation never does.

Commands run through an injectable ``runner`` so tests can check every command line.
"""

from __future__ import annotations

import difflib
import fcntl
import json
import os
import shutil
import subprocess  # noqa: F401 - the runner behind Apt; tests patch guest.subprocess.run
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vmctl.debian import Apt, Progress, Runner, Source, resolve_package, system_source
from vmctl.errors import VmctlError
from vmctl.fsutil import atomic_write, private_dir
from vmctl.paths import cache_dir

__all__ = ["Apt", "Source", "resolve_package", "system_source", "GUEST_ARCHES", "fetch", "fetch_guest",
           "cached", "cached_initrd", "cached_guest", "reference_path", "check_boot", "ensure_for_machine"]

BUSYBOX_PACKAGE = "busybox-static"
SCHEME = "guest:"
ROLES = ("kernel", "initrd")


@dataclass(frozen=True)
class GuestArch:
    """How to get a guest for one architecture."""

    name: str            # vmctl's name: ppc64le
    debian_arch: str     # ppc64el
    meta_package: str    # linux-image-powerpc64le
    image_glob: str      # boot/vmlinux-*
    machine_arch: str = ""                 # the [machine] arch it boots on: ppc64
    console: str = ""                      # the kernel's console on vmctl's serial: hvc0
    modules: tuple[str, ...] = ()          # drivers the initramfs loads (dependencies added)


GUEST_ARCHES = {
    "ppc64le": GuestArch("ppc64le", "ppc64el", "linux-image-powerpc64le", "boot/vmlinux-*", "ppc64", "hvc0",
                         ("virtio_pci", "virtio_net", "virtio_blk", "ibmveth")),
    "s390x": GuestArch("s390x", "s390x", "linux-image-s390x", "boot/vmlinuz-*", "s390x", "ttysclp0",
                       ("virtio_net", "virtio_blk")),
}


@dataclass(frozen=True)
class Kernel:
    """A fetched kernel: the image path and where it came from.

    ``release`` (``6.1.0-50-powerpc64le``) and ``modules`` (kept for the initramfs, in load
    order) are None/empty for a kernel an older vmctl cached.
    """

    path: Path
    package: str
    version: str
    source: str
    cached: bool
    release: str | None = None
    modules: tuple[str, ...] = ()


@dataclass(frozen=True)
class Initrd:
    """A packed initramfs: Debian's busybox-static, the kernel's modules, vmctl's /init."""

    path: Path
    package: str
    version: str
    source: str
    cached: bool
    kernel_release: str
    modules: tuple[str, ...]


@dataclass(frozen=True)
class Guest:
    """A bootable guest: kernel and initramfs."""

    arch: str
    kernel: Kernel
    initrd: Initrd

    def to_json(self) -> dict[str, Any]:
        k, i = self.kernel, self.initrd
        return {"arch": self.arch, "reference": SCHEME + self.arch, "dir": str(guest_dir(self.arch)),
                "kernel": {"path": str(k.path), "stable_path": str(stable_path(self.arch, "kernel")),
                           "package": k.package, "version": k.version, "release": k.release,
                           "source": k.source, "cached": k.cached},
                "initrd": {"path": str(i.path), "stable_path": str(stable_path(self.arch, "initrd")),
                           "package": i.package, "version": i.version, "kernel_release": i.kernel_release,
                           "modules": list(i.modules), "source": i.source, "cached": i.cached}}


def spec_of(arch: str) -> GuestArch:
    spec = GUEST_ARCHES.get(arch)
    if spec is None:
        raise VmctlError(f"no guest kernel recipe for {arch!r}", f"known: {', '.join(sorted(GUEST_ARCHES))}")
    return spec


# -- the cache ------------------------------------------------------------------------------
def guest_dir(arch: str) -> Path:
    return cache_dir() / "guest" / arch


def stable_path(arch: str, role: str) -> Path:
    """``…/guest/ARCH/kernel`` or ``…/initrd``: what ``guest:ARCH`` resolves to."""
    return guest_dir(arch) / role


def _manifest(path: Path) -> dict[str, Any] | None:
    try:
        info = json.loads(path.read_text())
    except (FileNotFoundError, NotADirectoryError, json.JSONDecodeError):
        return None
    return info if isinstance(info, dict) else None


def _intact(base: Path, info: Mapping[str, Any]) -> Path | None:
    path = base / str(info.get("file", ""))
    try:
        return path if path.is_file() and path.stat().st_size == info.get("size") else None
    except OSError:
        return None


def cached(arch: str = "ppc64le") -> Kernel | None:
    """The cached kernel for ``arch``, if one was fetched and is still there."""
    base = guest_dir(arch)
    info = _manifest(base / "manifest.json")
    path = _intact(base, info) if info else None
    if info is None or path is None:
        return None
    modules, release = tuple(info.get("modules", ())), info.get("release")
    kept = base / str(info.get("modules_dir") or ".")
    if not all((kept / f"{m}.ko").is_file() for m in modules):
        release = None                      # fine to boot, but fetch_guest needs the modules again
    return Kernel(path, info["package"], info["version"], info["source"], True, release, modules)


def cached_initrd(arch: str, kernel: Kernel | None = None) -> Initrd | None:
    """The cached initramfs, if it is intact, of the current format and built for ``kernel``."""
    from vmctl.initramfs import FORMAT

    kernel = kernel or cached(arch)
    base = guest_dir(arch)
    info = _manifest(base / "initrd.json")
    if kernel is None or kernel.release is None or info is None or info.get("format") != FORMAT \
            or info.get("kernel_release") != kernel.release:
        return None
    path = _intact(base, info)
    if path is None:
        return None
    return Initrd(path, info["package"], info["version"], info["source"], True, info["kernel_release"],
                  tuple(info.get("modules", ())))


def cached_guest(arch: str) -> Guest | None:
    """Kernel and initramfs of ``arch`` when both are cached and belong together."""
    kernel = cached(arch)
    initrd = cached_initrd(arch, kernel) if kernel else None
    if kernel is None or initrd is None:
        return None
    return Guest(arch, kernel, initrd)


@contextmanager
def _locked(arch: str) -> Iterator[Path]:
    base = private_dir(guest_dir(arch))
    with open(base / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)          # two fetches at once: the second waits, then hits the cache
        yield base


def _apt(arch: str, base: Path, suite: str | None, mirror: str | None, runner: Runner | None,
         source: Source | None, progress: Progress) -> Apt:
    spec = spec_of(arch)
    src = source or system_source()
    src = Source(mirror or src.uri, suite or src.suite, src.signed_by)
    apt = Apt(base / "apt", spec.debian_arch, src, runner)
    apt.prepare()
    progress(f"updating package lists for {spec.debian_arch} from {src.uri} {src.suite} (main)")
    apt.run("apt-get", "update")
    return apt


def _link(base: Path, role: str, target: str) -> None:
    """Point the stable name ``role`` at ``target`` (relative), atomically."""
    tmp = base / f".{role}.link"
    if os.path.lexists(tmp):
        os.unlink(tmp)
    os.symlink(target, tmp)
    os.replace(tmp, base / role)


def _drop_replaced(base: Path, old: Mapping[str, Any] | None, keep: set[str]) -> None:
    """Remove files and folders an earlier fetch left that the new manifest no longer names."""
    for name in ((old or {}).get("file"), (old or {}).get("modules_dir")):
        if isinstance(name, str) and name and name not in keep and "/" not in name and not name.startswith("."):
            target = base / name
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target, ignore_errors=True)
            elif target.exists():
                target.unlink()


# -- fetching -------------------------------------------------------------------------------
def fetch(arch: str = "ppc64le", *, refresh: bool = False, suite: str | None = None, mirror: str | None = None,
          runner: Runner | None = None, progress: Progress = lambda _msg: None,
          source: Source | None = None) -> Kernel:
    """Debian's kernel for ``arch`` (and its modules for the initramfs), downloaded once and cached."""
    spec = spec_of(arch)
    with _locked(arch) as base:
        hit = None if refresh else cached(arch)
        if hit is not None:
            return hit
        apt = _apt(arch, base, suite, mirror, runner, source, progress)
        package = resolve_package(apt.run("apt-cache", "depends", spec.meta_package), spec.meta_package)
        return _download_and_extract(apt, spec, package, base, apt.source, progress, apt.runner)


def fetch_guest(arch: str = "ppc64le", *, refresh: bool = False, suite: str | None = None,
                mirror: str | None = None, runner: Runner | None = None, progress: Progress = lambda _msg: None,
                source: Source | None = None) -> Guest:
    """Kernel and initramfs for ``arch``: what is cached is kept, the rest downloaded and packed.

    A kernel an older vmctl cached (no modules kept) is downloaded again; an initramfs is
    packed again when the kernel changed or :data:`vmctl.initramfs.FORMAT` did.
    """
    spec = spec_of(arch)
    with _locked(arch) as base:
        kernel = None if refresh else cached(arch)
        if kernel is not None and kernel.release is None:
            kernel = None
        initrd = None if refresh or kernel is None else cached_initrd(arch, kernel)
        if kernel is None or initrd is None:
            apt = _apt(arch, base, suite, mirror, runner, source, progress)
            if kernel is None:
                package = resolve_package(apt.run("apt-cache", "depends", spec.meta_package), spec.meta_package)
                kernel = _download_and_extract(apt, spec, package, base, apt.source, progress, apt.runner)
            initrd = _pack_initrd(apt, spec, base, kernel, progress)
        _link(base, "kernel", kernel.path.name)
        _link(base, "initrd", initrd.path.name)
        return Guest(arch, kernel, initrd)


def _download_and_extract(apt: Apt, spec: GuestArch, package: str, base: Path, src: Source,
                          progress: Progress, runner: Runner) -> Kernel:
    old = _manifest(base / "manifest.json")
    with tempfile.TemporaryDirectory(dir=base, prefix=".fetch-") as tmp:
        work = Path(tmp)
        deb, version = apt.download(package, work, progress)
        progress(f"extracting {spec.image_glob} from {deb.name}")
        _run_checked(runner, ["dpkg-deb", "-x", str(deb), str(work / "x")])
        images = sorted((work / "x").glob(spec.image_glob))
        if not images:
            raise VmctlError(f"{deb.name} holds no {spec.image_glob}", "the package layout changed")
        release = images[0].name.split("-", 1)[1] if "-" in images[0].name else version
        modules_dir, order = _keep_modules(work / "x", spec, base, release)
        target = base / images[0].name
        tmp_target = base / f".{images[0].name}.tmp"
        shutil.copyfile(images[0], tmp_target)
        os.replace(tmp_target, target)
    info = {"file": target.name, "size": target.stat().st_size, "package": package, "version": version,
            "source": f"{src.uri} {src.suite} main", "release": release, "modules": order,
            "modules_dir": modules_dir}
    atomic_write(base / "manifest.json", json.dumps(info, indent=2) + "\n", 0o644)
    _drop_replaced(base, old, {target.name, modules_dir})
    if old and old.get("release") != release and os.path.lexists(base / "initrd"):
        os.unlink(base / "initrd")          # packed for the kernel just replaced
    _link(base, "kernel", target.name)
    return Kernel(target, package, version, info["source"], False, release, tuple(order))


def _keep_modules(root: Path, spec: GuestArch, base: Path, release: str) -> tuple[str, list[str]]:
    """Copy ``spec.modules`` and what they depend on to ``base/modules-RELEASE``; the load order."""
    from vmctl.initramfs import depends_of, load_order, modinfo

    index = {p.name[:-3].replace("-", "_"): p for p in root.glob("lib/modules/*/kernel/**/*.ko")}
    infos: dict[str, dict[str, str]] = {}

    def depends(name: str) -> list[str] | None:
        if name not in index:
            return None                    # built in (or absent): nothing to load
        if name not in infos:
            try:
                infos[name] = modinfo(index[name].read_bytes())
            except ValueError as exc:
                raise VmctlError(f"{index[name].name}: {exc}", "the kernel package layout changed") from exc
        return depends_of(infos[name])

    order = load_order(spec.modules, depends)
    name = f"modules-{release}"
    final = base / name
    staging = base / f".{name}.tmp"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(mode=0o755)
    for mod in order:
        shutil.copyfile(index[mod], staging / f"{mod}.ko")
    shutil.rmtree(final, ignore_errors=True)
    os.replace(staging, final)
    return name, order


def _pack_initrd(apt: Apt, spec: GuestArch, base: Path, kernel: Kernel, progress: Progress) -> Initrd:
    from vmctl import initramfs

    old = _manifest(base / "initrd.json")
    release = kernel.release or ""
    with tempfile.TemporaryDirectory(dir=base, prefix=".fetch-") as tmp:
        work = Path(tmp)
        deb, version = apt.download(BUSYBOX_PACKAGE, work, progress)
        _run_checked(apt.runner, ["dpkg-deb", "-x", str(deb), str(work / "x")])
        busybox = work / "x" / "bin" / "busybox"
        if not busybox.is_file():
            raise VmctlError(f"{deb.name} holds no bin/busybox", "the package layout changed")
        modules_dir = base / f"modules-{release}"
        modules = {m: (modules_dir / f"{m}.ko").read_bytes() for m in kernel.modules}
        progress(f"packing the initramfs: busybox-static {version}, {len(modules)} modules, /init")
        data = initramfs.build(busybox.read_bytes(), version, modules, kernel.modules)
    target = base / f"initramfs-{release}.cpio.gz"
    tmp_target = base / f".{target.name}.tmp"
    tmp_target.write_bytes(data)
    os.chmod(tmp_target, 0o644)
    os.replace(tmp_target, target)
    info = {"file": target.name, "size": len(data), "package": BUSYBOX_PACKAGE, "version": version,
            "source": f"{apt.source.uri} {apt.source.suite} main", "kernel_release": release,
            "modules": list(kernel.modules), "format": initramfs.FORMAT}
    atomic_write(base / "initrd.json", json.dumps(info, indent=2) + "\n", 0o644)
    _drop_replaced(base, old, {target.name})
    return Initrd(target, BUSYBOX_PACKAGE, version, info["source"], False, release, kernel.modules)


def _run_checked(runner: Runner, cmd: Sequence[str]) -> None:
    try:
        proc = runner(list(cmd), capture_output=True, text=True, timeout=600)
    except FileNotFoundError as exc:
        raise VmctlError(f"{cmd[0]} not found", "install dpkg") from exc
    if proc.returncode != 0:
        raise VmctlError(f"{' '.join(cmd[:2])} failed: {(proc.stderr or '').strip()[-300:]}")


# -- guest:ARCH in machine files --------------------------------------------------------------
def reference(value: Any) -> str | None:
    """The ARCH of a ``guest:ARCH`` value (possibly unknown), or None for a plain path."""
    return value[len(SCHEME):] if isinstance(value, str) and value.startswith(SCHEME) else None


def reference_path(value: str, key: str) -> Path | None:
    """The cache path ``value`` (``guest:ARCH``) names for ``key`` (``boot.kernel``/``boot.initrd``).

    The path is the stable name, known before anything is fetched; None for an unknown ARCH.
    """
    arch, role = reference(value), key.rpartition(".")[2]
    if arch not in GUEST_ARCHES or role not in ROLES:
        return None
    return stable_path(arch, role)


def is_ready(arch: str) -> bool:
    """Both stable names exist and point at a cached kernel and its initramfs."""
    return cached_guest(arch) is not None and all(stable_path(arch, r).is_file() for r in ROLES)


def fitting_for(machine_arch: str | None) -> list[str]:
    """``guest:NAME`` values that boot on ``machine_arch``."""
    return [SCHEME + n for n, s in GUEST_ARCHES.items() if s.machine_arch == machine_arch]


def check_boot(boot: Mapping[str, Any], machine_arch: str | None) -> list[tuple[str, str, str, str, str]]:
    """Diagnostics for ``guest:`` values in ``[boot]``: ``(key, severity, code, message, hint)``.

    An unknown ARCH or one that does not boot on ``machine.arch`` is an error; a guest not in
    the cache yet is a note (``vmctl run --backend qemu`` fetches it), once per ARCH. Nothing
    is fetched here.
    """
    out: list[tuple[str, str, str, str, str]] = []
    noted: set[str] = set()
    every = [SCHEME + n for n in GUEST_ARCHES]
    for role in ROLES:
        arch = reference(boot.get(role))
        if arch is None:
            continue
        key, value = f"boot.{role}", boot[role]
        spec = GUEST_ARCHES.get(arch)
        fitting = fitting_for(machine_arch)
        if spec is None:
            near = difflib.get_close_matches(value, fitting or every, n=1, cutoff=0.6)
            out.append((key, "error", "unknown-guest", f'{key} = "{value}" names no guest vmctl can fetch',
                        (f'did you mean "{near[0]}"? ' if near else "")
                        + f"valid: {', '.join(fitting or every)} (vmctl guest list shows them)"))
        elif machine_arch and spec.machine_arch != machine_arch:
            out.append((key, "error", "guest-arch", f'{key} = "{value}" is a guest for arch '
                        f'"{spec.machine_arch}", but machine.arch = "{machine_arch}"',
                        f"use {' or '.join(fitting)}" if fitting else
                        f"vmctl fetches no {machine_arch} guest (only {', '.join(every)}); use a kernel file"))
        elif arch not in noted and not is_ready(arch):
            noted.add(arch)
            out.append((key, "note", "guest-not-fetched",
                        f'{key} = "{value}": Debian\'s {arch} kernel and vmctl\'s busybox initramfs are not '
                        f"in the cache yet; vmctl run --backend qemu fetches them into {guest_dir(arch)}",
                        f"or fetch them now: vmctl guest fetch {arch}"))
    return out


def ensure_for_machine(machine: Any, notify: Progress) -> list[Guest]:
    """Fetch the guests ``machine``'s ``[boot]`` names as ``guest:ARCH`` that are not cached yet.

    One line goes to ``notify`` per guest fetched; cached guests are silent. Called by
    ``vmctl run`` for backends that boot the files (qemu), never by validation or plan.
    """
    arches = sorted({a for r in ROLES if (a := reference(machine.get(f"boot.{r}"))) is not None})
    out = []
    for arch in arches:
        spec = spec_of(arch)
        ready = cached_guest(arch) if is_ready(arch) else None
        if ready is None:              # a ready cache is only read: it may be shared, read-only
            notify(f"fetching guest {arch} (Debian's {spec.meta_package} and {BUSYBOX_PACKAGE}) "
                   f"into {guest_dir(arch)} (once)")
            ready = fetch_guest(arch)
        out.append(ready)
    return out
