"""The vmctl.testing kit, used the way a plugin author's tests use it."""

from __future__ import annotations

import os

import pytest

X86 = """[machine]
name = "kit-x86"
arch = "x86_64"
type = "q35"
cpu = "max"
accel = "tcg"
"""


def test_fake_pci_tree_has_the_kernels_layout(fake_sysfs):
    fake_sysfs.pci("non-viable")
    sysfs = fake_sysfs.sysfs
    assert sysfs.fake
    gpu = "/sys/bus/pci/devices/0000:01:00.0"
    assert os.readlink(sysfs.path(f"{gpu}/iommu_group")).endswith("kernel/iommu_groups/1")
    assert sysfs.listdir("/sys/kernel/iommu_groups/1/devices") == [
        "0000:00:01.0", "0000:01:00.0", "0000:01:00.1"]
    assert os.path.basename(os.readlink(sysfs.path("/sys/bus/pci/devices/0000:01:00.1/driver"))) == \
        "snd_hda_intel"


def test_writes_get_the_kernels_side_effects(fake_sysfs):
    fake_sysfs.pci("host")
    sysfs = fake_sysfs.sysfs
    nic = "/sys/bus/pci/devices/0000:03:00.0"
    sysfs.write("/sys/bus/pci/drivers/e1000e/unbind", "0000:03:00.0")
    assert not sysfs.path(f"{nic}/driver").exists()  # the fake kernel moved the device off e1000e
    with pytest.raises(OSError):
        sysfs.write("/sys/bus/pci/drivers/e1000e/unbind", "0000:03:00.0")  # not bound: ENODEV


def test_fake_ap_bus_and_matrix(fake_sysfs):
    fake_sysfs.ap("shared-apqn")
    sysfs = fake_sysfs.sysfs
    mdevs = sysfs.listdir("/sys/devices/vfio_ap/matrix/mdev_supported_types/vfio_ap-passthrough/devices")
    assert len(mdevs) == 2
    matrix = sysfs.read(f"/sys/devices/vfio_ap/matrix/{mdevs[0]}/matrix").split()
    assert matrix == ["01.0005", "01.0006", "02.0005", "02.0006"]


def test_own_attributes_and_snapshot(fake_sysfs):
    fake_sysfs.write("/sys/devices/platform/wdt/timeout", "30").symlink(
        "/sys/class/watchdog/watchdog0", "/sys/devices/platform/wdt")
    snap = fake_sysfs.snapshot()
    assert snap["/sys/devices/platform/wdt/timeout"] == "30\n"
    assert snap["/sys/class/watchdog/watchdog0"] == "-> ../../devices/platform/wdt"
    assert fake_sysfs.sysfs.fake


def test_unknown_scenarios_name_the_known_ones(fake_sysfs):
    with pytest.raises(ValueError, match="viable"):
        fake_sysfs.pci("gpu-farm")
    with pytest.raises(ValueError, match="shared-apqn"):
        fake_sysfs.ap("nope")


def test_sim_instance_answers_qmp_and_is_stopped_afterwards(sim_instance, vmctl_isolated):
    vm = sim_instance(X86, paused=True)
    assert vm.qmp.greeting["QMP"]["version"]["qemu"]["major"] == 7
    assert vm.qmp.execute("query-status")["status"] == "prelaunch"
    vm.qmp.execute("cont")
    assert vm.qmp.wait_event("RESUME")["event"] == "RESUME"
    assert vm.status()["name"] == "kit-x86"
    assert (vmctl_isolated / "kit-x86").is_dir()
    vm.stop()
    assert not (vmctl_isolated / "kit-x86").exists()


def test_sim_instance_refuses_an_invalid_machine(sim_instance):
    with pytest.raises(pytest.fail.Exception, match="not a valid machine"):
        sim_instance(X86 + '\n[irq]\nic-mode = "xive"\n')


def test_wait_event_says_what_came_instead(sim_instance):
    vm = sim_instance(X86, name="kit-wait", paused=True)
    vm.qmp.execute("cont")
    with pytest.raises(AssertionError, match="RESUME"):
        vm.qmp.wait_event("POWERDOWN", timeout=0.3)


def test_golden_argv_of_a_machine_from_toml(golden, machine_from_toml, vmctl_pm):
    from vmctl.qemu.argv import build_argv

    m = machine_from_toml(X86, files={"unused/base.toml": ""})
    golden("kit-x86.argv", "\n".join(build_argv(m, vmctl_pm).args[1:]) + "\n")
