"""The vfio-ap device in the simulator: open at power-on, live changes over QMP, events, status."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.conftest import MACHINES
from vmctl.sim.build import build_simulation
from vmctl.sim.qmp import QMPError
from vmctl_vfio_ap.live import live_probe, parse_qtree
from vmctl_vfio_ap.settings import derived_uuid
from vmctl_vfio_ap.sim import EVENT_HOTPLUG, EVENT_RESET, sim_devices

CRYPTO = f'include = ["{MACHINES}/base/s390.toml"]\n' + (MACHINES / "s390-crypto.toml").read_text().split(
    'include = ["base/s390.toml"]\n', 1)[1]
UUID = derived_uuid("s390-crypto")


@pytest.fixture
def sim(machine_from_toml: Callable[..., Any]) -> Callable[..., Any]:
    def build(text: str = CRYPTO, seed: int = 1) -> Any:
        m = machine_from_toml(text + f"\n[sim]\nseed = {seed}\n")
        lines: list[str] = []
        s = build_simulation(m, contributions=[("vfio-ap", sim_devices(m))], console=lines.append)
        s.machine, s.lines = m, lines
        return s
    return build


def state(s: Any) -> dict[str, Any]:
    return s.execute("__org.vmctl_query-device", {"plugin": "vfio-ap"})


def events(s: Any, name: str) -> list[dict[str, Any]]:
    return [d for e, d in s.events if e == name]


def test_power_on_opens_the_mdev_and_the_guest_enables_interrupts(sim: Callable[..., Any]) -> None:
    s = sim()
    st = state(s)
    assert (st["state"], st["guest"], st["uuid"]) == ("in-use", "s390-crypto", UUID)
    assert st["guest_apqns"] == st["matrix"] == ["05.0004", "05.00ab", "06.0004", "06.00ab"]
    assert st["guest_control_domains"] == ["0004"] and st["irq_enabled"] == []
    s.advance(2.0)
    st = state(s)
    assert st["irq_enabled"] == st["guest_apqns"] and st["counters"]["aqic"] == {"enable": 4}
    assert st["requests"] > 0 and set(st["requests_by_apqn"]) == set(st["guest_apqns"])


def test_requests_replay_from_the_seed(sim: Callable[..., Any]) -> None:
    def run(seed: int) -> dict[str, int]:
        s = sim(seed=seed)
        s.advance(2.0)
        return state(s)["requests_by_apqn"]
    assert run(3) == run(3)
    assert run(3) != run(4)


def test_live_assignment_is_a_hot_plug_with_an_event(sim: Callable[..., Any]) -> None:
    s = sim()
    s.advance(1.0)
    assert s.execute("__org.vmctl_ap-assign", {"what": "adapter", "id": 0}) == {}
    assert state(s)["guest_apqns"][:2] == ["00.0004", "00.00ab"]
    (ev,) = events(s, EVENT_HOTPLUG)
    assert (ev["trigger"], ev["plugged"], ev["unplugged"]) == ("assign", ["00.0004", "00.00ab"], [])
    assert "AP configuration of s390-crypto changed (assign): plugged 00.0004, 00.00ab" in s.lines[-1]
    s.execute("__org.vmctl_ap-unassign", {"what": "domain", "id": 0xAB})
    st = state(s)
    assert st["guest_apqns"] == ["00.0004", "05.0004", "06.0004"]
    assert sorted(d["apqn"] for d in events(s, EVENT_RESET)) == ["00.00ab", "05.00ab", "06.00ab"]
    assert st["counters"]["hotplug"] == {"assign": 1} and st["counters"]["hotunplug"] == {"unassign": 1}


def test_unbinding_a_queue_filters_its_adapter_and_says_why(sim: Callable[..., Any]) -> None:
    s = sim()
    s.execute("__org.vmctl_ap-queue", {"apqn": "06.0004", "action": "unbind"})
    st = state(s)
    assert st["guest_apqns"] == ["05.0004", "05.00ab"]
    assert {"apqn": "06.00ab", "reason": "adapter 06 filtered out: queue 06.0004 is bound to no driver, "
            "not vfio_ap"} in st["filtered"]
    s.execute("__org.vmctl_ap-queue", {"apqn": "06.0004", "action": "bind"})
    assert state(s)["guest_apqns"] == ["05.0004", "05.00ab", "06.0004", "06.00ab"]
    assert [e["trigger"] for e in events(s, EVENT_HOTPLUG)] == ["queue-remove", "queue-probe"]


def test_kernel_refusals_are_qmp_errors_naming_the_errno(sim: Callable[..., Any]) -> None:
    s = sim()
    with pytest.raises(QMPError) as exc:
        s.execute("__org.vmctl_ap-mask", {"mask": "apmask", "value": "+5"})
    assert exc.value.error_class == "GenericError"
    assert exc.value.desc.startswith("EBUSY: apmask '+5' refused: queue 05.0004") and UUID in exc.value.desc
    with pytest.raises(QMPError, match="ENODEV"):
        s.execute("__org.vmctl_ap-assign", {"what": "adapter", "id": 300})
    with pytest.raises(QMPError, match="Parameter 'id' is missing"):
        s.execute("__org.vmctl_ap-assign", {"what": "adapter"})
    with pytest.raises(QMPError, match="does not accept value 'card'"):
        s.execute("__org.vmctl_ap-assign", {"what": "card", "id": 1})
    with pytest.raises(QMPError) as exc:
        s.execute("__org.vmctl_ap-queue", {"apqn": "0a.0004", "action": "bind"})
    assert exc.value.error_class == "DeviceNotFound"
    assert state(s)["counters"]["mask_writes_refused"] == {"EBUSY": 1}


def test_host_configuration_changes_unplug_and_replug(sim: Callable[..., Any]) -> None:
    s = sim()
    s.execute("__org.vmctl_ap-config", {"adapters": [5, 0]})
    assert state(s)["guest_apqns"] == ["05.0004", "05.00ab"]
    s.execute("__org.vmctl_ap-config", {"adapters": [5, 6, 0]})
    assert state(s)["guest_apqns"] == ["05.0004", "05.00ab", "06.0004", "06.00ab"]
    assert [e["trigger"] for e in events(s, EVENT_HOTPLUG)] == ["config-change", "scan-complete"]


def test_system_reset_resets_the_queues_and_shutdown_closes(sim: Callable[..., Any]) -> None:
    s = sim()
    s.advance(1.0)
    s.execute("system_reset")
    assert sorted(e["reason"] for e in events(s, EVENT_RESET)) == ["device-reset"] * 4
    assert state(s)["irq_enabled"] == []
    s.execute("quit")
    st = state(s)
    assert (st["state"], st["guest_apqns"]) == ("configured", [])


def test_qemu_probe_reads_the_device_from_info_qtree() -> None:
    qtree = ("bus: main-system-bus\n  type System\n  dev: ap-bridge, id \"\"\n    bus: ap-bus\n"
             "      type ap-bus\n      dev: vfio-ap, id \"crypto\"\n"
             f"        sysfsdev = \"/sys/devices/vfio_ap/matrix/{UUID}\"\n  dev: s390-pcihost, id \"\"\n")
    assert parse_qtree([qtree]) == {"source": "info qtree", "present": True, "id": "crypto",
                                    "sysfsdev": f"/sys/devices/vfio_ap/matrix/{UUID}", "uuid": UUID}
    assert parse_qtree(["bus: main-system-bus\n"]) == {"source": "info qtree", "present": False}


def test_live_probe_per_backend(machine_from_toml: Callable[..., Any]) -> None:
    m = machine_from_toml(CRYPTO)
    assert live_probe(m, "sim").commands == (("__org.vmctl_query-device", {"plugin": "vfio-ap"}),)  # type: ignore[union-attr]
    assert live_probe(m, "qemu").commands[0][0] == "human-monitor-command"  # type: ignore[union-attr]


def test_a_running_instance_shows_hot_plug_in_status(sim_instance: Callable[..., Any]) -> None:
    inst = sim_instance(MACHINES / "s390-crypto.toml")
    inst.qmp.execute("__org.vmctl_ap-queue", apqn="05.00ab", action="unbind")
    event = inst.qmp.wait_event(EVENT_HOTPLUG, 5)
    assert event["data"]["unplugged"] == ["05.0004", "05.00ab"]
    ap = inst.status()["plugins"]["vfio-ap"]
    assert ap["guest_apqns"] == ["06.0004", "06.00ab"]
    assert ap["counters"]["hotunplug"] == {"queue-remove": 1}
    assert any(f["apqn"] == "05.0004" and "05.00ab" in f["reason"] for f in ap["filtered"])
