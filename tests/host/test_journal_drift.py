"""``undo`` does not silently overwrite what someone else changed since ``apply``."""

from __future__ import annotations

from pathlib import Path

from tests.host.conftest import CRYPTO, PASSTHROUGH, sysfs_of
from vmctl.host.sysfs import tree_snapshot

OVERRIDE = "/sys/bus/pci/devices/0000:01:00.0/driver_override"


def test_undo_refuses_a_changed_value_and_force_reverses_anyway(vfio_root: Path, vmctl_run) -> None:
    before = tree_snapshot(vfio_root)
    assert vmctl_run("host", "apply", PASSTHROUGH, "--apply", "--sysfs-root", vfio_root).code == 0
    sysfs_of(vfio_root).write(OVERRIDE, "pci-stub")          # someone else, after apply
    drifted = tree_snapshot(vfio_root)
    refused = vmctl_run("host", "undo", "--sysfs-root", vfio_root)
    assert refused.code == 1
    assert f"{OVERRIDE}: vmctl wrote 'vfio-pci', now it is 'pci-stub'" in refused.err
    assert "--force" in refused.err
    assert tree_snapshot(vfio_root) == drifted                # nothing was reversed
    forced = vmctl_run("host", "undo", "--force", "--sysfs-root", vfio_root)
    assert forced.code == 0, forced.err
    assert "6 steps reversed" in forced.out
    assert tree_snapshot(vfio_root) == before


def test_undo_refuses_a_changed_ap_mask(ap_root: Path, vmctl_run) -> None:
    assert vmctl_run("host", "apply", CRYPTO, "--apply", "--sysfs-root", ap_root).code == 0
    sysfs = sysfs_of(ap_root)
    ours = sysfs.read("/sys/bus/ap/apmask")
    sysfs.write("/sys/bus/ap/apmask", "-7")
    refused = vmctl_run("host", "undo", "--sysfs-root", ap_root)
    assert refused.code == 1
    assert f"/sys/bus/ap/apmask: vmctl wrote '{ours}', now it is '{sysfs.read('/sys/bus/ap/apmask')}'" \
        in refused.err
