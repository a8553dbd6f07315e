"""The qemu backend on the real QEMU 7.2 from Debian (installed by .ci/run)."""

from __future__ import annotations

import json
import os
import shutil
import signal

import pytest

from .conftest import MACHINES, cli, cli_ok, instance

pytestmark = pytest.mark.qemu
P9 = str(MACHINES / "p9-dual.toml")


@pytest.fixture(scope="session")
def caps_cache(tmp_path_factory):
    return str(tmp_path_factory.mktemp("caps-cache"))


@pytest.fixture(autouse=True)
def _real_qemu(monkeypatch, caps_cache):
    if shutil.which("qemu-system-ppc64") is None:
        pytest.fail("qemu-system-ppc64 is not installed: these tests need real QEMU "
                    "(apt-get install --no-install-recommends qemu-system-ppc; .ci/run does it)")
    monkeypatch.setenv("VMCTL_CACHE_DIR", caps_cache)


def test_run_status_qmp_stop_on_real_qemu():
    out = cli_ok("run", "--backend", "qemu", P9, "--paused").stdout
    assert "p9-dual: paused on qemu" in out
    inst = instance("p9-dual")
    sock = inst.socket()
    assert oct(os.stat(sock).st_mode & 0o777) == "0o600"
    status = json.loads(cli_ok("status", "p9-dual", "--format", "json").stdout)
    assert status["backend"] == "qemu" and status["run_state"] == "prelaunch"
    assert status["qmp"]["qemu"]["major"] == 7
    assert status["pid"] == int((inst.dir / "pid").read_text())
    reply = json.loads(cli_ok("qmp", "p9-dual", "query-status").stdout)
    assert reply == {"status": "prelaunch", "singlestep": False, "running": False}
    assert json.loads(cli_ok("qmp", "p9-dual", "query-name").stdout) == {"name": "p9-dual"}
    argv = json.loads((inst.dir / "instance.json").read_text())["argv"]
    assert argv[argv.index("-action") + 1] == "panic=pause"
    assert "p9-dual: stopped (quit; exit status 0)" in cli_ok("stop", "p9-dual").stdout
    assert not inst.dir.exists()


def test_qemu_that_fails_at_start_up_is_reported_with_its_own_line(tmp_path):
    big = tmp_path / "big.toml"  # pseries wants memory in 256 MiB steps; vmctl does not check
    big.write_text(f'include = ["{MACHINES}/p9-dual.toml"]\n[machine]\nname = "big"\n'
                   f'memory = "1000M"\n')
    res = cli("run", "--backend", "qemu", str(big), "--paused")
    assert res.returncode == 1, res.stdout
    assert "qemu-system-ppc64: Memory size 0x3e800000 is not aligned to 256 MiB" in res.stderr
    assert "exited during start-up (exit status 1)" in res.stderr
    assert not instance("big").exists()


def test_missing_qemu_binary_names_the_package(tmp_path):
    res = cli("run", "--backend", "qemu", P9, env={"PATH": str(tmp_path)})
    assert res.returncode == 1
    assert "qemu-system-ppc64 not found" in res.stderr
    assert "apt-get install --no-install-recommends qemu-system-ppc" in res.stderr


def test_killed_qemu_is_crashed_then_cleaned():
    cli_ok("run", "--backend", "qemu", P9, "--paused")
    inst = instance("p9-dual")
    os.kill(int((inst.dir / "pid").read_text()), signal.SIGKILL)
    from .test_cli_sim import ps_json, wait_for

    wait_for(lambda: inst.exit_path.exists(), what="exit.json")
    assert ps_json()["p9-dual"]["reason"] == "killed by SIGKILL"
    assert "cleaned up crashed instance" in cli_ok("stop", "p9-dual").stdout
