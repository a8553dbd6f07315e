"""Launch in-process: start-up failures and guest-side endings on the simulator."""

from __future__ import annotations

import time

import pytest

from vmctl.config import load_machine
from vmctl.errors import VmctlError
from vmctl.plugins import get_plugin_manager
from vmctl.runtime.control import qmp, status, stop
from vmctl.runtime.launch import Launch

from .conftest import MACHINES, instance


def machine_with_workload(workload: str):
    pm = get_plugin_manager()
    m = load_machine(MACHINES / "p9-dual.toml", pm)
    m.data.setdefault("sim", {})["workload"] = workload
    return m, pm


def test_a_simulator_that_cannot_start_is_reported_with_its_own_line():
    m, pm = machine_with_workload("nope")
    with pytest.raises(VmctlError) as err:
        Launch(m, pm, name="w").start()
    assert "sim backend for 'w' exited during start-up (exit status 1)" in err.value.message
    assert "vmctl-sim: error: unknown workload 'nope'" in err.value.message
    assert not instance("w").exists()


def test_a_panicking_guest_is_paused_as_guest_panicked():
    m, pm = machine_with_workload("panic")
    Launch(m, pm, name="pan").start()
    deadline = time.monotonic() + 10
    while qmp("pan", "query-status", None)["status"] != "guest-panicked":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    s = status("pan", pm)
    assert s["state"] == "running" and s["run_state"] == "guest-panicked"
    with pytest.raises(VmctlError, match="Resetting the Virtual Machine is required"):
        qmp("pan", "cont", None)
    assert stop("pan")["steps"] == ["quit"]
