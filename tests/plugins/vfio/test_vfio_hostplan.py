"""Binding a machine's IOMMU groups to vfio-pci: plan, apply, undo (through the CLI)."""

from __future__ import annotations

from vmctl.host.sysfs import tree_snapshot as snapshot

import json
from pathlib import Path

import pytest

from tests.conftest import run_vmctl
from vmctl.errors import VmctlError
from vmctl.host.sysfs import Sysfs
from vmctl_vfio.fakesys import fake_kernel as handlers
from vmctl_vfio.fakesys import (build_host, desktop, host_scenario, no_iommu_scenario,
                                viable_scenario)
from vmctl_vfio.host import read_host
from vmctl_vfio.hostplan import host_steps as plan_steps

from .test_vfio_validate import machine_text

GPU, AUDIO, NIC = "0000:01:00.0", "0000:01:00.1", "0000:03:00.0"




@pytest.fixture
def gpu_machine(machine_from_toml):
    return machine_from_toml(machine_text('host = "0000:01:00.0"'))


def test_steps_override_all_then_unbind_all_then_probe(gpu_machine, tmp_path: Path) -> None:
    host_scenario(tmp_path)
    steps = plan_steps(gpu_machine, Sysfs(tmp_path, handlers()))
    assert [(s.write.path.rsplit("/", 1)[-1], s.write.value) for s in steps] == [
        ("driver_override", "vfio-pci"), ("driver_override", "vfio-pci"),
        ("unbind", AUDIO), ("unbind", GPU), ("drivers_probe", AUDIO), ("drivers_probe", GPU)]
    assert steps[0].write.path == f"/sys/bus/pci/devices/{AUDIO}/driver_override"
    assert "group 1 companion of device[0]" in steps[0].description
    unbind_gpu = steps[3]
    assert unbind_gpu.write.path == "/sys/bus/pci/drivers/nouveau/unbind"
    assert [(u.path, u.value) for u in unbind_gpu.undo] == [
        (f"/sys/bus/pci/devices/{GPU}/driver_override", ""),
        ("/sys/bus/pci/drivers/nouveau/bind", GPU)]
    assert [(u.path, u.value) for u in steps[5].undo] == [
        ("/sys/bus/pci/drivers/vfio-pci/unbind", GPU)]
    assert all(s.key == "device[0].host" for s in steps)


def test_ready_groups_need_nothing(gpu_machine, tmp_path: Path) -> None:
    viable_scenario(tmp_path)
    assert plan_steps(gpu_machine, Sysfs(tmp_path, handlers())) == []


def test_dma_safe_companions_are_left_alone(gpu_machine, tmp_path: Path) -> None:
    build_host(tmp_path, desktop(gpu="nouveau", audio="pci-stub"))
    steps = plan_steps(gpu_machine, Sysfs(tmp_path, handlers()))
    assert {s.write.value for s in steps if s.write.path.endswith(("unbind", "probe"))} == {GPU}


def test_unbound_device_and_original_override_come_back(machine_from_toml,
                                                        tmp_path: Path) -> None:
    root = tmp_path / "host"
    build_host(root, desktop(nic=None))
    fs = Sysfs(root, handlers())
    fs.raw_write(f"/sys/bus/pci/devices/{NIC}/driver_override", "e1000e")
    before = snapshot(root)
    steps = plan_steps(machine_from_toml(machine_text(f'host = "{NIC}"')), fs)
    assert [s.write.path.rsplit("/", 1)[-1] for s in steps] == ["driver_override",
                                                                 "drivers_probe"]
    for s in steps:
        fs.write(s.write.path, s.write.value)
    assert read_host(fs).vfio_bound(NIC)
    for s in reversed(steps):
        for u in s.undo:
            fs.write(u.path, u.value)
    assert snapshot(root) == before


@pytest.mark.parametrize("scenario, match", [
    (no_iommu_scenario, "IOMMU is off"),
    (lambda root: build_host(root, desktop(), vfio=False), "vfio-pci driver is not loaded")])
def test_unpreparable_hosts_are_refused(gpu_machine, tmp_path: Path, scenario, match) -> None:
    scenario(tmp_path)
    with pytest.raises(VmctlError, match=match):
        plan_steps(gpu_machine, Sysfs(tmp_path, handlers()))


def test_missing_device_is_refused(machine_from_toml, tmp_path: Path) -> None:
    host_scenario(tmp_path)
    m = machine_from_toml(machine_text('host = "0000:09:00.0"'))
    with pytest.raises(VmctlError, match="no PCI device 0000:09:00.0"):
        plan_steps(m, Sysfs(tmp_path, handlers()))


def test_cli_plan_apply_undo_restores_the_tree_byte_for_byte(tmp_path: Path) -> None:
    root = tmp_path / "host"
    host_scenario(root, memlock=None)
    before = snapshot(root)
    dry = run_vmctl("host", "apply", "machines/x86-passthrough.toml", "--sysfs-root", str(root),
                    check=True)
    assert "dry run: nothing written" in dry.stdout and "6 steps" in dry.stdout
    assert snapshot(root) == before
    plan = json.loads(run_vmctl("plan", "machines/x86-passthrough.toml", "--sysfs-root",
                                str(root), "--format", "json", check=True).stdout)
    assert len(plan["host_steps"]) == 6 and plan["host_problem"] is None
    invalid = run_vmctl("validate", "machines/x86-passthrough.toml", "--host",
                        "--sysfs-root", str(root))
    assert invalid.returncode == 1
    run_vmctl("host", "apply", "machines/x86-passthrough.toml", "--sysfs-root", str(root),
              "--apply", check=True)
    after = read_host(Sysfs(root))
    assert after.viability(1).viable and after.vfio_nodes == {1}
    assert after.devices[GPU].driver == after.devices[AUDIO].driver == "vfio-pci"
    run_vmctl("validate", "machines/x86-passthrough.toml", "--host", "--sysfs-root", str(root),
              check=True)
    again = run_vmctl("host", "apply", "machines/x86-passthrough.toml", "--sysfs-root",
                      str(root), check=True)
    assert "needs no change" in again.stdout
    run_vmctl("host", "undo", "--sysfs-root", str(root), check=True)
    assert snapshot(root) == before
