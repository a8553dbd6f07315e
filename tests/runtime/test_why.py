"""The reason beside a stopped run state, and the CAS state on QEMU, from plain inputs."""

from __future__ import annotations

from vmctl.runtime.why import panic_lines, why_stopped
from vmctl_spapr_irq.live import CONSOLE_LINES, cas_state

PANIC_LOG = [
    "[    1.601000] VFS: Cannot open root device \"(null)\" or unknown-block(0,0): error -6",
    "[    1.602000] Kernel panic - not syncing: VFS: Unable to mount root fs on unknown-block(0,0)",
    "[    1.603000] CPU: 0 PID: 1 Comm: swapper/0 Not tainted 6.1.0-50-powerpc64le #1",
]


def test_a_panic_is_quoted_without_the_time_stamp():
    assert panic_lines(PANIC_LOG, most=2)[0] == \
        "Kernel panic - not syncing: VFS: Unable to mount root fs on unknown-block(0,0)"
    why = why_stopped("guest-panicked", PANIC_LOG)
    assert why.endswith("VFS: Unable to mount root fs on unknown-block(0,0)")
    assert "no panic text" in why_stopped("guest-panicked", ["booting"])


def test_paused_says_firmware_exit_or_stop_depending_on_what_ran_after_it():
    fw = ['qemu-system-ppc64: Stopped as the VM requested "exit"']
    assert "firmware exited" in why_stopped("paused", fw)
    assert "stop" in why_stopped("paused", fw + ["[    0.000000] Linux version 6.1"])
    assert "stop" in why_stopped("paused", [])


def test_prelaunch_says_whether_vmctl_started_it_paused():
    assert "--paused" in why_stopped("prelaunch", [], paused_at_start=True)
    assert "reset" in why_stopped("prelaunch", [], paused_at_start=False)
    assert why_stopped("running", PANIC_LOG) == ""


def test_cas_state_on_qemu():
    kernel = ["[    0.000000] Linux version 6.1.0"]
    assert cas_state("xics", "xics", "prelaunch", kernel) == "before-cas"
    assert cas_state("xive", "xics", "running", []) == "negotiated"      # dual moved to XIVE
    assert cas_state("xics", "xics", "running", []) == "before-cas"      # firmware still running
    assert cas_state("xics", "xics", "running", kernel) == "negotiated"  # the kernel printed
    assert cas_state("xics", "xics", "running", ["$ ls"] * CONSOLE_LINES) == "negotiated"


def test_cas_state_counts_only_what_the_guest_printed_since_the_last_reset():
    boot = ["[    0.000000] Linux version 6.1.0", "vmctl-guest# "]
    mark = "vmctl: qmp: guest reset (RESET event)"
    assert cas_state("xics", "xics", "running", boot) == "negotiated"
    assert cas_state("xics", "xics", "running", boot + [mark]) == "before-cas"
    assert cas_state("xics", "xics", "running", boot + [mark] + boot[:1]) == "negotiated"
