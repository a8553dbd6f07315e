"""Concurrent ``host apply --apply`` on one sysfs root: one waits, both are journaled, undo restores."""

from __future__ import annotations

import os
import selectors
import signal
import time
from pathlib import Path

from tests.host.conftest import PASSTHROUGH, finish, sysfs_of, wait_stopped
from vmctl.host.sysfs import tree_snapshot


def _line_with(stream, word: str, timeout: float) -> str:
    """The first line of ``stream`` containing ``word`` ("" when none comes in time)."""
    deadline = time.monotonic() + timeout
    sel = selectors.DefaultSelector()
    sel.register(stream, selectors.EVENT_READ)
    try:
        while (left := deadline - time.monotonic()) > 0 and sel.select(left):
            line = stream.readline()
            if not line or word in line:
                return line
        return ""
    finally:
        sel.close()


def test_a_second_apply_waits_for_the_first_then_plans_against_its_result(
        vfio_root: Path, vmctl_start, vmctl_run) -> None:
    from vmctl.host.journal import history

    before = tree_snapshot(vfio_root)
    first = vmctl_start("host", "apply", PASSTHROUGH, "--apply", "--sysfs-root", vfio_root,
                        env={"VMCTL_JOURNAL_PAUSE": "after-write:3"})
    wait_stopped(first)                          # holds the lock, half-way through its steps
    second = vmctl_start("host", "apply", PASSTHROUGH, "--apply", "--sysfs-root", vfio_root)
    line = _line_with(second.stderr, "waiting", timeout=20)
    assert "waiting" in line and str(first.pid) in line, line
    time.sleep(0.3)
    assert second.poll() is None                 # still waiting: it has not planned yet
    os.kill(first.pid, signal.SIGCONT)
    done1, done2 = finish(first), finish(second)
    assert done1.code == 0 and "applied 6 steps" in done1.out, done1.err
    assert done2.code == 0 and "needs no change" in done2.out, done2.err   # planned on the new state
    assert [tx["state"] for tx in history(sysfs_of(vfio_root))] == ["applied"]
    assert vmctl_run("host", "undo", "--sysfs-root", vfio_root).code == 0
    assert tree_snapshot(vfio_root) == before


def test_two_applies_started_at_once_are_both_journaled(tmp_path: Path, nic_machine: str,
                                                        vmctl_start, vmctl_run) -> None:
    from vmctl.host.journal import history
    from vmctl_vfio.fakesys import host_scenario

    for round_ in range(4):
        root = tmp_path / f"round-{round_}"
        host_scenario(root, memlock=None)
        before = tree_snapshot(root)
        procs = [vmctl_start("host", "apply", m, "--apply", "--sysfs-root", root)
                 for m in (PASSTHROUGH, nic_machine)]
        for p in procs:
            r = finish(p)
            assert r.code == 0, r.err
        txs = history(sysfs_of(root))
        assert sorted(tx["machine"] for tx in txs) == ["x86-nic", "x86-passthrough"], round_
        assert [tx["state"] for tx in txs] == ["applied", "applied"]
        for _ in txs:
            undo = vmctl_run("host", "undo", "--sysfs-root", root)
            assert undo.code == 0, undo.err
        assert tree_snapshot(root) == before, round_
        assert vmctl_run("host", "undo", "--sysfs-root", root).code == 1
