"""What the installed QEMU can do, probed once per binary and cached.

The probe starts ``BINARY -machine none -S -display none -nodefaults -qmp unix:…`` (no
guest, nothing runs) and asks over QMP for:

* ``query-version`` — the version (``7.2.22``) and package string
* ``query-machines`` — machine types and their aliases (``pseries`` → ``pseries-7.2``)
* ``query-cpu-definitions`` — CPU models and their QOM type names
* ``qom-list-types`` — device types and object types (``iommufd`` is an object type)
* ``device-list-properties`` — each device's properties (CPU models included)
* ``qom-list-properties`` — each machine type's properties (``ic-mode`` of ``pseries-*``)

Some QEMU builds crash on ``device-list-properties`` for a device whose module is not
installed (Debian's 7.2 does for ``virtio-gpu-gl-pci``).  The probe records such a device
with unknown properties, restarts QEMU, and carries on.

The result is cached in ``$XDG_CACHE_HOME/vmctl/qemu-caps-HASH.json`` keyed by the
binary's path, size and mtime, so upgrading QEMU re-probes and nothing else does.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from vmctl.errors import VmctlError

#: Bump when the cached format changes.
CACHE_FORMAT = 1

#: ``-machine`` options QEMU takes but hands to the accelerator, not the machine object.
ACCEL_MACHINE_OPTIONS = frozenset({"accel", "kernel-irqchip", "kernel_irqchip",
                                   "kvm-shadow-mem", "kvm_shadow_mem"})


@dataclass
class QemuCaps:
    """One QEMU binary's capabilities (see the module docstring)."""

    binary: str
    version: str
    package: str = ""
    machines: dict[str, str] = field(default_factory=dict)  # name or alias → concrete type
    cpus: dict[str, str] = field(default_factory=dict)  # model → QOM type ("" if unknown)
    devices: dict[str, dict[str, str] | None] = field(default_factory=dict)  # → prop: type
    machine_props: dict[str, dict[str, str]] = field(default_factory=dict)  # concrete type
    objects: list[str] = field(default_factory=list)
    accels: list[str] = field(default_factory=list)
    probe_seconds: float = 0.0
    key: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"format": CACHE_FORMAT, **asdict(self)}

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> QemuCaps:
        obj = {k: v for k, v in obj.items() if k != "format"}
        return cls(**obj)

    def machine_type(self, name: str) -> str | None:
        """The concrete type for ``name`` (an alias such as ``pseries`` resolved)."""
        return self.machines.get(name)

    def machine_properties(self, name: str) -> dict[str, str] | None:
        concrete = self.machine_type(name)
        return None if concrete is None else self.machine_props.get(concrete)

    def cpu_properties(self, model: str) -> dict[str, str] | None:
        typename = self.cpus.get(model) or ""
        return self.devices.get(typename) if typename else None


def binary_key(path: str) -> dict[str, Any]:
    """What identifies a binary for the cache: real path, size, mtime."""
    real = os.path.realpath(path)
    st = os.stat(real)
    return {"path": real, "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def cache_path(key: dict[str, Any]) -> Path:
    from vmctl.paths import cache_dir

    digest = hashlib.sha256(key["path"].encode()).hexdigest()[:16]
    return cache_dir() / f"qemu-caps-{digest}.json"


def load_cached(key: dict[str, Any]) -> QemuCaps | None:
    try:
        with open(cache_path(key), encoding="utf-8") as f:
            obj = json.load(f)
        if obj.get("format") != CACHE_FORMAT or obj.get("key") != key:
            return None
        return QemuCaps.from_json(obj)
    except (OSError, ValueError, TypeError):
        return None


def store_cached(caps: QemuCaps) -> None:
    path = cache_path(caps.key)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(caps.to_json()), encoding="utf-8")
        os.replace(tmp, path)
    except OSError:
        pass  # a cache that cannot be written only costs the next probe


def probe(binary: str, use_cache: bool = True) -> QemuCaps:
    """Capabilities of ``binary`` (a path or a name on PATH), from the cache when fresh."""
    path = shutil.which(binary) or binary
    try:
        key = binary_key(path)
    except OSError as exc:
        raise VmctlError(f"cannot probe {binary}: {exc.strerror}") from exc
    if use_cache:
        cached = load_cached(key)
        if cached is not None:
            return cached
    t0 = time.monotonic()
    caps = asyncio.run(_probe(key["path"]))
    caps.key = key
    caps.probe_seconds = round(time.monotonic() - t0, 3)
    store_cached(caps)
    return caps


