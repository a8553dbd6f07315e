"""``vmctl monitor`` on real QEMU 7.2 (Debian's qemu-system-ppc64): same screen, same keys.

Run in CI, never skipped: a missing QEMU fails with what to install.  The second test
boots Debian's ppc64le kernel under TCG (``x-vof=on``, ``-action panic=pause``) and
watches the interrupt controller switch at CAS, which QEMU 7.2 does without any event.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path

import pytest

from tests.tui.conftest import screen_text, state_dir, wait_for
from vmctl.runtime.instance import Instance
from vmctl.tui.feed import InstanceFeed
from vmctl.tui.monitor import MonitorApp, MonitorScreen
from vmctl.tui.snapshot import Link
from vmctl.tui.target import load_target
from vmctl.tui.widgets import EventLog, InfoHeader, VcpuTable

pytestmark = pytest.mark.qemu

SIZE = (150, 44)


@pytest.fixture(autouse=True)
def _qemu_installed() -> None:
    if shutil.which("qemu-system-ppc64") is None:
        pytest.fail("qemu-system-ppc64 is not installed: apt-get install -y "
                    "--no-install-recommends qemu-system-ppc (.ci/run installs it)")


@pytest.fixture(scope="module")
def kernel(ppc64le_kernel: Path) -> Path:
    return ppc64le_kernel


def _app(pm, name: str) -> MonitorApp:
    return MonitorApp(InstanceFeed(load_target(Instance(state_dir(), name), pm), interval=0.1))


def test_monitor_on_a_paused_pseries_qemu(start, pm):
    start("p9-dual.toml", name="q9", backend="qemu", paused=True)

    async def scenario():
        app = _app(pm, "q9")
        async with app.run_test(size=SIZE) as pilot:
            screen = app.screen
            assert isinstance(screen, MonitorScreen)
            panel = screen.panels["spapr-irq"]
            await wait_for(pilot, lambda: "XICS" in panel.query_one("#irq-mode").value,
                           what="QEMU's default controller before CAS (info pic)")
            header = str(screen.query_one(InfoHeader).render())
            assert "qemu" in header and "prelaunch" in header
            assert screen.latest.link is Link.LIVE
            table = screen.query_one(VcpuTable)
            assert table.row_count == 2
            assert all(vcpu.thread_id and vcpu.thread_id > 0 for vcpu in screen.latest.vcpus)
            assert "before CAS" in panel.query_one("#irq-cas").value     # not "the" mode yet
            assert "--paused" in header                                  # why it is stopped
            await pilot.press("p")                        # cont: VOF without a kernel stops again
            await wait_for(pilot, lambda: "RESUME" in screen_text(app), what="RESUME in the log")
            assert screen.query_one(EventLog).count >= 1
            assert screen.commands_sent == ["cont"]

    asyncio.run(scenario())


def test_monitor_sees_the_interrupt_mode_switch_at_cas_on_a_real_guest(start, pm, kernel,
                                                                        tmp_path):
    machine = tmp_path / "p9-guest.toml"
    machine.write_text(f"""
[machine]
name = "p9-guest"
arch = "ppc64"
type = "pseries"
cpu = "power9"
cpus = 2
memory = "1G"
accel = "tcg"

[boot]
kernel = "{kernel}"
firmware = "vof"
append = "console=hvc0"

[irq]
ic-mode = "dual"
""")
    start(str(machine), backend="qemu", paused=True)       # an absolute path is used as is

    async def scenario():
        app = _app(pm, "p9-guest")
        async with app.run_test(size=SIZE) as pilot:
            screen = app.screen
            panel = screen.panels["spapr-irq"]
            await wait_for(pilot, lambda: "XICS" in panel.query_one("#irq-mode").value,
                           what="XICS before the guest runs")
            await pilot.press("p")
            await wait_for(pilot, lambda: "XIVE" in panel.query_one("#irq-mode").value,
                           timeout=30, what="XIVE after the guest's CAS")
            assert panel.seen_switch is not None and panel.seen_switch[:2] == ("xics", "xive")
            assert "xics → xive" in screen_text(app)
            await wait_for(pilot, lambda: screen.latest.run_state == "guest-panicked",
                           timeout=30, what="the panic at root mount (-action panic=pause)")
            assert "GUEST_PANICKED" in screen_text(app)
            # the header says why (the kernel's own words); vCPU loads come from /proc
            assert "Unable to mount root fs" in str(screen.query_one(InfoHeader).render())
            assert all(v.load is not None and v.state in ("running", "idle")
                       for v in screen.latest.vcpus)

    asyncio.run(scenario())
