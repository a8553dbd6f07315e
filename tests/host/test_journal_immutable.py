"""Really immutable files (``chattr +i``, EPERM even for root) in the way of apply and undo.

No emulation: the fake tree's file is made immutable on the real file system, and the real
CLI runs.  A refused step rolls back the earlier ones; a refused undo write leaves the
transaction to retry, and once the file is writable again ``undo`` finishes the job and the
tree is as it was before ``apply``.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.host.conftest import PASSTHROUGH
from vmctl.host.sysfs import tree_snapshot

AUDIO_OVERRIDE = "sys/bus/pci/devices/0000:01:00.1/driver_override"
GPU_OVERRIDE = "sys/bus/pci/devices/0000:01:00.0/driver_override"


@pytest.fixture
def chattr(vfio_root: Path):
    made: list[Path] = []

    def set_immutable(rel: str, on: bool = True) -> None:
        path = vfio_root / rel
        proc = subprocess.run(["chattr", "+i" if on else "-i", str(path)], capture_output=True, text=True)
        assert proc.returncode == 0, f"chattr on {path}: {proc.stderr} (needs root and ext4/xfs/btrfs)"
        if on:
            made.append(path)

    assert shutil.which("chattr"), "chattr comes with e2fsprogs, in Debian's base system"
    yield set_immutable
    for p in made:
        subprocess.run(["chattr", "-i", str(p)], capture_output=True)


def test_an_immutable_attribute_fails_apply_and_rolls_back(vfio_root: Path, chattr, vmctl_run):
    before = tree_snapshot(vfio_root)
    chattr(GPU_OVERRIDE)
    ran = vmctl_run("host", "apply", PASSTHROUGH, "--apply", "--sysfs-root", vfio_root)
    assert ran.code == 1
    assert "step 2" in ran.err and "EPERM" in ran.err and "/0000:01:00.0/driver_override" in ran.err
    chattr(GPU_OVERRIDE, on=False)
    assert tree_snapshot(vfio_root) == before


def test_an_immutable_undo_target_is_retried_until_done(vfio_root: Path, chattr, vmctl_run):
    before = tree_snapshot(vfio_root)
    assert vmctl_run("host", "apply", PASSTHROUGH, "--apply", "--sysfs-root", vfio_root).code == 0
    chattr(AUDIO_OVERRIDE)
    failed = vmctl_run("host", "undo", "--sysfs-root", vfio_root)
    assert failed.code == 1
    assert "/0000:01:00.1/driver_override" in failed.err and "EPERM" in failed.err
    again = vmctl_run("host", "undo", "--sysfs-root", vfio_root)
    assert again.code == 1 and "EPERM" in again.err  # still refused, still not forgotten
    chattr(AUDIO_OVERRIDE, on=False)
    done = vmctl_run("host", "undo", "--sysfs-root", vfio_root)
    assert done.code == 0, done.err
    assert tree_snapshot(vfio_root) == before
    assert vmctl_run("host", "undo", "--sysfs-root", vfio_root).code == 1  # nothing left
