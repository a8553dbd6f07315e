"""Every NAME on every command follows one rule, and vmctl removes only folders it made.

Seen before this was fixed: ``vmctl stop "$PWD/v"`` removed ``v`` recursively and exited 0;
``stop ../x`` did the same relative to the state dir; ``stop .`` and ``stop ""`` deleted the
whole state dir, host journal included; ``run --name $'a\\n'`` made a folder ``a\\n``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.conftest import MACHINES, run_vmctl
from vmctl.errors import UsageError
from vmctl.runtime.instance import Instance, check_name
from vmctl.runtime.lock import InstanceLock

BAD_NAMES = ["", ".", "..", "../x", "/tmp/x", "a/b", "p9\n", "a\n", "A", "-a", "a" * 64,
             ".locks", ".host", "a b", "a\x1b]0;x\x07", "é", "p9\x00"]


@pytest.fixture
def state(tmp_path: Path) -> Path:
    s = Path(os.environ["VMCTL_STATE_DIR"])
    (s / ".host").mkdir(parents=True)
    (s / ".host" / "journal-x.json").write_text("{}")
    return s


@pytest.mark.parametrize("name", BAD_NAMES)
def test_the_name_rule_is_matched_in_full(name: str):
    with pytest.raises(UsageError) as info:
        check_name(name)
    assert "[a-z0-9][a-z0-9-]{0,62}" in info.value.message
    with pytest.raises(UsageError):
        Instance(Path("/nonexistent"), name)
    with pytest.raises(UsageError):
        InstanceLock(Path("/nonexistent"), name)


@pytest.mark.parametrize("command", ["stop", "status", "qmp", "monitor"])
@pytest.mark.parametrize("name", ["", ".", "..", "../victim", "p9\n"])
def test_bad_names_are_usage_errors_and_touch_nothing(command: str, name: str, state: Path,
                                                        tmp_path: Path):
    victim = state.parent / "victim"
    victim.mkdir()
    (victim / "keep").write_text("mine")
    args = [command, name] + (["query-status"] if command == "qmp" else [])
    proc = run_vmctl(*args)
    assert proc.returncode == 2, proc.stderr
    assert "a NAME must match [a-z0-9][a-z0-9-]{0,62}" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert (victim / "keep").read_text() == "mine"
    assert (state / ".host" / "journal-x.json").exists()
    assert not any(p.name.endswith(".lock") for p in tmp_path.rglob("*") if ".locks" not in p.parts)


def test_stop_of_an_absolute_path_removes_nothing(state: Path, tmp_path: Path):
    v = tmp_path / "v"
    v.mkdir()
    (v / "data").write_text("x")
    proc = run_vmctl("stop", str(v))
    assert proc.returncode == 2
    assert (v / "data").exists()


def test_stop_leaves_a_folder_vmctl_did_not_make(state: Path):
    mine = state / "mydir"
    mine.mkdir()
    (mine / "proc.json").write_text('{"pid": 1, "supervisor_pid": 1}')
    proc = run_vmctl("stop", "mydir")
    assert proc.returncode == 1
    assert "was not created by vmctl" in proc.stderr
    assert (mine / "proc.json").exists()


def test_a_symlink_in_the_state_dir_is_not_an_instance(state: Path, tmp_path: Path):
    target = tmp_path / "elsewhere"
    target.mkdir()
    (target / ".vmctl-instance").write_text("")
    (target / "data").write_text("x")
    (state / "evil").symlink_to(target)
    proc = run_vmctl("stop", "evil")
    assert proc.returncode == 1
    assert (target / "data").exists()
    assert not Instance(state, "evil").remove()
    assert (target / "data").exists()


def test_remove_does_not_follow_links_inside_the_folder(state: Path, tmp_path: Path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "data").write_text("x")
    inst = Instance(state, "m1")
    inst.create({"name": "m1", "socket": str(outside / "data")}, {})
    (inst.dir / "link").symlink_to(outside)
    assert inst.remove()
    assert not inst.dir.exists()
    assert (outside / "data").read_text() == "x"   # neither the link's target nor a fake "socket"


def test_run_name_with_a_newline_or_empty_is_refused(state: Path):
    for name in ("a\n", ""):
        proc = run_vmctl("run", str(MACHINES / "p9-dual.toml"), "--name", name)
        assert proc.returncode == 2, proc.stderr
        assert "a NAME must match" in proc.stderr
    assert [p.name for p in state.iterdir()] == [".host"]


def test_machine_name_with_a_trailing_newline_is_invalid(tmp_path: Path):
    f = tmp_path / "m.toml"
    f.write_text('include = ["%s"]\n[machine]\nname = "p9\\n"\n' % (MACHINES / "base" / "pseries.toml"))
    proc = run_vmctl("validate", str(f))
    assert proc.returncode == 1
    assert "machine.name" in proc.stdout and f"{f.name}:3" in proc.stdout
