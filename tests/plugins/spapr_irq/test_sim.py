"""The spapr-irq device in the simulator: mode at reset and after CAS, events, counters, info pic."""

from __future__ import annotations

import pytest

from vmctl.sim.build import build_simulation
from vmctl_spapr_irq.live import live_probe
from vmctl_spapr_irq.model.info_pic import parse_info_pic
from vmctl_spapr_irq.predict import predict as machine_prediction
from vmctl_spapr_irq.sim import EVENT, sim_devices

PSERIES = """
[machine]
name = "sim-{name}"
arch = "ppc64"
type = "pseries"
cpu = "{cpu}"
cpus = 2
accel = "{accel}"

[boot]
firmware = "vof"
append = "{append}"

[irq]
ic-mode = "{ic_mode}"

[sim]
seed = {seed}
"""


@pytest.fixture
def sim(machine_from_toml):
    def build(ic_mode="dual", cpu="power9", append="console=hvc0", accel="tcg", seed=1, paused=False):
        m = machine_from_toml(PSERIES.format(name=ic_mode, cpu=cpu, append=append, accel=accel,
                                             ic_mode=ic_mode, seed=seed))
        lines: list[str] = []
        s = build_simulation(m, contributions=[("spapr-irq", sim_devices(m))], paused=paused,
                             console=lines.append)
        s.machine, s.lines = m, lines
        return s
    return build


def state(s) -> dict:
    return s.execute("__org.vmctl_query-device", {"plugin": "spapr-irq"})


def mode_events(s) -> list[tuple[str, str]]:
    return [(d["mode"], d["cause"]) for e, d in s.events if e == EVENT]


def test_dual_starts_in_xics_and_switches_to_xive_at_cas(sim) -> None:
    s = sim()
    assert state(s)["mode"] == "xics" and mode_events(s) == [("xics", "power-on")]
    s.advance(0.2)                          # VOF takes 0.1 s, then the kernel calls CAS
    st = state(s)
    assert (st["mode"], st["state"], st["ov5_byte23"]) == ("xive", "negotiated", 0x40)
    assert st["cas_at"] == pytest.approx(0.1)
    assert mode_events(s) == [("xics", "power-on"), ("xive", "cas")]
    assert parse_info_pic(s.execute("human-monitor-command", {"command-line": "info pic"}))["mode"] == "xive"


def test_interrupts_are_counted_while_the_guest_runs(sim) -> None:
    s = sim()
    s.advance(3.0)
    first = state(s)["interrupts"]
    s.advance(1.0)
    then = state(s)["interrupts"]
    assert then["delivered"] > first["delivered"] > 0
    assert len(then["per_vcpu"]) == 2 and all(n > 0 for n in then["per_vcpu"])
    assert then["per_source"]["0x1100"] > 0 and sum(then["per_vcpu"]) == then["delivered"]


def test_paused_machine_stays_in_the_default_mode(sim) -> None:
    s = sim(paused=True)
    s.advance(5.0)
    assert state(s)["mode"] == "xics" and state(s)["state"] == "before-cas"


def test_system_reset_goes_back_to_xics_until_the_next_cas(sim) -> None:
    s = sim()
    s.advance(0.5)
    s.execute("system_reset")
    assert state(s)["mode"] == "xics"
    s.advance(0.5)
    assert state(s)["mode"] == "xive"
    assert [m for m, _ in mode_events(s)] == ["xics", "xive", "xics", "xive"]


@pytest.mark.parametrize(("ic_mode", "cpu", "append", "accel"), [
    ("dual", "power9", "console=hvc0", "tcg"),
    ("dual", "power9", "console=hvc0 xive=off", "tcg"),
    ("xics", "power9", "console=hvc0", "tcg"),
    ("xive", "power9", "console=hvc0", "tcg"),
    ("dual", "power8", "console=hvc0", "tcg"),
    ("xive", "power9", "xive=off", "tcg"),
    ("dual", "power9", "console=hvc0", "kvm"),
])
def test_status_after_cas_equals_the_plan(sim, ic_mode, cpu, append, accel) -> None:
    s = sim(ic_mode, cpu, append, accel)
    s.advance(0.5)
    pred = machine_prediction(s.machine)
    st = state(s)
    assert (st["mode"], st["controller"]) == (pred["after_cas"], pred["controller"])


def test_kvm_machine_runs_the_kernel_device_lifecycle(sim) -> None:
    s = sim(accel="kvm")
    s.advance(0.5)
    kvm = state(s)["kvm"]
    assert kvm["active"] == "xive-native"
    assert kvm["slots"] == {"xics-on-xive": "cached-idle", "xive-native": "active"}
    assert kvm["stats"]["creates"] == 2 and kvm["stats"]["releases"] == 1
    assert "irqchip: in-kernel" in s.execute("human-monitor-command", {"command-line": "info pic"})


def test_same_seed_same_run(sim) -> None:
    a, b, c = sim(seed=3), sim(seed=3), sim(seed=4)
    for s in (a, b, c):
        s.advance(2.5)
    assert state(a) == state(b)
    assert state(a)["interrupts"] != state(c)["interrupts"]


def test_live_probe_for_each_backend(sim) -> None:
    s = sim()
    s.advance(0.5)
    probe = live_probe(s.machine, "sim")
    returns = [s.execute(cmd, args) for cmd, args in probe.commands]
    assert probe.parse(returns)["mode"] == "xive"
    qprobe = live_probe(s.machine, "qemu")
    returns = [s.execute(cmd, args) for cmd, args in qprobe.commands]     # the sim speaks HMP too
    parsed = qprobe.parse(returns)
    assert (parsed["mode"], parsed["controller"]) == ("xive", "emulated")
    assert set(parsed["eq_index"]) == {"0", "1"}


def test_non_pseries_machines_get_no_device(machine_from_toml) -> None:
    m = machine_from_toml('[machine]\nname = "x"\narch = "x86_64"\ntype = "q35"\ncpu = "host"\n')
    assert sim_devices(m) == [] and live_probe(m, "sim") is None
