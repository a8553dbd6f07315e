"""The simulator device: the protocol live on the virtual clock, its QMP command and events."""

from __future__ import annotations

from dataclasses import replace

import pytest

from vmctl.sim.build import build_simulation
from vmctl.sim.qmp import QMPError
from vmctl_async_pf.live import CPU0_PATH, parse_qemu
from vmctl_async_pf.model.config import ApfConfig
from vmctl_async_pf.model.protocol import ARM64_RFCV2
from vmctl_async_pf.model.workload import ContextMix, MemoryPressure, SwapInLatency, Workload
from vmctl_async_pf.plugin import vmctl_live_probe, vmctl_sim_devices
from vmctl_async_pf.settings import read
from vmctl_async_pf.sim import COMMAND, EVENT, STUCK_EVENT, AsyncPfDevice

ARM = '''[machine]
name = "arm"
arch = "aarch64"
type = "virt"
cpu = "cortex-a72"
cpus = 2
accel = "tcg"

[async-pf]
mode = "on"
experimental = true

[sim]
seed = {seed}
workload = "busy"
'''
X86 = '''[machine]
name = "x86"
arch = "x86_64"
type = "q35"
cpu = "qemu64"
cpus = 2
accel = "{accel}"

[async-pf]
mode = "{mode}"
'''
BOOT_S = 2.0   # aarch64 virt: firmware 0.2 s + kernel 1.5 s, then userspace runs tasks


def start(machine_from_toml, text: str, **kw):  # type: ignore[no-untyped-def]
    machine = machine_from_toml(text)
    device = AsyncPfDevice(read(machine), **kw)
    return build_simulation(machine, contributions=[("async-pf", [device])]), device


def vendor_events(sim, name: str) -> list[dict]:  # type: ignore[no-untyped-def]
    return [data for event, data in sim.events if event == name]


def test_rfc_protocol_runs_live_and_reports_each_second(machine_from_toml) -> None:  # type: ignore[no-untyped-def]
    sim, _ = start(machine_from_toml, ARM.format(seed=7))
    sim.advance(BOOT_S + 3.0)
    state = sim.execute(COMMAND)
    c = state["counters"]
    assert state["protocol"] == "arm64-apf-rfcv2" and state["upstream"] == "never merged"
    assert state["enabled_vcpus"] == 2 and state["lag_s"] == 0
    assert c["async_faults"] > 1000 and c["async_faults"] == c["ready_events"] + c["outstanding"]
    events = vendor_events(sim, EVENT)
    assert len(events) == 3 and [e["t_s"] for e in events] == [1.0, 2.0, 3.0]
    assert state["history"] == events
    assert sum(e["async_faults"] for e in events) <= c["async_faults"]
    assert state["verdict"] == "helps"                  # busy: four tasks per vCPU
    assert sim.execute("__org.vmctl_query-device", {"plugin": "async-pf"})["counters"] == c


def test_nothing_faults_before_userspace_is_up(machine_from_toml) -> None:  # type: ignore[no-untyped-def]
    sim, _ = start(machine_from_toml, ARM.format(seed=1))
    sim.advance(1.0)
    state = sim.execute(COMMAND)
    assert state["running"] is False and state["counters"]["faults"] == 0


def test_same_seed_same_live_state_other_seed_differs(machine_from_toml) -> None:  # type: ignore[no-untyped-def]
    def run(seed: int) -> dict:
        sim, _ = start(machine_from_toml, ARM.format(seed=seed))
        sim.advance(BOOT_S + 1.5)
        return sim.execute(COMMAND)

    assert run(3) == run(3)
    assert run(3)["counters"] != run(4)["counters"]


def test_reset_boots_a_fresh_guest(machine_from_toml) -> None:  # type: ignore[no-untyped-def]
    sim, _ = start(machine_from_toml, ARM.format(seed=2))
    sim.advance(BOOT_S + 1.0)
    assert sim.execute(COMMAND)["counters"]["faults"] > 0
    sim.execute("system_reset")
    state = sim.execute(COMMAND)
    assert state["counters"]["faults"] == 0 and state["history"] == [] and not state["running"]


def test_a_tick_budget_makes_the_model_lag_instead_of_stalling_qmp(machine_from_toml) -> None:  # type: ignore[no-untyped-def]
    sim, _ = start(machine_from_toml, ARM.format(seed=5), max_faults_per_tick=50)
    sim.advance(BOOT_S + 1.0)
    state = sim.execute(COMMAND)
    assert state["lag_s"] > 0.5
    assert state["model_time_s"] + state["lag_s"] == pytest.approx(1.3, abs=0.06)


def test_one_vcpu_on_request_and_range_errors(machine_from_toml) -> None:  # type: ignore[no-untyped-def]
    sim, _ = start(machine_from_toml, ARM.format(seed=1))
    sim.advance(BOOT_S + 0.5)
    vcpu = sim.execute(COMMAND, {"vcpu": 1})
    assert vcpu["vcpu"] == 1 and vcpu["apf"] == "enabled" and vcpu["delivery"] == "data abort"
    assert vcpu["control_block"] == "0x100040"
    with pytest.raises(QMPError):
        sim.execute(COMMAND, {"vcpu": 2})


