"""apply → undo restores a fake tree byte for byte; a failed step rolls back the earlier ones."""

from __future__ import annotations

from vmctl.host.sysfs import tree_snapshot as snapshot

import errno
import stat
from pathlib import Path

import pytest

from vmctl.errors import VmctlError
from vmctl.host.journal import apply_steps, history, journal_path, undo_last
from vmctl.host.sysfs import FakeKernelHandler, Sysfs, mark_fake
from vmctl.types import HostStep, HostWrite




def _bind(sysfs: Sysfs, path: str, value: str) -> None:
    """The kernel's ``drivers/X/bind``: refuse a busy device, else move its driver link."""
    dev = f"/sys/bus/pci/devices/{value.strip()}"
    if not sysfs.exists(dev):
        raise OSError(errno.ENODEV, "No such device")
    if sysfs.readlink_name(f"{dev}/driver"):
        raise OSError(errno.EBUSY, "Device or resource busy")
    driver = path.split("/")[-2]
    sysfs.raw_symlink(f"{dev}/driver", f"/sys/bus/pci/drivers/{driver}")


def _unbind(sysfs: Sysfs, path: str, value: str) -> None:
    sysfs.raw_unlink(f"/sys/bus/pci/devices/{value.strip()}/driver")


HANDLERS = [FakeKernelHandler("/sys/bus/pci/drivers/*/bind", _bind),
            FakeKernelHandler("/sys/bus/pci/drivers/*/unbind", _unbind)]


@pytest.fixture
def tree(tmp_path: Path) -> Sysfs:
    root = tmp_path / "root"
    mark_fake(root)
    s = Sysfs(root, HANDLERS)
    for drv in ("e1000e", "vfio-pci"):
        for f in ("bind", "unbind"):
            s.raw_write(f"/sys/bus/pci/drivers/{drv}/{f}", "")
    s.raw_write("/sys/bus/pci/devices/0000:03:00.0/driver_override", "(null)")
    s.raw_symlink("/sys/bus/pci/devices/0000:03:00.0/driver", "/sys/bus/pci/drivers/e1000e")
    return Sysfs(root, HANDLERS)


def steps(dev: str = "0000:03:00.0") -> list[HostStep]:
    base = f"/sys/bus/pci/devices/{dev}"
    return [
        HostStep("set driver_override", HostWrite(f"{base}/driver_override", "vfio-pci"),
                 (HostWrite(f"{base}/driver_override", "(null)"),), plugin="test"),
        HostStep("unbind from e1000e", HostWrite("/sys/bus/pci/drivers/e1000e/unbind", dev),
                 (HostWrite("/sys/bus/pci/drivers/e1000e/bind", dev),), plugin="test"),
        HostStep("bind to vfio-pci", HostWrite("/sys/bus/pci/drivers/vfio-pci/bind", dev),
                 (HostWrite("/sys/bus/pci/drivers/vfio-pci/unbind", dev),), plugin="test"),
    ]


def test_apply_then_undo_restores_the_tree_byte_for_byte(tree: Sysfs):
    before = snapshot(tree.root)
    apply_steps(steps(), tree, "m")
    assert tree.readlink_name("/sys/bus/pci/devices/0000:03:00.0/driver") == "vfio-pci"
    assert snapshot(tree.root) != before
    tx = undo_last(tree)
    assert tx is not None and tx["state"] == "undone"
    assert snapshot(tree.root) == before
    assert undo_last(tree) is None  # nothing left


def test_failed_step_rolls_back_and_names_the_errno(tree: Sysfs):
    before = snapshot(tree.root)
    bad = steps()[:2] + [HostStep("bind missing device", HostWrite("/sys/bus/pci/drivers/vfio-pci/bind",
                                                                    "0000:09:00.0"), (), plugin="test")]
    with pytest.raises(VmctlError) as info:
        apply_steps(bad, tree, "m")
    assert "step 3 (bind missing device) failed" in info.value.message and "ENODEV" in info.value.message
    assert "every earlier step was undone" in info.value.hint
    assert snapshot(tree.root) == before
    assert history(tree)[-1]["state"] == "rolled-back"


def test_journal_is_private(tree: Sysfs):
    apply_steps(steps(), tree, "m")
    path = journal_path(tree)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700


def test_paths_cannot_escape_the_root(tree: Sysfs):
    with pytest.raises(ValueError):
        tree.path("/sys/../../etc/passwd")


def test_journal_is_not_taken_for_an_instance(tree: Sysfs):
    from vmctl.runtime.instance import list_instances

    apply_steps(steps(), tree, "m")
    from vmctl.paths import state_dir

    assert list_instances(state_dir()) == []


def test_readable_files_are_recorded_before_and_after_each_write(tree: Sysfs):
    apply_steps(steps(), tree, "m")
    tx = history(tree)[-1]
    override = "/sys/bus/pci/devices/0000:03:00.0/driver_override"
    first, unbind, bind = tx["steps"]
    assert [s["state"] for s in tx["steps"]] == ["done", "done", "done"]
    assert first["before"] == {override: "(null)"} and first["after"] == {override: "vfio-pci"}
    assert unbind["before"] == unbind["after"] == bind["before"] == bind["after"] == {}  # write-only
    assert tx["expect"] == {override: "vfio-pci"}


def test_each_intent_is_durable_before_its_write(tree: Sysfs, monkeypatch: pytest.MonkeyPatch):
    """Before every sysfs write the journal on disk says "intent" for that step, and the
    file and its folder were fsync'd after it was written."""
    import json
    import os

    events: list[object] = []
    real_fsync = os.fsync

    def spy(fd: int) -> None:
        events.append("fsync-dir" if stat.S_ISDIR(os.fstat(fd).st_mode) else "fsync-file")
        real_fsync(fd)

    path = journal_path(tree)

    class Watching(Sysfs):
        def write(self, kpath: str, value: str) -> None:
            on_disk = json.loads(path.read_text())["transactions"][-1]["steps"]
            events.append([s["state"] for s in on_disk])
            super().write(kpath, value)

    monkeypatch.setattr(os, "fsync", spy)
    apply_steps(steps(), Watching(tree.root, HANDLERS), "m")
    writes = [i for i, e in enumerate(events) if isinstance(e, list)]
    assert [events[i] for i in writes] == [["intent", "planned", "planned"], ["done", "intent", "planned"],
                                           ["done", "done", "intent"]]
    assert all(events[i - 2:i] == ["fsync-file", "fsync-dir"] for i in writes)


def test_the_lock_is_not_reentrant(tree: Sysfs):
    from vmctl.host.journal import locked

    with locked(tree):
        with pytest.raises(RuntimeError, match="already held by this process"):
            apply_steps(steps(), tree, "m")
    apply_steps(steps(), tree, "m")
