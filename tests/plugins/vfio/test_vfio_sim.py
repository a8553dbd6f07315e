"""The VFIO device in the simulator: pinning vs the IOPF ramp-up, commands, live probe."""

from __future__ import annotations

import json
import time

import pytest

from tests.runtime.conftest import cli, cli_ok, kill_leftovers, state_dir
from vmctl.sim.build import build_simulation
from vmctl.sim.qmp import QMPError
from vmctl_vfio.live import live_probe, parse_query_pci
from vmctl_vfio.settings import vfio_devices
from vmctl_vfio.sim import EVENT, sim_devices

from .test_vfio_validate import machine_text

GiB = 1 << 30
IOPF_DEV = 'id = "nic0"\nhost = "0000:03:00.0"\niopf = true\nexperimental = true'


@pytest.fixture
def simulate(machine_from_toml):
    def run(text: str, seconds: float, name: str = "vm.toml"):
        m = machine_from_toml(text, name=name)
        sim = build_simulation(m, contributions=[("vfio", sim_devices(m))])
        sim.advance(seconds)
        return sim
    return run


def device_state(sim) -> dict:
    return sim.execute("__org.vmctl_query-vfio")["devices"][0]


def test_iopf_rampup_is_visible_in_state_and_events(simulate) -> None:
    sim = simulate(machine_text(IOPF_DEV, memory="1G") + '\n[sim]\nseed = 3\n', 12)
    dev = device_state(sim)
    rates = [h["faults_per_s"] for h in dev["history"] if h["transfers"]]
    assert rates[0] > 3 * rates[-1] > 0                  # the ramp-up
    mapped = [h["mapped_pages"] for h in dev["history"]]
    assert mapped == sorted(mapped) and 0 < mapped[-1] < GiB // 4096
    assert dev["locked_pages"] == 0 and dev["memory"] == "on-demand (IOPF RFC)"
    assert dev["iopf"]["pages_prefaulted"] > dev["iopf"]["pages_faulted"]
    events = [data for name, data in sim.events if name == EVENT]
    assert [e["faults"] for e in events] == [h["faults"] for h in dev["history"]]
    assert events[-1]["device"] == "nic0"


def test_pinned_device_locks_all_guest_memory_and_never_faults(simulate) -> None:
    sim = simulate(machine_text('host = "0000:01:00.0"', memory="1G"), 6)
    st = sim.execute("__org.vmctl_query-vfio")
    dev = st["devices"][0]
    assert st["locked_bytes"] == GiB and dev["memory"] == "pinned"
    assert dev["locked_pages"] == dev["mapped_pages"] == GiB // 4096
    assert dev["faults"] == 0 and dev["transfers"] > 0 and dev["aborted"] == 0
    assert not [n for n, _ in sim.events if n == EVENT]


def test_same_seed_same_history(simulate) -> None:
    text = machine_text(IOPF_DEV, memory="512M") + '\n[sim]\nseed = 9\n'
    a = device_state(simulate(text, 5, "a.toml"))["history"]
    b = device_state(simulate(text, 5, "b.toml"))["history"]
    c = device_state(simulate(text.replace("seed = 9", "seed = 10"), 5, "c.toml"))["history"]
    assert a == b and a != c


def test_reset_resets_the_device_and_keeps_mappings(simulate) -> None:
    sim = simulate(machine_text(IOPF_DEV, memory="512M"), 5)
    before = device_state(sim)
    sim.execute("system_reset")
    sim.advance(0.5)                                     # back in firmware: no DMA
    after = device_state(sim)
    assert after["resets"] == before["resets"] + 1
    assert after["mapped_pages"] >= before["mapped_pages"] and not after["dma"]["active"]
    assert after["transfers"] - before["transfers"] <= 20_000


def test_host_unmap_invalidates_only_iopf_mappings(simulate) -> None:
    iopf = simulate(machine_text(IOPF_DEV, memory="512M"), 6)
    mapped = device_state(iopf)["mapped_pages"]
    got = iopf.execute("__org.vmctl_vfio-host-unmap", {"offset": 0, "size": 64 << 20})
    assert 0 < got["invalidated_pages"] <= 16384
    assert device_state(iopf)["mapped_pages"] == mapped - got["invalidated_pages"]
    pinned = simulate(machine_text('host = "0000:01:00.0"', memory="512M"), 3, "p.toml")
    assert pinned.execute("__org.vmctl_vfio-host-unmap",
                          {"offset": 0, "size": 64 << 20}) == {"invalidated_pages": 0}
    with pytest.raises(QMPError, match="inside guest RAM"):
        pinned.execute("__org.vmctl_vfio-host-unmap", {"offset": 0, "size": 1 << 40})


