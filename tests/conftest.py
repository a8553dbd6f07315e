"""Tests never touch the developer's machine: state and runtime dirs live in tmp_path, caches
in this session's temporary folder."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MACHINES = ROOT / "machines"


def _developer_cache() -> Path:
    from vmctl.paths import cache_dir

    return cache_dir()


#: The developer's cache, as it was before any test ran: only ever read (the guest kernel
#: that ``scripts/install-test-deps`` fetched), never written.
DEVELOPER_CACHE = _developer_cache()


@pytest.fixture(scope="session")
def session_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Caches for this test session (per xdist worker): the QEMU probe, plugin facts."""
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(autouse=True)
def _isolate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, session_cache: Path) -> None:
    monkeypatch.setenv("VMCTL_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "run"))
    monkeypatch.setenv("VMCTL_CACHE_DIR", str(session_cache))
    monkeypatch.delenv("VMCTL_DISABLE_PLUGINS", raising=False)


def guest_kernel(arch: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Debian's guest kernel: the developer's cached copy (read only), else a fresh fetch
    into a temporary cache."""
    from vmctl import guest

    old = os.environ.get("VMCTL_CACHE_DIR")
    try:
        os.environ["VMCTL_CACHE_DIR"] = str(DEVELOPER_CACHE)
        hit = guest.cached(arch)
        if hit is not None:
            return hit.path
        os.environ["VMCTL_CACHE_DIR"] = str(tmp_path_factory.mktemp("guest-cache"))
        return guest.fetch(arch).path
    finally:
        if old is None:
            os.environ.pop("VMCTL_CACHE_DIR", None)
        else:
            os.environ["VMCTL_CACHE_DIR"] = old


@pytest.fixture(scope="session")
def ppc64le_kernel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Debian's ppc64le vmlinux for real-QEMU tests (:func:`guest_kernel`); a missing
    ``qemu-system-ppc64`` fails with what to install, never skips."""
    if shutil.which("qemu-system-ppc64") is None:
        pytest.fail("qemu-system-ppc64 is not installed: apt-get install -y --no-install-recommends "
                    "qemu-system-ppc (.ci/run installs it)")
    return guest_kernel("ppc64le", tmp_path_factory)


def run_vmctl(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None,
              check: bool = False, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run the real CLI in a subprocess, as a user would."""
    full_env = {**os.environ, **(env or {})}
    proc = subprocess.run([sys.executable, "-m", "vmctl", *args], capture_output=True, text=True,
                          env=full_env, cwd=cwd or ROOT, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"vmctl {' '.join(args)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
    return proc


@pytest.fixture
def vmctl():
    return run_vmctl
