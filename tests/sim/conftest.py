"""Helpers for the simulator tests: machines built in memory, simulations without sockets."""

from __future__ import annotations

from typing import Any

import pytest

from vmctl.config.machine import Machine
from vmctl.sim.build import Simulation, build_simulation


def make_machine(arch: str = "ppc64", mtype: str = "pseries", cpus: int = 2,
                 firmware: str = "vof", seed: int = 1, workload: str = "default",
                 name: str = "t1") -> Machine:
    data: dict[str, Any] = {
        "machine": {"name": name, "arch": arch, "type": mtype, "cpu": "power9", "cpus": cpus,
                    "memory": "1G", "accel": "tcg"},
        "boot": {"firmware": firmware},
        "sim": {"seed": seed, "workload": workload},
    }
    return Machine(data, {}, "mem.toml")


@pytest.fixture
def machine() -> Machine:
    return make_machine()


def simulate(machine: Machine | None = None, paused: bool = False,
             devices: list[tuple[str, list[Any]]] | None = None) -> Simulation:
    return build_simulation(machine or make_machine(), contributions=devices or [],
                            paused=paused)


def names(sim: Simulation) -> list[str]:
    return [e for e, _ in sim.events]
