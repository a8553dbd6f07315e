"""Real QEMU: start the exported argv paused and read the async PF properties back over QMP."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import run_vmctl
from vmctl.config import load_machine
from vmctl_async_pf.plugin import vmctl_live_probe

ExecInterruptedError = pytest.importorskip("qemu.qmp").ExecInterruptedError

pytestmark = pytest.mark.qemu

QEMU = shutil.which("qemu-system-x86_64")
OFF_TCG = '''[machine]
name = "apf-off-tcg"
arch = "x86_64"
type = "q35"
cpu = "qemu64"
cpus = 2
memory = "256M"
accel = "tcg"

[async-pf]
mode = "off"
'''


def exported_argv(path: Path | str) -> list[str]:
    return json.loads(run_vmctl("export", str(path), "--format", "argv", check=True).stdout)


async def _connect(sock: Path, proc: subprocess.Popen):  # type: ignore[no-untyped-def]
    """A QMP client connected to ``sock``, retrying while QEMU is still setting it up."""
    from qemu.qmp import ConnectError, QMPClient

    for _ in range(200):
        if proc.poll() is not None:
            raise AssertionError(f"QEMU exited {proc.returncode}: {proc.stdout.read().decode()}")
        if sock.exists():
            client = QMPClient("apf-test")
            try:
                await client.connect(str(sock))
                return client
            except ConnectError:
                pass
        await asyncio.sleep(0.05)
    raise AssertionError(f"no QMP server on {sock} after 10 s")


async def _probe(argv: list[str], sock: Path, probe) -> dict:  # type: ignore[no-untyped-def]
    proc = subprocess.Popen([*argv, "-S", "-display", "none", "-qmp", f"unix:{sock},server=on,wait=off"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    client = None
    try:
        client = await _connect(sock, proc)
        status = await client.execute("query-status")
        assert status["status"] == "prelaunch"                 # started paused (-S)
        results = [await client.execute(cmd, dict(args)) for cmd, args in probe.commands]
        with contextlib.suppress(EOFError, ExecInterruptedError):
            await client.execute("quit")        # QEMU may close the socket before answering
        return probe.parse(results)
    finally:
        if client is not None:
            with contextlib.suppress(EOFError):
                await client.disconnect()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def probe_running(argv: list[str], machine_path: Path | str, tmp_path: Path, vmctl_pm) -> dict:  # type: ignore[no-untyped-def]
    probe = vmctl_live_probe(load_machine(machine_path, vmctl_pm), "qemu")
    return asyncio.run(_probe(argv, tmp_path / "qmp.sock", probe))


@pytest.mark.skipif(QEMU is None, reason="qemu-system-x86_64 not installed (.ci/run installs it)")
def test_off_under_tcg_reads_back_as_written(tmp_path: Path, vmctl_pm) -> None:  # type: ignore[no-untyped-def]
    toml = tmp_path / "apf-off-tcg.toml"
    toml.write_text(OFF_TCG)
    argv = exported_argv(toml)
    assert "qemu64,kvm-asyncpf=off,kvm-asyncpf-int=off" in argv
    out = probe_running(argv, toml, tmp_path, vmctl_pm)
    assert out["cpu0"] == "/machine/unattached/device[0]"
    assert out["live"] == {"kvm-asyncpf": "off", "kvm-asyncpf-int": "off"} == out["configured"]
    assert out["matches"] is True


@pytest.mark.skipif(QEMU is None, reason="qemu-system-x86_64 not installed (.ci/run installs it)")
def test_on_reads_back_on_with_kvm_and_is_dropped_by_tcg(tmp_path: Path, vmctl_pm) -> None:  # type: ignore[no-untyped-def]
    argv = exported_argv("machines/x86-apf.toml")
    assert "qemu64,kvm-asyncpf=on,kvm-asyncpf-int=on" in argv
    i = argv.index("-accel")
    assert argv[i + 1] == "kvm"
    if os.access("/dev/kvm", os.R_OK | os.W_OK):
        out = probe_running(argv, "machines/x86-apf.toml", tmp_path, vmctl_pm)
        assert out["live"] == {"kvm-asyncpf": "on", "kvm-asyncpf-int": "on"} and out["matches"]
    # Without KVM the same CPU properties are accepted but cleared: this is why vmctl
    # refuses mode = "on" unless accel = "kvm" (async-pf-needs-kvm).
    tcg = [*argv[:i + 1], "tcg", *argv[i + 2:]]
    out = probe_running(tcg, "machines/x86-apf.toml", tmp_path, vmctl_pm)
    assert out["live"] == {"kvm-asyncpf": "off", "kvm-asyncpf-int": "off"}
    assert out["configured"] == {"kvm-asyncpf": "on", "kvm-asyncpf-int": "on"}
    assert out["matches"] is False
