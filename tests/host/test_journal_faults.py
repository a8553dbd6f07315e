"""A write the kernel refuses: the rollback, a rollback that fails, an undo that fails — and retries.

A sysfs attribute without write bits refuses to be opened for writing with EACCES, even for
root (kernfs checks the mode itself); :class:`KernfsSysfs` gives the fake tree that rule,
so ``chmod 0444`` on an attribute makes its write fail the way a locked-down kernel does.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

import pytest

from tests.host.conftest import PASSTHROUGH, handlers
from vmctl.errors import VmctlError
from vmctl.host.sysfs import Sysfs, tree_snapshot

DRIVERS = "/sys/bus/pci/drivers"
GPU, AUDIO = "0000:01:00.0", "0000:01:00.1"


class KernfsSysfs(Sysfs):
    """Refuses writes to attributes without write bits (EACCES), as kernfs does."""

    def write(self, kpath: str, value: str) -> None:
        p = self.path(kpath)
        if p.is_file() and not stat.S_IMODE(p.stat().st_mode) & 0o222:
            raise PermissionError(errno.EACCES, "Permission denied", kpath)
        super().write(kpath, value)


@pytest.fixture
def kernfs(vfio_root: Path, monkeypatch: pytest.MonkeyPatch) -> KernfsSysfs:
    """The tree through :class:`KernfsSysfs`, for the API and for the in-process CLI."""
    import vmctl.cli.host

    monkeypatch.setattr(vmctl.cli.host, "_sysfs", lambda root: KernfsSysfs(root, handlers()))
    return KernfsSysfs(vfio_root, handlers())


def lock(root: Path, kpath: str, locked: bool = True) -> None:
    os.chmod(root / kpath.lstrip("/"), 0o444 if locked else 0o644)


def _plan(sysfs: Sysfs) -> list:
    from vmctl.config import load_machine
    from vmctl.plugins import call_flat, get_plugin_manager

    pm = get_plugin_manager()
    return call_flat(pm, "vmctl_host_steps", machine=load_machine(Path(PASSTHROUGH), pm), sysfs=sysfs)


def test_failed_step_rolls_back_the_earlier_ones(kernfs: KernfsSysfs, vfio_root: Path) -> None:
    from vmctl.host.journal import apply_steps, history

    before = tree_snapshot(vfio_root)
    lock(vfio_root, f"{DRIVERS}/nouveau/unbind")                       # step 4 fails
    with pytest.raises(VmctlError) as info:
        apply_steps(_plan(kernfs), kernfs, "x86-passthrough")
    assert info.value.message.startswith("step 4 (")
    assert f"writing '{GPU}' to {DRIVERS}/nouveau/unbind: EACCES" in info.value.message
    assert "every earlier step was undone" in info.value.hint
    lock(vfio_root, f"{DRIVERS}/nouveau/unbind", locked=False)
    assert tree_snapshot(vfio_root) == before
    assert history(kernfs)[-1]["state"] == "rolled-back"


def test_a_failed_rollback_is_finished_by_undo_once_fixed(kernfs: KernfsSysfs, vfio_root: Path,
                                                          vmctl_run) -> None:
    from vmctl.host.journal import apply_steps, history

    before = tree_snapshot(vfio_root)
    lock(vfio_root, f"{DRIVERS}/nouveau/unbind")                       # step 4 fails …
    lock(vfio_root, f"{DRIVERS}/snd_hda_intel/bind")                   # … and so does undoing step 3
    with pytest.raises(VmctlError) as info:
        apply_steps(_plan(kernfs), kernfs, "x86-passthrough")
    hint = info.value.hint
    assert "rollback failed" in hint
    assert f"step 3 (" in hint and f"writing '{AUDIO}' to {DRIVERS}/snd_hda_intel/bind: EACCES" in hint
    assert "not reversed: steps 3, 2, 1" in hint and "vmctl host undo" in hint
    assert history(kernfs)[-1]["state"] == "rollback-failed"

    still = vmctl_run("host", "undo", "--sysfs-root", vfio_root)       # not fixed yet: same answer
    assert still.code == 1
    assert f"writing '{AUDIO}' to {DRIVERS}/snd_hda_intel/bind: EACCES" in still.err
    assert "not reversed: steps 3, 2, 1" in still.err

    lock(vfio_root, f"{DRIVERS}/snd_hda_intel/bind", locked=False)
    lock(vfio_root, f"{DRIVERS}/nouveau/unbind", locked=False)
    done = vmctl_run("host", "undo", "--sysfs-root", vfio_root)
    assert done.code == 0, done.err
    assert "3 steps reversed" in done.out                              # not 6: 4–6 never happened
    assert tree_snapshot(vfio_root) == before
    assert vmctl_run("host", "undo", "--sysfs-root", vfio_root).code == 1   # nothing left


def test_a_failed_undo_is_retried_until_done(kernfs: KernfsSysfs, vfio_root: Path, vmctl_run) -> None:
    from vmctl.host.journal import history

    before = tree_snapshot(vfio_root)
    assert vmctl_run("host", "apply", PASSTHROUGH, "--apply", "--sysfs-root", vfio_root).code == 0
    lock(vfio_root, f"{DRIVERS}/nouveau/bind")                         # undoing step 4 fails
    for _ in range(2):                                                 # and keeps failing, exactly
        failed = vmctl_run("host", "undo", "--sysfs-root", vfio_root)
        assert failed.code == 1
        assert "step 4 (" in failed.err
        assert f"writing '{GPU}' to {DRIVERS}/nouveau/bind: EACCES" in failed.err
        assert "not reversed: steps 4, 3, 2, 1" in failed.err
        assert history(kernfs)[-1]["state"] == "undo-failed"
    lock(vfio_root, f"{DRIVERS}/nouveau/bind", locked=False)
    done = vmctl_run("host", "undo", "--sysfs-root", vfio_root)
    assert done.code == 0, done.err
    assert "4 steps reversed" in done.out                              # 6 and 5 went the first time
    assert tree_snapshot(vfio_root) == before
    assert history(kernfs)[-1]["state"] == "undone"
