"""Completion against real simulator instances started in tmp_path (`vmctl run`'s way)."""

from __future__ import annotations

X86 = """[machine]
name = "tab-x86"
arch = "x86_64"
type = "q35"
cpu = "max"
accel = "tcg"
"""


def test_instance_names_and_their_state(shells, sim_instance):
    sim_instance(X86)
    sim_instance(X86, name="tab-paused", paused=True)
    assert shells.bash("vmctl", "status", "tab") == ["tab-paused", "tab-x86"]
    assert dict(shells.fish("vmctl stop tab-")) == {"tab-paused": "sim, running", "tab-x86": "sim, running"}


def test_qmp_commands_come_from_the_instance_itself(shells, sim_instance):
    sim_instance(X86)
    got = [c for c, _ in shells.fish("vmctl qmp tab-x86 query-")]
    assert {"query-status", "query-commands", "query-cpus-fast"} <= set(got)
    assert all(c.startswith("query-") for c in got)
    assert "__org.vmctl_query-device" in shells.bash("vmctl", "qmp", "tab-x86", "__org")
    assert shells.bash("vmctl", "qmp", "no-such", "query-") == []  # not running: nothing, no noise
