"""The journal file itself: damaged contents, symlinks, modes, and journals of older vmctl."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from tests.conftest import run_vmctl
from tests.host.conftest import PASSTHROUGH, sysfs_of
from vmctl.host.sysfs import tree_snapshot

DAMAGED = {
    "not-json": '{"root": "/", "transactions": [',
    "empty-file": "",
    "a-list": "[]",
    "no-transactions": '{"root": "/"}',
    "transactions-not-a-list": '{"root": "/", "transactions": {"1": {}}}',
    "transaction-without-steps": json.dumps(
        {"root": "/", "transactions": [{"id": 1, "machine": "m", "time": 0, "state": "applied"}]}),
    "wrong-types": json.dumps(
        {"root": "/", "transactions": [{"id": "1", "machine": 5, "time": "now", "state": "applied",
                                        "steps": [{"description": 1, "plugin": "", "write": "/sys/x",
                                                   "undo": {}, "done": "yes"}]}]}),
    "a-step-not-an-object": json.dumps(
        {"root": "/", "transactions": [{"id": 1, "machine": "m", "time": 0, "state": "applied",
                                        "steps": ["echo 1 > /sys/x"]}]}),
    "unknown-state": json.dumps(
        {"version": 2, "root": "/", "transactions": [{"id": 1, "machine": "m", "time": 0,
                                                      "state": "half-done", "steps": []}]}),
    "newer-version": json.dumps({"version": 99, "root": "/", "transactions": []}),
}


def _mode(p: Path) -> int:
    return stat.S_IMODE(os.lstat(p).st_mode)


def _journal(root: Path) -> Path:
    from vmctl.host.journal import journal_path

    return journal_path(sysfs_of(root))


@pytest.mark.parametrize("shape", list(DAMAGED))
def test_a_damaged_journal_is_a_clear_error(vfio_root: Path, shape: str, vmctl_run) -> None:
    path = _journal(vfio_root)
    path.write_text(DAMAGED[shape])
    before = tree_snapshot(vfio_root)
    for args in (("host", "undo"), ("host", "apply", PASSTHROUGH, "--apply")):
        r = vmctl_run(*args, "--sysfs-root", vfio_root)
        assert r.code == 1, r.out
        assert r.err.startswith(f"error: host journal {path} ")
        assert "hint: nothing was changed" in r.err and f"mv {path} " in r.err
    assert tree_snapshot(vfio_root) == before
    assert path.read_text() == DAMAGED[shape]


def test_a_damaged_journal_prints_no_traceback_from_the_real_cli(vfio_root: Path) -> None:
    _journal(vfio_root).write_text('[]')
    r = run_vmctl("host", "undo", "--sysfs-root", str(vfio_root))
    assert r.returncode == 1 and r.stderr.startswith("error: host journal ")
    assert "Traceback" not in r.stderr


def test_state_dir_is_created_0700_by_host_apply(vfio_root: Path, vmctl_run) -> None:
    state = Path(os.environ["VMCTL_STATE_DIR"])
    assert not state.exists()
    assert vmctl_run("host", "apply", PASSTHROUGH, "--apply", "--sysfs-root", vfio_root).code == 0
    assert _mode(state) == 0o700
    assert _mode(state / ".host") == 0o700
    assert _mode(_journal(vfio_root)) == 0o600


def test_an_existing_host_dir_is_made_private(vfio_root: Path, vmctl_run) -> None:
    host = Path(os.environ["VMCTL_STATE_DIR"]) / ".host"
    host.mkdir(parents=True, mode=0o755)
    os.chmod(host, 0o755)
    assert vmctl_run("host", "apply", PASSTHROUGH, "--apply", "--sysfs-root", vfio_root).code == 0
    assert _mode(host) == 0o700


def test_a_symlink_at_state_host_is_refused_and_its_target_untouched(vfio_root: Path, tmp_path: Path,
                                                                     vmctl_run) -> None:
    state = Path(os.environ["VMCTL_STATE_DIR"])
    state.mkdir(mode=0o700)
    target = tmp_path / "elsewhere"
    target.mkdir()
    os.chmod(target, 0o755)
    (state / ".host").symlink_to(target)
    before = tree_snapshot(vfio_root)
    for args in (("host", "apply", PASSTHROUGH, "--apply"), ("host", "undo")):
        r = vmctl_run(*args, "--sysfs-root", vfio_root)
        assert r.code == 1
        assert r.err.startswith(f"error: {state / '.host'} is a symlink")
    assert _mode(target) == 0o755 and list(target.iterdir()) == []
    assert tree_snapshot(vfio_root) == before


@pytest.mark.parametrize("which", ["journal", "lock"])
def test_a_symlink_at_the_journal_or_its_lock_is_refused(vfio_root: Path, tmp_path: Path, which: str,
                                                         vmctl_run) -> None:
    journal = _journal(vfio_root)
    link = journal if which == "journal" else journal.with_suffix(".lock")
    target = tmp_path / "other-file"
    target.write_text('{"root": "", "transactions": []}\n')
    os.chmod(target, 0o644)
    link.symlink_to(target)
    before = tree_snapshot(vfio_root)
    r = vmctl_run("host", "apply", PASSTHROUGH, "--apply", "--sysfs-root", vfio_root)
    assert r.code == 1
    assert r.err.startswith(f"error: {link} is a symlink")
    assert target.read_text() == '{"root": "", "transactions": []}\n' and _mode(target) == 0o644
    assert link.is_symlink()
    assert tree_snapshot(vfio_root) == before


def test_a_journal_written_by_an_older_vmctl_is_still_undone(vfio_root: Path, vmctl_run) -> None:
    """Version 1 (no ``version`` key; a ``done`` flag per step) is read and undone."""
    from tests.host.test_journal_crash import _plan

    sysfs = sysfs_of(vfio_root)
    before = tree_snapshot(vfio_root)
    steps = _plan(sysfs, PASSTHROUGH)
    for s in steps:
        sysfs.write(s.write.path, s.write.value)
    _journal(vfio_root).write_text(json.dumps({"root": str(vfio_root), "transactions": [
        {"id": 1, "machine": "x86-passthrough", "time": 0.0, "state": "applied",
         "steps": [{"description": s.description, "plugin": s.plugin, "write": [s.write.path, s.write.value],
                    "undo": [[u.path, u.value] for u in s.undo], "done": True} for s in steps]}]}))
    r = vmctl_run("host", "undo", "--sysfs-root", vfio_root)
    assert r.code == 0, r.err
    assert "6 steps reversed" in r.out
    assert tree_snapshot(vfio_root) == before