def test_info_async_pf_prints_one_line_per_vcpu(machine_from_toml) -> None:  # type: ignore[no-untyped-def]
    sim, _ = start(machine_from_toml, ARM.format(seed=1))
    sim.advance(BOOT_S + 0.5)
    text = sim.execute("human-monitor-command", {"command-line": "info async-pf"})
    assert text.startswith("async-pf: arm64-apf-rfcv2 (never merged)")
    assert "vCPU 0: enabled" in text and "vCPU 1: enabled" in text and "lost vCPU time" in text


def test_stuck_halted_waiter_is_reported_once(machine_from_toml) -> None:  # type: ignore[no-untyped-def]
    machine = machine_from_toml(ARM.format(seed=1))
    atomic = Workload(tasks_per_vcpu=2, contexts=ContextMix(user=0.5, kernel=0.0, atomic=0.5),
                      pressure=MemoryPressure(swapped_share=0.01, latency=SwapInLatency.fixed(50_000)))
    device = AsyncPfDevice(read(machine), config=ApfConfig(rules=ARM64_RFCV2, workload=atomic))
    sim = build_simulation(machine, contributions=[("async-pf", [device])])
    sim.advance(BOOT_S + 1.0)
    stuck = vendor_events(sim, STUCK_EVENT)
    assert sorted(e["vcpu"] for e in stuck) == [0, 1]
    sim.advance(1.0)
    assert len(vendor_events(sim, STUCK_EVENT)) == 2
    assert all(v["stuck"] for v in sim.execute(COMMAND)["vcpus"])


def test_x86_under_tcg_simulates_no_async_pf(machine_from_toml) -> None:  # type: ignore[no-untyped-def]
    sim, _ = start(machine_from_toml, X86.format(accel="tcg", mode="auto"))
    sim.advance(3.0)
    state = sim.execute(COMMAND)
    assert state["enabled_vcpus"] == 0 and state["counters"]["async_faults"] == 0
    assert state["verdict"] == "neutral"


def test_device_only_for_machines_with_an_async_pf_table(machine_from_toml) -> None:  # type: ignore[no-untyped-def]
    with_table = machine_from_toml(X86.format(accel="kvm", mode="on"))
    without = machine_from_toml(X86.format(accel="kvm", mode="on").split("[async-pf]")[0])
    assert [type(d) for d in vmctl_sim_devices(with_table)] == [AsyncPfDevice]
    assert vmctl_sim_devices(without) == []
    assert vmctl_live_probe(without, "sim") is None


# ---------------------------------------------------------------- live probe parsers

def test_sim_probe_asks_the_device(machine_from_toml) -> None:  # type: ignore[no-untyped-def]
    probe = vmctl_live_probe(machine_from_toml(ARM.format(seed=1)), "sim")
    assert probe.commands == (("__org.vmctl_query-device", {"plugin": "async-pf"}),)
    assert probe.parse([{"status": "failed", "error": "x"}]) == {"status": "failed", "error": "x"}
    assert vmctl_live_probe(machine_from_toml(ARM.format(seed=1)), "qemu") is None


def test_sim_probe_puts_the_verdict_and_counters_first(machine_from_toml) -> None:  # type: ignore[no-untyped-def]
    machine = machine_from_toml(ARM.format(seed=1))
    sim, _ = start(machine_from_toml, ARM.format(seed=1))
    sim.advance(BOOT_S + 1.5)
    probe = vmctl_live_probe(machine, "sim")
    out = probe.parse([sim.execute(cmd, args) for cmd, args in probe.commands])
    keys = list(out)
    assert keys[:3] == ["protocol", "upstream", "verdict"] and keys[-2:] == ["vcpus", "history"]
    assert out["faults"] == out["async_faults"] + out["sync_stalls"] > 0
    assert out["lost_ms_with_apf"] < out["lost_ms_without_apf"] and len(out["history"]) == 1


def test_qemu_probe_reads_cpu0_properties_and_compares_them(machine_from_toml) -> None:  # type: ignore[no-untyped-def]
    machine = machine_from_toml(X86.format(accel="kvm", mode="on"))
    probe = vmctl_live_probe(machine, "qemu")
    assert [c for c, _ in probe.commands] == ["query-cpus-fast", "qom-get", "qom-get"]
    cpus = [{"cpu-index": 0, "qom-path": CPU0_PATH}, {"cpu-index": 1, "qom-path": "/x"}]
    good = probe.parse([cpus, True, True])
    assert good["matches"] is True and good["live"] == {"kvm-asyncpf": "on", "kvm-asyncpf-int": "on"}
    bad = probe.parse([cpus, True, False])
    assert bad["matches"] is False and bad["configured"]["kvm-asyncpf-int"] == "on"


def test_qemu_probe_explains_tcg_clearing_the_kvm_bits(machine_from_toml) -> None:  # type: ignore[no-untyped-def]
    s = read(machine_from_toml(X86.format(accel="tcg", mode="on")))
    out = parse_qemu(s, [[{"cpu-index": 0, "qom-path": CPU0_PATH}], False, False])
    assert out["matches"] is False and "without KVM" in out["note"]
    s = replace(s, mode="off")
    assert parse_qemu(s, [[{"cpu-index": 0, "qom-path": CPU0_PATH}], False, False])["matches"]
