"""Validation rules, host facts and completion of the vfio-ap plugin, called as the host calls them."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import MACHINES
from vmctl.host.sysfs import Sysfs, mark_fake
from vmctl.types import ValidationContext
from vmctl_vfio_ap.complete import complete
from vmctl_vfio_ap.fakesys import MdevSpec, build_host
from vmctl_vfio_ap.host import host_check as host_facts
from vmctl_vfio_ap.hostplan import host_steps as plan_steps
from vmctl_vfio_ap.settings import ap_devices, derived_uuid
from vmctl_vfio_ap.validate import validate_fleet
from vmctl_vfio_ap.validate import validate_machine as validate

BASE = f'include = ["{MACHINES}/base/s390.toml"]\n'


@pytest.fixture
def make(machine_from_toml: Callable[..., Any]) -> Callable[..., Any]:
    def build(name: str = "crypto", adapters: str = "[5]", domains: str = "[4]", device: str = "",
              machine: str = "") -> Any:
        return machine_from_toml(f'{BASE}[machine]\nname = "{name}"\n{machine}\n[[device]]\nkind = "vfio-ap"\n'
                                 f'adapters = {adapters}\ndomains = {domains}\n{device}', name=f"{name}.toml")
    return build


def codes(diags: list[Any]) -> list[tuple[str, str, str]]:
    return [(d.severity.value, d.code, d.key) for d in diags]


def test_a_clean_machine_has_no_finding(make: Callable[..., Any]) -> None:
    assert validate(make(), ValidationContext()) == []


def test_the_derived_uuid_is_stable_and_an_explicit_one_wins(make: Callable[..., Any]) -> None:
    (dev,) = ap_devices(make(name="crypto"))
    assert dev.uuid == derived_uuid("crypto") == derived_uuid("crypto")
    assert derived_uuid("crypto") != derived_uuid("crypto2")
    (dev,) = ap_devices(make(device='uuid = "7e270a25-e163-4922-af60-757fc8ed48c6"'))
    assert dev.uuid == "7e270a25-e163-4922-af60-757fc8ed48c6" and dev.uuid_given


def test_no_adapter_or_no_domain_gives_no_apqn(make: Callable[..., Any]) -> None:
    assert codes(validate(make(domains="[]"), ValidationContext())) == [
        ("error", "ap-no-apqn", "device[0].domains")]


def test_repeated_ids_are_a_warning(make: Callable[..., Any]) -> None:
    diags = validate(make(adapters="[5, 0x05]"), ValidationContext())
    assert codes(diags) == [("warning", "ap-duplicate-id", "device[0].adapters")]
    assert "0x05" in diags[0].message


@pytest.mark.parametrize("accel", ["tcg", "auto"])
def test_real_qemu_needs_kvm(make: Callable[..., Any], accel: str) -> None:
    m = make(machine=f'accel = "{accel}"')
    assert codes(validate(m, ValidationContext(backend="qemu"))) == [("error", "ap-needs-kvm", "machine.accel")]
    assert codes(validate(m, ValidationContext(backend="sim"))) == [("note", "ap-tcg-simulated", "machine.accel")]


def test_host_checks(make: Callable[..., Any], tmp_path: Path) -> None:
    sysfs = build_host(tmp_path / "h", adapters=(5, 6), domains=(4,), max_adapter_id=63, max_domain_id=15)
    ctx = ValidationContext(sysfs=sysfs)
    assert codes(validate(make(adapters="[5, 6]", domains="[4]"), ctx)) == [
        ("note", "ap-host-owned", "device[0]")]
    assert codes(validate(make(adapters="[5, 7]", domains="[4]"), ctx)) == [
        ("note", "ap-host-owned", "device[0]"), ("warning", "ap-filtered", "device[0].adapters")]
    diags = validate(make(adapters="[64]", domains="[4]", device="control-domains = [16]"), ctx)
    assert codes(diags) == [("error", "ap-id-above-max", "device[0].adapters"),
                            ("error", "ap-id-above-max", "device[0].control-domains")]
    assert "ap_max_adapter_id 63" in diags[0].message and "ENODEV" in diags[0].message


def test_host_without_ap_bus_or_vfio_ap(make: Callable[..., Any], tmp_path: Path) -> None:
    mark_fake(tmp_path / "x86")
    assert codes(validate(make(), ValidationContext(sysfs=Sysfs(tmp_path / "x86")))) == [
        ("error", "ap-no-ap-bus", "device[0]")]
    sysfs = build_host(tmp_path / "h", adapters=(5,), domains=(4,), apmask=0, vfio_ap_loaded=False)
    assert ("error", "ap-vfio-ap-missing", "device[0]") in codes(validate(make(), ValidationContext(sysfs=sysfs)))
    with pytest.raises(Exception, match="vfio_ap module is not loaded"):
        plan_steps(make(), sysfs)


def test_fleet_shares_are_found_in_order_and_control_domains_may_overlap(make: Callable[..., Any]) -> None:
    a = make("a", "[1, 2]", "[5, 6]", device="control-domains = [9]")
    b = make("b", "[3]", "[5]", device="control-domains = [9]")
    c = make("c", "[2, 3]", "[6, 5]")
    diags = validate_fleet([a, b, c], ValidationContext())
    assert codes(diags) == [("error", "ap-apqn-shared", "device[0]"), ("error", "ap-apqn-shared", "device[0]"),
                            ("note", "ap-control-domain-shared", "device[0].control-domains")]
    assert "APQN 02.0005, 02.0006 also given to machine 'a'" in diags[0].message
    assert "APQN 03.0005 also given to machine 'b'" in diags[1].message
    assert all(d.file.endswith("c.toml") for d in diags[:2])


def test_fleet_refuses_one_uuid_for_two_machines(make: Callable[..., Any]) -> None:
    uuid = 'uuid = "7e270a25-e163-4922-af60-757fc8ed48c6"'
    diags = validate_fleet([make("a", device=uuid), make("b", "[6]", device=uuid)], ValidationContext())
    assert codes(diags) == [("error", "ap-uuid-shared", "device[0].uuid")]


def test_fleet_against_live_mdevs_spares_the_machines_own(make: Callable[..., Any], tmp_path: Path) -> None:
    sysfs = build_host(tmp_path / "h", adapters=(5, 6), domains=(4,), apmask=0,
                       mdevs=[MdevSpec(derived_uuid("mine"), (5,), (4,)),
                              MdevSpec("7e270a25-e163-4922-af60-757fc8ed48c6", (6,), (4,))])
    ctx = ValidationContext(sysfs=sysfs)
    assert validate_fleet([make("mine", "[5]")], ctx) == []
    d1, d2 = validate_fleet([make("other", "[5, 6]")], ctx)
    assert d1.code == d2.code == "ap-apqn-in-use"
    assert "APQN 05.0004 already assigned to live mdev " + derived_uuid("mine") in d1.message
    assert "APQN 06.0004 already assigned to live mdev 7e270a25" in d2.message


def test_host_facts(tmp_path: Path) -> None:
    sysfs = build_host(tmp_path / "h", adapters=(5, 6), domains=(4,), apmask=0,
                       mdevs=[MdevSpec(derived_uuid("x"), (5,), (4,))])
    facts = {f.name: f for f in host_facts(sysfs)}
    assert facts["AP bus"].ok and "2 adapters, 2 queues (2 vfio_ap)" in facts["AP bus"].detail
    assert facts["free vfio_ap queues"].detail == "1 (06.0004)"
    mark_fake(tmp_path / "x86")
    (fact,) = host_facts(Sysfs(tmp_path / "x86"))
    assert not fact.ok and fact.name == "AP bus"


def test_completion_of_apqns_adapters_and_domains(tmp_path: Path) -> None:
    sysfs = build_host(tmp_path / "h", adapters=(5, 6), domains=(4, 0xAB), apmask=0x0 | (1 << 255 - 6),
                       aqmask=1 << (255 - 4), mdevs=[MdevSpec(derived_uuid("x"), (5,), (4,))])
    assert complete("apqn", "", sysfs) == [
        ("05.0004", f"assigned to mdev {derived_uuid('x')}"), ("05.00ab", "free (vfio_ap)"),
        ("06.0004", "host (apmask/aqmask)"), ("06.00ab", "free (vfio_ap)")]
    assert [v for v, _ in complete("apqn", "06", sysfs) or []] == ["06.0004", "06.00ab"]
    assert complete("adapter", "0x0", sysfs) == [("0x05", "card05 CEX7C, 2 queues on vfio_ap"),
                                                 ("0x06", "card06 CEX7C, 1 queues on vfio_ap")]
    assert [v for v, _ in complete("domain", "", sysfs) or []] == ["0x0004", "0x00ab"]
    assert complete("pci-address", "", sysfs) is None


def test_scenario_9_a_second_vfio_ap_device_is_refused(machine_from_toml: Callable[..., Any],
                                                       vmctl_pm: Any) -> None:
    """§4.11.9: QEMU takes one vfio-ap device per guest (the AP bridge has one slot)."""
    from vmctl.config.validate import check_machine

    dev = '[[device]]\nkind = "vfio-ap"\nadapters = [5]\ndomains = [4]\n'
    m = machine_from_toml(f'{BASE}[machine]\nname = "two"\n{dev}{dev.replace("[5]", "[6]")}')
    errors = [(d.code, d.key) for d in check_machine(m, vmctl_pm, ValidationContext()) if d.severity.value == "error"]
    assert errors == [("too-many-devices", "device[1]")]