def probe_for_arch(arch: str) -> QemuCaps:
    """The capabilities of the QEMU binary for ``arch`` (``qemu-system-ppc64`` …)."""
    from vmctl.qemu.argv import qemu_binary
    from vmctl.qemu.process import resolve_binary

    return probe(resolve_binary(qemu_binary(arch), arch))


# -- the probe itself ----------------------------------------------------------------------
class _Qemu:
    """A throw-away ``-machine none`` QEMU with a QMP client."""

    def __init__(self, binary: str, folder: str) -> None:
        self.binary = binary
        self.sock = os.path.join(folder, "qmp.sock")
        self.proc: subprocess.Popen[bytes] | None = None
        self.qmp: Any = None

    async def start(self) -> None:
        from qemu.qmp import QMPClient

        if os.path.exists(self.sock):
            os.unlink(self.sock)
        self.proc = subprocess.Popen(
            [self.binary, "-machine", "none", "-S", "-display", "none", "-nodefaults",
             "-qmp", f"unix:{self.sock},server=on,wait=off"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 20
        while True:
            if self.proc.poll() is not None:
                err = (self.proc.stderr.read() if self.proc.stderr else b"").decode(errors="replace")
                raise VmctlError(f"{self.binary} exited while being probed: "
                                 f"{err.strip().splitlines()[-1] if err.strip() else self.proc.returncode}")
            if os.path.exists(self.sock):
                try:
                    self.qmp = QMPClient("vmctl-caps")
                    await self.qmp.connect(self.sock)
                    return
                except Exception:  # noqa: BLE001 - not listening yet; retry until deadline
                    self.qmp = None
            if time.monotonic() > deadline:
                raise VmctlError(f"{self.binary} did not answer on QMP while being probed")
            await asyncio.sleep(0.005)

    async def stop(self) -> None:
        if self.qmp is not None:
            try:
                await self.qmp.execute("quit")
            except Exception:  # noqa: BLE001 - it may be gone already
                pass
            try:
                await self.qmp.disconnect()
            except Exception:  # noqa: BLE001
                pass
        if self.proc is not None:
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            if self.proc.stderr:
                self.proc.stderr.close()

    async def execute(self, cmd: str, args: dict[str, Any] | None = None) -> Any:
        return await self.qmp.execute(cmd, args)


async def _probe(binary: str) -> QemuCaps:
    from qemu.qmp import ExecuteError

    folder = tempfile.mkdtemp(prefix="vmctl-caps-")
    q = _Qemu(binary, folder)
    try:
        await q.start()
        ver = await q.execute("query-version")
        v = ver["qemu"]
        caps = QemuCaps(binary, f"{v['major']}.{v['minor']}.{v['micro']}", ver.get("package", ""))
        for m in await q.execute("query-machines"):
            caps.machines[m["name"]] = m["name"]
            if m.get("alias"):
                caps.machines[m["alias"]] = m["name"]
        for c in await q.execute("query-cpu-definitions"):
            caps.cpus[c["name"]] = c.get("typename", "")
        devices = [t["name"] for t in await q.execute(
            "qom-list-types", {"implements": "device", "abstract": False})]
        caps.objects = sorted(t["name"] for t in await q.execute(
            "qom-list-types", {"implements": "user-creatable", "abstract": False}))
        caps.accels = sorted(t["name"].removesuffix("-accel") for t in await q.execute(
            "qom-list-types", {"implements": "accel", "abstract": False})
            if t["name"].endswith("-accel"))
        plan = ([("device", d) for d in sorted(devices)]
                + [("machine", m) for m in sorted(set(caps.machines.values()))])
        i = 0
        while i < len(plan):
            kind, name = plan[i]
            try:
                if kind == "device":
                    props = await q.execute("device-list-properties", {"typename": name})
                    caps.devices[name] = {p["name"]: p.get("type", "") for p in props}
                else:
                    props = await q.execute("qom-list-properties",
                                            {"typename": f"{name}-machine"})
                    caps.machine_props[name] = {p["name"]: p.get("type", "") for p in props}
            except ExecuteError:
                if kind == "device":
                    caps.devices[name] = None
            except Exception:  # noqa: BLE001 - QEMU died on this type: note it, restart
                if kind == "device":
                    caps.devices[name] = None
                await q.stop()
                q = _Qemu(binary, folder)
                await q.start()
            i += 1
        return caps
    finally:
        await q.stop()
        shutil.rmtree(folder, ignore_errors=True)
