"""Honest live state on real QEMU 7.2: whether CAS happened, and why a machine is stopped.

Before this, ``status`` showed the firmware's default XICS as *the* interrupt mode while
the guest had not negotiated anything yet, a machine whose firmware exited showed
``paused`` with no reason, and a guest panic showed ``guest-panicked`` with no panic text.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.conftest import run_vmctl

pytestmark = pytest.mark.qemu


@pytest.fixture(scope="module")
def kernel(ppc64le_kernel: Path) -> Path:
    return ppc64le_kernel


def machine(tmp_path: Path, name: str, boot: str = "") -> Path:
    path = tmp_path / f"{name}.toml"
    path.write_text(f"""
[machine]
name = "{name}"
arch = "ppc64"
type = "pseries"
cpu = "power9"
cpus = 2
memory = "1G"
accel = "tcg"

[pseries]
firmware = "vof"
{boot}
""")
    return path


def status(name: str) -> dict:
    return json.loads(run_vmctl("status", name, "--format", "json", check=True).stdout)


def wait_for(name: str, ok, timeout: float = 25.0) -> dict:
    deadline = time.monotonic() + timeout
    st: dict = {}
    while time.monotonic() < deadline:
        st = status(name)
        if ok(st):
            return st
        time.sleep(0.3)
    raise AssertionError(f"timed out; last status: {json.dumps(st, indent=1)[:2000]}")


@pytest.fixture
def started():
    names: list[str] = []

    def start(path: Path, *extra: str) -> str:
        proc = run_vmctl("run", "--backend", "qemu", *extra, str(path))
        assert proc.returncode == 0, proc.stderr
        names.append(path.stem)
        return path.stem

    yield start
    for name in names:
        run_vmctl("stop", name, "--force")


def test_paused_at_start_is_before_cas_and_says_why(tmp_path, started):
    name = started(machine(tmp_path, "hs-paused"), "--paused")
    st = status(name)
    assert st["run_state"] == "prelaunch"
    assert "--paused" in st["run_reason"]
    irq = st["plugins"]["spapr-irq"]
    assert (irq["mode"], irq["state"]) == ("xics", "before-cas")   # the firmware's default
    text = run_vmctl("status", name).stdout
    assert "why:" in text and "state: before-cas" in text


def test_a_firmware_that_exits_is_named_as_the_reason(tmp_path, started):
    name = started(machine(tmp_path, "hs-nokernel"))
    st = wait_for(name, lambda s: s.get("run_state") == "paused")
    assert "firmware exited" in st["run_reason"] and "[boot] kernel" in st["run_reason"]
    assert st["plugins"]["spapr-irq"]["state"] == "before-cas"   # no kernel ever ran


def test_a_kernel_panic_shows_its_own_words_and_cas_has_happened(tmp_path, started, kernel):
    path = machine(tmp_path, "hs-panic", f'\n[boot]\nkernel = "{kernel}"\nappend = "console=hvc0"\n')
    name = started(path)
    st = wait_for(name, lambda s: s.get("run_state") == "guest-panicked")
    assert "Kernel panic - not syncing" in st["run_reason"]
    assert "Unable to mount root fs" in st["run_reason"]
    irq = st["plugins"]["spapr-irq"]
    assert (irq["mode"], irq["state"]) == ("xive", "negotiated")
