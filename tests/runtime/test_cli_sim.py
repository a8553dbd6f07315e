"""run / ps / status / qmp / stop on the simulator, through the CLI as a user types it."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from vmctl.runtime.inspect import State, inspect

from .conftest import MACHINES, ROOT, cli, cli_ok, instance, read, state_dir

P9 = str(MACHINES / "p9-dual.toml")


def ps_json(**kw) -> dict[str, dict]:
    return {r["name"]: r for r in json.loads(cli_ok("ps", "--format", "json", **kw).stdout)}


def wait_for(pred, timeout=10.0, what="condition"):
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_run_status_qmp_stop_round_trip():
    out = cli_ok("run", P9).stdout
    assert "p9-dual: running on sim" in out
    sock = out.split("qmp: ")[1].strip()
    assert Path(sock).exists()
    inst = instance("p9-dual")
    assert oct(inst.dir.stat().st_mode & 0o777) == "0o700"
    assert read(inst.machine_path)["data"]["machine"]["name"] == "p9-dual"

    row = ps_json()["p9-dual"]
    assert (row["state"], row["backend"], row["run_state"]) == ("running", "sim", "running")

    status = json.loads(cli_ok("status", "p9-dual", "--format", "json").stdout)
    assert status["run_state"] == "running" and status["socket"] == sock
    assert status["pid"] == int((inst.dir / "pid").read_text())
    assert status["uptime"] >= 0 and status["sim"]["seed"] == 1
    assert isinstance(status["plugins"], dict)
    text = cli_ok("status", "p9-dual").stdout
    assert "run state:" in text and "qmp socket:" in text

    reply = json.loads(cli_ok("qmp", "p9-dual", "query-status").stdout)
    assert reply == {"status": "running", "singlestep": False, "running": True}

    stopped = cli_ok("stop", "p9-dual").stdout
    assert "p9-dual: stopped (quit; exit status 0)" in stopped
    assert not inst.dir.exists() and not Path(sock).exists()
    assert cli_ok("ps").stdout.strip() == "no instances"


def test_paused_run_under_another_name_then_cont():
    out = cli_ok("run", P9, "--paused", "--name", "p9-b").stdout
    assert "p9-b: paused" in out
    hmp = cli_ok("qmp", "p9-b", "human-monitor-command",
                 '{"command-line": "info status"}').stdout
    assert hmp.strip() == "VM status: paused (prelaunch)"
    cli_ok("qmp", "p9-b", "cont")
    assert ps_json()["p9-b"]["run_state"] == "running"


def test_invalid_machine_is_refused_before_anything_starts(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text(f'include = ["{MACHINES}/base/pseries.toml"]\n[machine]\nname = "bad"\n'
                   f'[irq]\nic-mod = "dual"\n')
    res = cli("run", str(bad))
    assert res.returncode == 1
    assert "ic-mod" in res.stderr and "bad.toml" in res.stderr
    assert not instance("bad").exists()


def test_racing_runs_end_with_exactly_one_winner():
    with ThreadPoolExecutor(3) as pool:
        results = list(pool.map(lambda _: cli("run", P9), range(3)))
    codes = sorted(r.returncode for r in results)
    assert codes == [0, 1, 1], [r.stderr for r in results]
    for loser in (r for r in results if r.returncode):
        assert "error: instance 'p9-dual' is" in loser.stderr
        assert "vmctl stop p9-dual" in loser.stderr
    assert inspect(instance("p9-dual")).state is State.RUNNING
    again = cli("run", P9)
    assert again.returncode == 1 and "running (sim, pid" in again.stderr


def test_killed_backend_shows_as_crashed_and_can_be_cleaned_and_rerun():
    cli_ok("run", P9)
    inst = instance("p9-dual")
    os.kill(int((inst.dir / "pid").read_text()), signal.SIGKILL)
    wait_for(lambda: inst.exit_path.exists(), what="exit.json")
    row = ps_json()["p9-dual"]
    assert row["state"] == "crashed" and row["reason"] == "killed by SIGKILL"
    text = cli_ok("status", "p9-dual").stdout
    assert "crashed (killed by SIGKILL)" in text and "last log lines:" in text
    assert "vmctl-sim: machine 'p9-dual'" in text
    res = cli("qmp", "p9-dual", "query-status")
    assert res.returncode == 1 and "crashed" in res.stderr
    assert "cleaned up crashed instance" in cli_ok("stop", "p9-dual").stdout
    cli_ok("run", P9)


def test_stale_folder_after_everything_was_killed_is_replaced_by_run():
    cli_ok("run", P9)
    inst = instance("p9-dual")
    proc = read(inst.proc_path)
    os.kill(proc["supervisor_pid"], signal.SIGKILL)
    os.kill(proc["pid"], signal.SIGKILL)
    wait_for(lambda: inspect(inst).state is State.CRASHED, what="crashed")
    assert "stale" in inspect(inst).reason
    res = cli_ok("run", P9)
    assert "note: replacing crashed instance 'p9-dual'" in res.stderr
    assert inspect(inst).state is State.RUNNING


def test_unknown_names_and_bad_arguments():
    res = cli("status", "nope")
    assert res.returncode == 1 and "no instance is running" in res.stderr
    cli_ok("run", P9, "--paused")
    res = cli("stop", "p9")
    assert res.returncode == 1 and "instances: p9-dual (running)" in res.stderr
    res = cli("qmp", "p9-dual", "query-status", "{bad")
    assert res.returncode == 2 and "not valid JSON" in res.stderr
    res = cli("qmp", "p9-dual", "query-status", "[1]")
    assert res.returncode == 2 and "must be a JSON object" in res.stderr
    res = cli("qmp", "p9-dual", "frobnicate")
    assert res.returncode == 1
    assert "CommandNotFound: The command frobnicate has not been found" in res.stderr
    assert "Traceback" not in res.stderr
    res = cli("run", P9, "--name", "Bad_Name")
    assert res.returncode == 2 and "invalid instance name" in res.stderr


def test_unwritable_state_dir_is_a_clear_error(tmp_path):
    afile = tmp_path / "afile"
    afile.write_text("")
    res = cli("run", P9, env={"VMCTL_STATE_DIR": str(afile / "state")})
    assert res.returncode == 1
    assert "is not usable" in res.stderr and "hint: set VMCTL_STATE_DIR" in res.stderr


def test_deep_state_dir_gets_a_short_socket(tmp_path):
    deep = tmp_path / ("s" * 50) / ("t" * 50)
    env = {"VMCTL_STATE_DIR": str(deep)}
    sock = cli_ok("run", P9, env=env).stdout.split("qmp: ")[1].strip()
    assert not sock.startswith(str(deep / "p9-dual")) and len(sock) <= 107
    assert json.loads(cli_ok("qmp", "p9-dual", "query-name", env=env).stdout) == \
        {"name": "p9-dual"}
    cli_ok("stop", "p9-dual", env=env)
    assert not Path(sock).exists()


def test_faults_on_one_instance_leave_the_other_untouched():
    cli_ok("run", P9, "--name", "a")
    cli_ok("run", P9, "--name", "b")
    a, b = instance("a"), instance("b")
    junk = socket.socket(socket.AF_UNIX)
    junk.connect(str(a.socket()))
    junk.sendall(b"\xff\x00garbage{{{\n")
    junk.close()
    os.kill(int((a.dir / "pid").read_text()), signal.SIGKILL)
    rows = ps_json()
    assert rows["a"]["state"] == "crashed" or rows["a"]["state"] == "stopping"
    assert rows["b"]["run_state"] == "running"
    cli_ok("stop", "a")
    assert json.loads(cli_ok("qmp", "b", "query-name").stdout) == {"name": "p9-dual"}


def test_guest_power_off_shows_as_exited():
    cli_ok("run", P9)
    wait_for(lambda: json.loads(cli_ok("qmp", "p9-dual", "__org.vmctl_query-sim").stdout)
             ["phase"] == "running", what="guest userspace")
    cli_ok("qmp", "p9-dual", "system_powerdown")
    inst = instance("p9-dual")
    wait_for(lambda: inst.exit_path.exists(), what="guest shutdown")
    row = ps_json()["p9-dual"]
    assert row["state"] == "exited"
    assert "reboot: Power down" in "\n".join(row["log_tail"])
    assert "cleaned up exited instance" in cli_ok("stop", "p9-dual").stdout


def test_foreground_follows_the_console_and_ends_on_ctrl_c():
    from .conftest import _SHIM
    from vmctl.cli import main as M

    head = ["-m", "vmctl"] if "run" in M.COMMAND_MODULES else ["-c", _SHIM]
    proc = subprocess.Popen([sys.executable, *head, "run", P9, "--foreground"], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        lines = []
        for line in proc.stdout:
            lines.append(line)
            if "Linux version" in line:
                break
        assert any(ln.startswith("qmp: ") for ln in lines)
        os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C reaches the whole foreground group
        assert proc.wait(15) == 0
        rest = proc.stdout.read()
        assert "terminating on signal 2" in rest
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert not instance("p9-dual").exists()


def test_stop_escalates_when_qmp_does_not_answer(monkeypatch):
    from vmctl.runtime import control

    cli_ok("run", P9)
    inst = instance("p9-dual")
    pid = int((inst.dir / "pid").read_text())
    os.kill(pid, signal.SIGSTOP)
    monkeypatch.setattr(control, "STOP_TIMEOUTS", {"quit": 0.5, "SIGTERM": 0.5, "SIGKILL": 5})
    report = control.stop("p9-dual")
    assert report["steps"] == ["SIGTERM", "SIGKILL"]
    assert not inst.dir.exists()
