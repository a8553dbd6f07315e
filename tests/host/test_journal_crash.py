"""A crash anywhere in ``host apply`` or ``host undo`` leaves a journal that ``undo`` finishes.

The CLI tests stop a real ``python -m vmctl host apply --apply`` at a step boundary
(``VMCTL_JOURNAL_PAUSE=BOUNDARY:STEP`` makes it SIGSTOP itself there), ``kill -9`` it, run
``vmctl host undo`` and compare the whole fake tree with the snapshot taken before apply.
The in-process tests crash right before or right after a sysfs write without any hook, so
they show the same on the journal's public API.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.host.conftest import CRYPTO, PASSTHROUGH, handlers, kill9, sysfs_of, wait_stopped
from vmctl.host.sysfs import Sysfs, tree_snapshot

BOUNDARIES = ("before-intent", "before-write", "after-write", "after-done")


def _reversed(n: int) -> str:
    return f"{n} step{'s' if n != 1 else ''} reversed"


def _expected(boundary: str, step: int) -> int:
    """Steps whose write happened when vmctl was killed at ``boundary`` of ``step``."""
    return step if boundary in ("after-write", "after-done") else step - 1


def _kill_apply_then_undo(root: Path, machine: str, boundary: str, step: int,
                          vmctl_start, vmctl_run, uncertain: bool = False) -> None:
    before = tree_snapshot(root)
    proc = vmctl_start("host", "apply", machine, "--apply", "--sysfs-root", root,
                       env={"VMCTL_JOURNAL_PAUSE": f"{boundary}:{step}"})
    wait_stopped(proc)
    kill9(proc)
    undo = vmctl_run("host", "undo", "--sysfs-root", root)
    assert undo.code == 0, undo.err
    assert tree_snapshot(root) == before
    if uncertain:     # the undo write cannot tell: the kernel accepts it either way; said so
        assert _reversed(step) in undo.out
        assert f"step {step} was interrupted" in undo.out and "may never have taken effect" in undo.out
    else:
        assert _reversed(_expected(boundary, step)) in undo.out
    if boundary == "before-write" and not uncertain:   # found not written: said so
        assert f"step {step} had not taken effect" in undo.out
    again = vmctl_run("host", "undo", "--sysfs-root", root)
    assert again.code == 1 and "nothing to undo" in again.err


@pytest.mark.parametrize("step", [1, 4, 6])
@pytest.mark.parametrize("boundary", BOUNDARIES)
def test_kill_9_during_vfio_apply_then_undo_restores_the_tree(vfio_root: Path, boundary: str, step: int,
                                                               vmctl_start, vmctl_run) -> None:
    # step 1 writes driver_override (readable), 4 unbinds (write-only), 6 is the last probe
    _kill_apply_then_undo(vfio_root, PASSTHROUGH, boundary, step, vmctl_start, vmctl_run)


@pytest.mark.parametrize(("boundary", "step"), [(b, 2) for b in BOUNDARIES]
                         + [("before-write", 1), ("after-write", 1), ("before-write", 3)])
def test_kill_9_during_vfio_ap_apply_then_undo_restores_the_tree(ap_root: Path, boundary: str, step: int,
                                                                  vmctl_start, vmctl_run) -> None:
    # step 1 edits apmask (relative), 2 creates the mdev, 3 assigns adapter 5: unassigning
    # an adapter that is not assigned succeeds, so that step's outcome stays unknown
    _kill_apply_then_undo(ap_root, CRYPTO, boundary, step, vmctl_start, vmctl_run,
                          uncertain=(boundary, step) == ("before-write", 3))


@pytest.mark.parametrize("boundary", ["before-reverse", "after-reverse"])
def test_kill_9_during_undo_then_undo_again_finishes(vfio_root: Path, boundary: str,
                                                     vmctl_start, vmctl_run) -> None:
    before = tree_snapshot(vfio_root)
    assert vmctl_run("host", "apply", PASSTHROUGH, "--apply", "--sysfs-root", vfio_root).code == 0
    proc = vmctl_start("host", "undo", "--sysfs-root", vfio_root,
                       env={"VMCTL_JOURNAL_PAUSE": f"{boundary}:4"})
    wait_stopped(proc)                           # steps 6 and 5 are reversed, 4 is in flight
    kill9(proc)
    again = vmctl_run("host", "undo", "--sysfs-root", vfio_root)
    assert again.code == 0, again.err
    assert _reversed(4) in again.out
    assert tree_snapshot(vfio_root) == before


# -- the same on the API, without any hook ---------------------------------------------------
class Crash(BaseException):
    """The process dies here: nothing after it runs (no except, no journal update)."""


class CrashingSysfs(Sysfs):
    """Dies right before or right after the ``at``-th write."""

    def __init__(self, root: Path, at: int, when: str) -> None:
        super().__init__(root, handlers())
        self.at, self.when, self.writes = at, when, 0

    def write(self, kpath: str, value: str) -> None:
        self.writes += 1
        if self.writes == self.at and self.when == "before":
            raise Crash
        super().write(kpath, value)
        if self.writes == self.at:
            raise Crash


def _plan(sysfs: Sysfs, machine: str) -> list:
    from vmctl.config import load_machine
    from vmctl.plugins import call_flat, get_plugin_manager

    pm = get_plugin_manager()
    return call_flat(pm, "vmctl_host_steps", machine=load_machine(Path(machine), pm), sysfs=sysfs)


@pytest.mark.parametrize("when", ["before", "after"])
@pytest.mark.parametrize("step", range(1, 7))
def test_a_crash_around_any_write_is_undone(vfio_root: Path, step: int, when: str) -> None:
    from vmctl.host.journal import apply_steps, undo_last

    before = tree_snapshot(vfio_root)
    sysfs = CrashingSysfs(vfio_root, step, when)
    with pytest.raises(Crash):
        apply_steps(_plan(sysfs, PASSTHROUGH), sysfs, "x86-passthrough")
    undo_last(sysfs_of(vfio_root))
    assert tree_snapshot(vfio_root) == before