def test_dma_command_changes_the_workload(simulate) -> None:
    sim = simulate(machine_text(IOPF_DEV, memory="512M"), 3)
    reply = sim.execute("__org.vmctl_vfio-dma", {"device": "nic0", "pattern": "sequential",
                                                 "rate": 50_000})
    assert reply == {"device": "nic0", "pattern": "sequential", "rate": 50000.0,
                     "transfer_pages": 1}
    sim.advance(2)
    assert device_state(sim)["history"][-1]["transfers"] == 50_000
    with pytest.raises(QMPError, match="rate must be"):
        sim.execute("__org.vmctl_vfio-dma", {"device": "nic0", "rate": 10 ** 7})
    with pytest.raises(QMPError) as exc:
        sim.execute("__org.vmctl_vfio-dma", {"device": "gpu9"})
    assert exc.value.error_class == "DeviceNotFound"


def test_info_vfio(simulate) -> None:
    sim = simulate(machine_text(IOPF_DEV, memory="512M"), 4)
    text = sim.execute("human-monitor-command", {"command-line": "info vfio"})
    assert text.startswith("vfio: 512 MiB guest RAM, 0 MiB locked")
    assert "0000:03:00.0 (nic0) group 1 on vfio-pci, type1, on-demand (IOPF RFC)" in text


def test_ppc64_is_reported_as_not_modelled(machine_from_toml) -> None:
    m = machine_from_toml('[machine]\nname = "p"\narch = "ppc64"\ntype = "pseries"\n'
                          'cpu = "power9"\n\n[[device]]\nkind = "vfio-pci"\n'
                          'host = "0000:01:00.0"\n')
    sim = build_simulation(m, contributions=[("vfio", sim_devices(m))])
    assert sim.execute("__org.vmctl_query-vfio")["status"] == "not-modelled"


def test_qemu_probe_matches_devices_by_id(machine_from_toml) -> None:
    m = machine_from_toml(machine_text('id = "gpu0"\nhost = "0000:01:00.0"',
                                       'host = "0000:01:00.1"'))
    probe = live_probe(m, "qemu")
    assert probe.commands == (("query-pci", {}),)
    reply = [{"bus": 0, "devices": [
        {"bus": 0, "slot": 1, "function": 0, "qdev_id": "",
         "pci_bridge": {"devices": [{"bus": 1, "slot": 0, "function": 0, "qdev_id": "gpu0",
                                     "class_info": {"class": 768, "desc": "VGA controller"}}]}}]}]
    got = parse_query_pci(vfio_devices(m), [reply])
    assert got["devices"][0] == {"key": "device[0]", "id": "gpu0", "host": "0000:01:00.0",
                                 "iommu": "type1", "present": True, "guest_address": "01:00.0",
                                 "class": "VGA controller"}
    assert got["devices"][1]["present"] is None
    assert probe.parse([reply]) == got


@pytest.fixture
def no_leftovers():
    yield
    kill_leftovers(state_dir())


def test_run_status_shows_the_rampup(no_leftovers) -> None:
    cli_ok("run", "machines/x86-passthrough-iopf.toml")
    try:
        deadline = time.monotonic() + 30
        while True:                        # wait for three seconds of device DMA
            status = json.loads(cli_ok("status", "x86-passthrough-iopf", "--format",
                                       "json").stdout)
            vfio = status["plugins"]["vfio"]
            dev = vfio["devices"][0]
            if sum(1 for r in dev["fault_rate_history"] if r) >= 3:
                break
            assert time.monotonic() < deadline, status
            time.sleep(0.5)
        assert (dev["host"], dev["group"], dev["driver"]) == ("0000:03:00.0", 1, "vfio-pci")
        assert dev["faults"] > 0 and dev["locked_pages"] == 0
        assert 0 < dev["mapped_pages"] < dev["guest_pages"]
        rates = [r for r in dev["fault_rate_history"] if r]
        assert rates and rates[-1] < max(rates)            # falling after the first burst
        assert vfio["memory"] == "4096 MiB guest RAM, 0 MiB locked"
        text = cli_ok("status", "x86-passthrough-iopf").stdout
        assert "nic0: 0000:03:00.0 group 1 on vfio-pci, type1, on-demand (IOPF RFC)" in text
    finally:
        cli("stop", "x86-passthrough-iopf")
