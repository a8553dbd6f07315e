"""Pre-launch checks of vfio-pci devices: alone, against a fake host, across machines."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import run_vmctl
from vmctl.host.sysfs import Sysfs
from vmctl.types import ValidationContext
from vmctl_vfio.fakesys import fake_kernel as handlers
from vmctl_vfio.fakesys import (host_scenario, iommufd_scenario, no_iommu_scenario,
                                nonviable_scenario, viable_scenario)
from vmctl_vfio.validate import validate_fleet, validate_machine as validate

GPU_MACHINE = """
[machine]
name = "{name}"
arch = "x86_64"
type = "q35"
cpu = "host"
memory = "{memory}"
accel = "kvm"
"""


def machine_text(*devices: str, name: str = "vm", memory: str = "2G") -> str:
    text = GPU_MACHINE.format(name=name, memory=memory)
    for dev in devices:
        text += f'\n[[device]]\nkind = "vfio-pci"\n{dev}\n'
    return text


def codes(diags) -> list[str]:
    return [d.code for d in diags]


@pytest.fixture
def make(machine_from_toml):
    def build(*devices: str, name: str = "vm", memory: str = "2G"):
        return machine_from_toml(machine_text(*devices, name=name, memory=memory),
                                 name=f"{name}.toml")
    return build


def host_ctx(root: Path, scenario, backend: str = "sim", **kw) -> ValidationContext:
    scenario(root, **kw)
    return ValidationContext(backend=backend, sysfs=Sysfs(root, handlers()))


def test_address_form_and_duplicates(make) -> None:
    m = make('host = "03:00.0"', 'host = "0000:03:00.0"', 'host = "0000:3:0.0"')
    diags = validate(m, ValidationContext())
    assert codes(diags) == ["vfio-duplicate-device", "vfio-bad-address"]
    assert diags[1].key == "device[2].host" and diags[1].line > 0


def test_iopf_needs_experimental(make) -> None:
    diags = validate(make('host = "0000:03:00.0"\niopf = true'), ValidationContext())
    assert codes(diags) == ["vfio-iopf-needs-experimental"]


def test_iopf_refused_for_qemu_with_the_real_path(make) -> None:
    m = make('host = "0000:03:00.0"\niopf = true\nexperimental = true')
    assert codes(validate(m, ValidationContext(backend="sim"))) == ["vfio-iopf-simulated"]
    [d] = validate(m, ValidationContext(backend="qemu"))
    assert d.code == "vfio-iopf-unmerged" and d.severity.value == "error"
    assert "VFIO_IOMMU_ENABLE_IOPF" in d.message and "never merged" in d.message
    assert "iommufd fault queue" in d.hint and "6.11" in d.hint


def test_iopf_is_type1_only_and_per_container(make) -> None:
    m = make('host = "0000:03:00.0"\niommu = "iommufd"\niopf = true\nexperimental = true')
    assert codes(validate(m, ValidationContext())) == ["vfio-iopf-type1-only"]
    m = make('host = "0000:03:00.0"\niopf = true\nexperimental = true', 'host = "0000:01:00.0"')
    assert "vfio-iopf-mixed" in codes(validate(m, ValidationContext()))


def test_prefault_without_iopf_warns(make) -> None:
    assert codes(validate(make('host = "0000:03:00.0"\nprefault = 16'),
                          ValidationContext())) == ["vfio-prefault-unused"]


def test_nonviable_group_names_each_companion_and_driver(make, tmp_path: Path) -> None:
    ctx = host_ctx(tmp_path, nonviable_scenario, memlock=None)
    [d] = validate(make('host = "0000:01:00.0"'), ctx)
    assert d.code == "vfio-group-not-viable" and d.key == "device[0].host"
    assert "IOMMU group 1" in d.message
    assert "0000:01:00.1 [10de:10f0] on snd_hda_intel" in d.message
    assert "pcieport" not in d.message                    # the root port is no blocker
    assert "vmctl host apply" in d.hint


def test_assigning_the_companion_too_makes_it_a_binding_issue(make, tmp_path: Path) -> None:
    ctx = host_ctx(tmp_path, nonviable_scenario, memlock=None)
    diags = validate(make('host = "0000:01:00.0"', 'host = "0000:01:00.1"'), ctx)
    assert codes(diags) == ["vfio-not-bound"] and diags[0].key == "device[1].host"


def test_viable_host_is_clean(make, tmp_path: Path) -> None:
    ctx = host_ctx(tmp_path, viable_scenario, memlock=4 << 30)
    assert validate(make('host = "0000:01:00.0"', memory="4G"), ctx) == []


def test_unbound_device_and_missing_device(make, tmp_path: Path) -> None:
    ctx = host_ctx(tmp_path, host_scenario, memlock=None)
    diags = validate(make('host = "0000:03:00.0"', 'host = "0000:03:00.7"'), ctx)
    assert codes(diags) == ["vfio-not-bound", "vfio-no-device"]
    assert "on e1000e" in diags[0].message and "0000:03:00.0" in diags[1].hint


def test_no_iommu(make, tmp_path: Path) -> None:
    ctx = host_ctx(tmp_path, no_iommu_scenario)
    assert codes(validate(make('host = "0000:03:00.0"'), ctx)) == ["vfio-no-iommu"]


def test_memlock_names_the_number_needed(make, tmp_path: Path) -> None:
    ctx = host_ctx(tmp_path, viable_scenario, memlock=64 << 20)
    [d] = validate(make('host = "0000:03:00.0"', memory="4G"), ctx)
    assert d.code == "vfio-memlock" and "64 MiB" in d.message and "4096 MiB" in d.message
    assert "4294967296" in d.hint and "ulimit -l 4194304" in d.hint


def test_memlock_not_needed_with_cap_or_iopf(make, tmp_path: Path) -> None:
    ctx = host_ctx(tmp_path, viable_scenario, memlock=64 << 20, cap_ipc_lock=True)
    assert validate(make('host = "0000:03:00.0"', memory="4G"), ctx) == []
    ctx = host_ctx(tmp_path / "b", viable_scenario, memlock=64 << 20)
    m = make('host = "0000:03:00.0"\niopf = true\nexperimental = true', memory="4G")
    assert codes(validate(m, ctx)) == ["vfio-iopf-simulated"]


def test_iommufd_needs_dev_iommu(make, tmp_path: Path) -> None:
    m = make('host = "0000:03:00.0"\niommu = "iommufd"')
    assert codes(validate(m, host_ctx(tmp_path, viable_scenario, memlock=None))) == \
        ["vfio-no-iommufd"]
    assert validate(m, host_ctx(tmp_path / "b", iommufd_scenario, memlock=None)) == []


@dataclass
class FakeCaps:
    version: str
    objects: list[str] = field(default_factory=list)


@pytest.mark.parametrize("caps, found", [(FakeCaps("7.2.22", ["memory-backend-ram"]), True),
                                         (FakeCaps("8.2.0", ["iommufd"]), False)])
def test_iommufd_needs_qemu_object(make, caps: FakeCaps, found: bool) -> None:
    m = make('host = "0000:03:00.0"\niommu = "iommufd"')
    diags = validate(m, ValidationContext(backend="qemu", qemu={"x86_64": caps}))
    assert ("vfio-qemu-no-iommufd" in codes(diags)) is found
    if found:
        assert "QEMU 7.2.22" in diags[0].message and "8.2" in diags[0].message


def test_fleet_one_group_one_machine(make, tmp_path: Path) -> None:
    a = make('host = "0000:01:00.0"', name="a")
    b = make('host = "0000:01:00.1"', name="b")           # same group 1 as a's GPU
    c = make('host = "0000:03:00.0"', name="c")
    assert validate_fleet([a, b, c], ValidationContext()) == []   # different addresses
    ctx = host_ctx(tmp_path, viable_scenario)
    [d] = validate_fleet([a, b, c], ctx)
    assert d.code == "vfio-group-shared" and d.file.endswith("b.toml")
    assert "IOMMU group 1" in d.message and "'a'" in d.message and "a.toml" in d.message


def test_fleet_same_device_without_host(make) -> None:
    machines = [make('host = "0000:03:00.0"', name=f"m{i}") for i in range(4)]
    diags = validate_fleet(machines, ValidationContext())
    assert [d.file.rsplit("/", 1)[-1] for d in diags] == ["m1.toml", "m2.toml", "m3.toml"]
    assert all("'m0'" in d.message for d in diags)


def test_cli_reports_companions_of_shipped_machine(tmp_path: Path) -> None:
    nonviable_scenario(tmp_path, memlock=None)
    proc = run_vmctl("validate", "machines/x86-passthrough.toml", "--host",
                     "--sysfs-root", str(tmp_path))
    assert proc.returncode == 1
    assert "IOMMU group 1 of 0000:01:00.0 is not viable: 0000:01:00.1 [10de:10f0] on " \
           "snd_hda_intel (vfio: vfio-group-not-viable)" in proc.stdout


@pytest.mark.qemu
def test_installed_qemu_72_has_no_iommufd(tmp_path: Path) -> None:
    (tmp_path / "fd.toml").write_text(
        machine_text('host = "0000:03:00.0"\niommu = "iommufd"', name="fd"))
    proc = run_vmctl("validate", str(tmp_path / "fd.toml"), "--backend", "qemu",
                     timeout=300)
    assert proc.returncode == 1
    assert "has no 'iommufd' object type" in proc.stdout and "vfio-qemu-no-iommufd" in proc.stdout
