"""``vmctl plan --backend qemu`` is the command ``run --backend qemu`` executes, to the byte.

Compared with ``/proc/PID/cmdline`` of the QEMU that ``run`` started: the same options in
the same order, the real per-instance paths (also when the state dir is so deep that the
QMP socket moves to the short fallback folder), and provenance for what the runtime adds.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from tests.conftest import ROOT, run_vmctl

pytestmark = pytest.mark.qemu

MACHINE = ROOT / "machines" / "p9-dual.toml"


@pytest.fixture(autouse=True)
def _qemu() -> None:
    if shutil.which("qemu-system-ppc64") is None:
        pytest.fail("qemu-system-ppc64 is not installed: apt-get install -y --no-install-recommends "
                    "qemu-system-ppc (.ci/run installs it)")


def cmdline(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/cmdline").read_bytes().rstrip(b"\0").decode().split("\0")


def plan_then_run(name: str, env: dict[str, str] | None = None) -> tuple[dict, list[str]]:
    planned = run_vmctl("plan", str(MACHINE), "--backend", "qemu", "--name", name, "--paused",
                        "--format", "json", env=env, check=True)
    plan = json.loads(planned.stdout)
    run_vmctl("run", str(MACHINE), "--backend", "qemu", "--name", name, "--paused", env=env,
              check=True)
    try:
        status = json.loads(run_vmctl("status", name, "--format", "json", env=env,
                                      check=True).stdout)
        return plan, cmdline(status["pid"])
    finally:
        run_vmctl("stop", name, "--force", env=env)


def test_plan_is_what_run_executes(tmp_path):
    plan, running = plan_then_run("plan-eq")
    assert plan["argv"] == running
    assert plan["backend"] == "qemu" and running[-1] == "-S"
    runtime = [u for u in plan["argv_sources"] if u["sources"][0]["key"] == "runtime"]
    assert [u["args"][0] for u in runtime][:1] == ["-qmp"]
    assert all(u["sources"] == [{"plugin": "vmctl", "key": "runtime",
                                 "file": "run --backend qemu", "line": 0}] for u in runtime)
    machine_part = [a for u in plan["argv_sources"] if u not in runtime for a in u["args"]]
    assert machine_part[1:] == json.loads(run_vmctl("export", str(MACHINE), "-f", "argv",
                                                    check=True).stdout)[1:]


def test_plan_is_what_run_executes_in_a_deep_state_dir(tmp_path):
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    deep.mkdir(parents=True)
    env = {"VMCTL_STATE_DIR": str(deep)}
    plan, running = plan_then_run("plan-deep", env)
    assert plan["argv"] == running
    monitor = Path(running[running.index("-qmp") + 1].split(":", 1)[1].split(",")[0])
    assert str(deep) not in str(monitor)  # QEMU's sockets moved to the short fallback folder
    # stop removed every socket of the instance kept there (QMP, monitor, console)
    assert sorted(monitor.parent.glob(monitor.stem + ".*")) == []


def test_plan_creates_nothing(tmp_path):
    deep = tmp_path / ("f" * 60) / ("g" * 60)
    env = {"VMCTL_STATE_DIR": str(deep)}
    run_vmctl("plan", str(MACHINE), "--backend", "qemu", "--format", "json", env=env, check=True)
    assert not deep.exists()


def test_name_and_paused_need_the_qemu_backend_and_a_valid_name():
    proc = run_vmctl("plan", str(MACHINE), "--name", "x")
    assert proc.returncode == 2 and "--backend qemu" in proc.stderr
    proc = run_vmctl("plan", str(MACHINE), "--backend", "qemu", "--name", "../x")
    assert proc.returncode == 2 and "invalid instance name" in proc.stderr
    assert "Traceback" not in proc.stderr and not os.path.exists("../x")
