"""The machine lifecycle as a user of QMP sees it: run states, boot phases, events."""

from __future__ import annotations

import errno

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vmctl.model import ModelError
from vmctl.sim.lifecycle import NEEDS_RESET, RunState
from vmctl.sim.qmp import QMPError

from .conftest import make_machine, names, simulate


def status(sim) -> str:
    return sim.execute("query-status")["status"]


def test_paused_start_is_prelaunch_and_time_stands_still():
    sim = simulate(paused=True)
    sim.advance(5)
    assert status(sim) == "prelaunch"
    assert sim.vm.now() == 0.0 and sim.vm.phase == "reset"
    sim.execute("cont")
    assert names(sim) == ["RESUME"]
    sim.advance(0.05)
    assert sim.vm.phase == "firmware" and sim.vm.now() == pytest.approx(0.05)


def test_boot_goes_firmware_kernel_running_with_vof_timings():
    sim = simulate()
    sim.advance(0.1)
    assert sim.vm.phase == "kernel"  # VOF: 0.1 s of firmware
    sim.advance(1.5)
    assert sim.vm.phase == "running"
    assert all(cpu.online for cpu in sim.vm.cpus)


def test_slof_takes_longer_than_vof():
    sim = simulate(make_machine(firmware="slof"))
    sim.advance(0.5)
    assert sim.vm.phase == "firmware"
    assert [c.online for c in sim.vm.cpus] == [True, False]


def test_stop_and_cont_are_noops_in_the_same_state_like_qemu():
    sim = simulate()
    sim.execute("cont")
    sim.execute("stop")
    sim.execute("stop")
    assert names(sim) == ["STOP"]
    assert status(sim) == "paused"
    frozen = sim.vm.now()
    sim.advance(3)
    assert sim.vm.now() == frozen


def test_reset_while_paused_goes_to_prelaunch_and_while_running_reboots():
    sim = simulate()
    sim.advance(2)
    sim.execute("system_reset")
    assert status(sim) == "running" and sim.vm.phase == "firmware"
    sim.execute("stop")
    sim.execute("system_reset")
    assert status(sim) == "prelaunch" and sim.vm.phase == "reset"
    assert sim.events[0] == ("RESET", {"guest": False, "reason": "host-qmp-system-reset"})


def test_powerdown_is_ignored_by_firmware_and_obeyed_by_a_booted_guest():
    sim = simulate(make_machine(firmware="slof"))
    sim.execute("system_powerdown")
    sim.advance(0.5)
    assert not sim.finished
    sim.advance(2.6)  # kernel up
    sim.execute("system_powerdown")
    sim.advance(0.2)
    assert not sim.finished  # the guest takes a moment
    sim.advance(0.2)
    assert sim.finished
    assert sim.events[-1] == ("SHUTDOWN", {"guest": True, "reason": "guest-shutdown"})
    assert names(sim).count("POWERDOWN") == 2


def test_powerdown_waits_while_paused():
    sim = simulate()
    sim.advance(2)
    sim.execute("stop")
    sim.execute("system_powerdown")
    sim.advance(5)
    assert not sim.finished
    sim.execute("cont")
    sim.advance(1)
    assert sim.finished


def test_panic_workload_pauses_as_guest_panicked_and_needs_a_reset():
    sim = simulate(make_machine(workload="panic"))
    sim.advance(1.6)
    assert status(sim) == "guest-panicked"
    assert names(sim) == ["GUEST_PANICKED", "STOP"]
    assert sim.events[0][1] == {"action": "pause"}
    with pytest.raises(QMPError, match="Resetting the Virtual Machine is required"):
        sim.execute("cont")
    sim.execute("system_reset")
    assert status(sim) == "prelaunch"
    sim.execute("cont")
    assert status(sim) == "running"


def test_quit_ends_the_machine_and_later_commands_are_refused():
    sim = simulate()
    sim.execute("quit")
    assert sim.events[-1] == ("SHUTDOWN", {"guest": False, "reason": "host-qmp-quit"})
    with pytest.raises(QMPError, match="shut down"):
        sim.execute("cont")


def test_model_errors_carry_errnos():
    sim = simulate()
    with pytest.raises(ModelError) as err:
        sim.vm.lifecycle.power_on(False)
    assert err.value.errno == errno.EALREADY
    with pytest.raises(ModelError) as err:
        sim.vm.lifecycle.advance(-1)
    assert err.value.errno == errno.EINVAL


OPS = ["stop", "cont", "system_reset", "system_powerdown", "advance"]


def replay(seed: int, ops: list[str]) -> tuple[list, list, str]:
    sim = simulate(make_machine(seed=seed, workload="default"), paused=True)
    for op in ops:
        if sim.finished:
            break
        if op == "advance":
            sim.advance(0.35)
        else:
            try:
                sim.execute(op)
            except QMPError:
                pass
    loads = [round(c.load, 9) for c in sim.vm.cpus]
    return sim.events, loads, sim.vm.run_state


@settings(max_examples=60, deadline=None)
@given(st.integers(min_value=0, max_value=1000), st.lists(st.sampled_from(OPS), max_size=25))
def test_same_seed_and_commands_replay_exactly(seed, ops):
    assert replay(seed, ops) == replay(seed, ops)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from(OPS), max_size=25))
def test_invariants_hold_for_any_command_sequence(ops):
    sim = simulate(paused=True)
    for op in ops:
        if sim.finished:
            break
        before = sim.vm.now()
        state = sim.vm.lifecycle.run_state
        if op == "advance":
            sim.advance(0.35)
            if state is not RunState.RUNNING:
                assert sim.vm.now() == before  # the clock never moves unless running
        else:
            try:
                sim.execute(op)
            except QMPError as exc:
                assert op == "cont" and state in NEEDS_RESET, exc
        assert all(0.0 <= c.load <= 1.0 for c in sim.vm.cpus)
        assert sim.vm.cpus[0].online
        assert (sim.vm.phase == "reset") <= (sim.vm.run_state != "running")


def test_different_seeds_give_different_loads():
    a = replay(1, ["cont", "advance"] * 10)[1]
    b = replay(2, ["cont", "advance"] * 10)[1]
    assert a != b
