"""The watchdog in vmctl's simulator: in-process (fast, exact) and as a running instance."""

from __future__ import annotations

import pytest

from vmctl.api import build_simulation, QMPError, STANDARD_DEVICE_EVENTS
from vmctl_i6300esb.model import expiry_seconds
from vmctl_i6300esb.sim import COMMAND, EVENT, sim_devices

#: The event as this simulator lets a device send it (QEMU's own name when allowed).
WATCHDOG = EVENT  # QEMU's own event name: the simulator lets devices send it
assert WATCHDOG in STANDARD_DEVICE_EVENTS


@pytest.fixture
def booted(machine_from_toml, x86):
    """``booted(device_keys)``: a simulation run until the guest's userspace is up."""
    def make(device: str = ""):
        machine = machine_from_toml(x86 + device)
        sim = build_simulation(machine, contributions=[("i6300esb", sim_devices(machine))])
        sim.advance(2.5)
        assert sim.vm.phase == "running"
        return sim
    return make


def state(sim):
    return sim.execute("__org.vmctl_query-device", {"plugin": "i6300esb"})


def names(sim):
    return [e for e, _ in sim.events]


def test_a_healthy_guest_pings_and_is_never_reset(booted):
    sim = booted("heartbeat = 2\n")
    sim.advance(30)
    s = state(sim)
    assert s["daemon"] == "running" and s["device"] == "open" and s["stage"] == "stage1"
    assert s["pings"] >= 29 and s["expiries"] == 0
    assert WATCHDOG not in names(sim)


def test_a_hung_guest_is_reset_after_the_timeout(booted):
    sim = booted("heartbeat = 2\n")
    last_ping = sim.execute(COMMAND, {"daemon": "hang"})["last_ping_at"]
    sim.advance(expiry_seconds(2) + 0.1)
    (event, data), = [(e, d) for e, d in sim.events if e == WATCHDOG]
    assert data == {"action": "reset"}
    assert ("RESET", {"guest": True, "reason": "guest-reset"}) in sim.events
    assert names(sim).index(WATCHDOG) < names(sim).index("RESET")  # QEMU: event, then action
    fired_at = state(sim)["fired"][0]["at"]
    assert 0 <= fired_at - last_ping - expiry_seconds(2) < 0.05  # within one simulator tick
    sim.advance(2.5)  # the guest boots again and sees why
    after = state(sim)
    assert after["card_reset"] is True and after["daemon"] == "running" and after["expiries"] == 1


@pytest.mark.parametrize("action, run_state", [("pause", "paused"), ("shutdown", "shutdown"),
                                               ("poweroff", "shutdown"), ("none", "running")])
def test_each_action_does_what_qemu_does(booted, action, run_state):
    sim = booted(f'heartbeat = 1\naction = "{action}"\n')
    sim.execute(COMMAND, {"daemon": "hang"})
    sim.advance(expiry_seconds(1) + 1.0)
    assert (WATCHDOG, {"action": action}) in sim.events
    assert sim.execute("query-status")["status"] == run_state
    if action == "none":
        assert state(sim)["stage"] == "off"  # QEMU switched the device off after firing


def test_magic_close_stops_unless_nowayout(booted):
    sim = booted("heartbeat = 1\n")
    assert sim.execute(COMMAND, {"daemon": "stop"})["stage"] == "off"
    sim.advance(5)
    assert WATCHDOG not in names(sim)
    sim = booted("heartbeat = 1\nnowayout = true\n")
    s = sim.execute(COMMAND, {"daemon": "stop"})
    assert s["stage"] == "stage1" and s["daemon"] == "stopped"
    assert "watchdog: watchdog0: watchdog did not stop!" in s["kernel_log"]
    sim.advance(expiry_seconds(1) + 0.1)
    assert WATCHDOG in names(sim)


def test_a_killed_daemon_leaves_the_watchdog_running(booted):
    sim = booted("heartbeat = 1\n")
    sim.execute(COMMAND, {"daemon": "kill"})
    sim.advance(expiry_seconds(1) + 0.1)
    assert WATCHDOG in names(sim)


def test_kernel_refusals_come_back_as_qmp_errors(booted, machine_from_toml, x86):
    sim = booted()
    for args, text in (({"timeout": 2047}, "EINVAL"), ({"timeout": "ten"}, "EINVAL"),
                       ({"daemon": "dance"}, "EINVAL"), ({}, "EINVAL")):
        with pytest.raises(QMPError) as err:
            sim.execute(COMMAND, args)
        assert err.value.error_class == "GenericError" and text in err.value.desc
    assert sim.execute(COMMAND, {"timeout": 5})["heartbeat"] == 5
    sim.execute(COMMAND, {"daemon": "stop"})
    with pytest.raises(QMPError, match="ESRCH"):
        sim.execute(COMMAND, {"daemon": "hang"})
    early = build_simulation(machine_from_toml(x86), paused=True,
                             contributions=[("i6300esb", sim_devices(machine_from_toml(x86)))])
    with pytest.raises(QMPError, match="ENODEV"):
        early.execute(COMMAND, {"daemon": "hang"})


def test_runs_replay_exactly(booted):
    def run():
        sim = booted('heartbeat = 1\nsim-hang-after = 3\n')
        sim.advance(12)
        return sim.events, state(sim)
    assert run() == run()


def test_as_a_running_instance_over_qmp(sim_instance, x86):
    vm = sim_instance(x86 + "heartbeat = 1\nsim-hang-after = 1\n")
    event = vm.qmp.wait_event(WATCHDOG, timeout=15)
    assert event["data"] == {"action": "reset"} and "timestamp" in event
    assert vm.qmp.wait_event("RESET", timeout=5)["data"]["reason"] == "guest-reset"
    live = vm.status()["plugins"]["i6300esb"]  # what `vmctl status` shows under the plugin
    assert live["expiries"] >= 1 and live["action"] == "reset"
    assert "i6300esb: initialized. heartbeat=1 sec (nowayout=0)" in vm.log()
