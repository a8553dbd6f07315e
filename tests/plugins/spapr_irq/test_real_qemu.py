"""Real QEMU 7.2 booting Debian's ppc64le kernel under TCG: ``vmctl status`` after CAS equals ``vmctl plan``.

Each case boots with ``x-vof=on`` (CAS after about 0.1 s) and ``-action panic=pause``: the
kernel panics at root mount about 1.6 s later and stays paused, long after it configured
its interrupt controller. The mode is read from ``info pic`` by the plugin's live probe.

The kernel comes from ``vmctl guest fetch`` (the user's cache when it already holds one,
else a download into this session's temporary cache). These tests run in CI and are never
skipped: a missing QEMU is a failure that says what to install.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from tests.conftest import run_vmctl

pytestmark = pytest.mark.qemu

CASES = {
    # name: (ic-mode, cpu, append, expected mode after CAS — as seen on QEMU 7.2)
    "dual": ("dual", "power9", "console=hvc0", "xive"),
    "dual-xive-off": ("dual", "power9", "console=hvc0 xive=off", "xics"),
    "xics": ("xics", "power9", "console=hvc0", "xics"),
    "xive": ("xive", "power9", "console=hvc0", "xive"),
    "dual-power8": ("dual", "power8", "console=hvc0", "xics"),
    "xive-xive-off": ("xive", "power9", "console=hvc0 xive=off", "xive"),   # the kernel ignores xive=off
}


@pytest.fixture(scope="module")
def kernel(ppc64le_kernel: Path) -> Path:
    return ppc64le_kernel


def machine(tmp_path: Path, name: str, kernel: Path) -> Path:
    ic_mode, cpu, append, _ = CASES[name]
    path = tmp_path / f"{name}.toml"
    path.write_text(f"""
[machine]
name = "rq-{name}"
arch = "ppc64"
type = "pseries"
cpu = "{cpu}"
cpus = 2
memory = "1G"
accel = "tcg"

[boot]
kernel = "{kernel}"
firmware = "vof"
append = "{append}"

[irq]
ic-mode = "{ic_mode}"
""")
    return path


def status(name: str) -> dict:
    return json.loads(run_vmctl("status", name, "--format", "json", check=True).stdout)


def wait_after_cas(name: str, timeout: float = 30.0) -> dict:
    """Poll until the guest has configured its controller (sources routed) and stopped at the panic."""
    deadline = time.monotonic() + timeout
    st: dict = {}
    while time.monotonic() < deadline:
        st = status(name)
        irq = st.get("plugins", {}).get("spapr-irq", {})
        if st.get("run_state") == "guest-panicked" and irq.get("routed"):
            return st
        time.sleep(0.2)
    raise AssertionError(f"{name}: no configured controller after {timeout} s: {st}")


@pytest.mark.parametrize("case", sorted(CASES))
def test_status_after_cas_equals_plan(case: str, kernel: Path, tmp_path: Path) -> None:
    path = machine(tmp_path, case, kernel)
    pred = json.loads(run_vmctl("plan", str(path), "--format", "json", check=True).stdout)["predictions"]["spapr-irq"]
    assert pred["after_cas"] == CASES[case][3], pred          # the plan agrees with what QEMU was seen doing
    name = f"rq-{case}"
    run_vmctl("run", str(path), "--backend", "qemu", check=True)
    try:
        irq = wait_after_cas(name)["plugins"]["spapr-irq"]
        assert (irq["mode"], irq["controller"]) == (pred["after_cas"], pred["controller"])
    finally:
        run_vmctl("stop", name)
