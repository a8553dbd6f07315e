"""The shipped ``*-shell`` machines on real QEMU 7.2 under TCG, through the CLI as a user runs
them: Debian's kernel and vmctl's busybox initramfs boot to the shell prompt, and /init's
copy of /proc/interrupts in the console log shows the interrupt controller the guest uses.

The guest comes from the developer's cache when ``vmctl guest fetch ARCH`` already put it
there (only read: linked into this session's cache), else it is fetched into the session's
cache. Each test waits on the prompt line with a deadline, never a fixed sleep.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import DEVELOPER_CACHE, MACHINES, run_vmctl
from vmctl import guest
from vmctl.initramfs import INTERRUPTS_BEGIN, INTERRUPTS_END, PROMPT

pytestmark = pytest.mark.qemu

DEADLINE = 25.0
BINARY = {"ppc64le": ("qemu-system-ppc64", "qemu-system-ppc"), "s390x": ("qemu-system-s390x", "qemu-system-misc")}


def provide(arch: str, session_cache: Path) -> Path:
    """``session_cache/guest/ARCH`` holding a ready guest; the developer's cache is never written."""
    binary, package = BINARY[arch]
    if shutil.which(binary) is None:
        pytest.fail(f"{binary} is not installed: apt-get install -y --no-install-recommends {package}")
    target = session_cache / "guest" / arch
    old = os.environ.get("VMCTL_CACHE_DIR")
    try:
        os.environ["VMCTL_CACHE_DIR"] = str(session_cache)
        if guest.is_ready(arch):
            return target
        os.environ["VMCTL_CACHE_DIR"] = str(DEVELOPER_CACHE)
        if guest.is_ready(arch):
            target.parent.mkdir(parents=True, exist_ok=True)
            if os.path.lexists(target):
                shutil.rmtree(target)
            target.symlink_to(DEVELOPER_CACHE / "guest" / arch, target_is_directory=True)
            return target
        os.environ["VMCTL_CACHE_DIR"] = str(session_cache)
        guest.fetch_guest(arch)
        return target
    finally:
        if old is None:
            os.environ.pop("VMCTL_CACHE_DIR", None)
        else:
            os.environ["VMCTL_CACHE_DIR"] = old


def wait_for(log: Path, text: str, deadline: float) -> str:
    """The log once it holds ``text``; an AssertionError with its tail at the deadline."""
    seen = ""
    while time.monotonic() < deadline:
        try:
            seen = log.read_text(errors="replace")
        except FileNotFoundError:
            seen = ""
        if text in seen:
            return seen
        time.sleep(0.05)
    raise AssertionError(f"no {text!r} in {log} after {DEADLINE} s; last lines:\n" + "\n".join(seen.splitlines()[-25:]))


def interrupts(log_text: str) -> list[str]:
    block = log_text.split(INTERRUPTS_BEGIN, 1)[1].split(INTERRUPTS_END, 1)[0]
    return [ln.strip() for ln in block.splitlines() if ln.strip()]


@pytest.mark.parametrize("name, arch, console", [("p9-shell", "ppc64le", "hvc0"), ("s390-shell", "s390x", "ttysclp0")])
def test_shell_machine_boots_to_the_prompt(name: str, arch: str, console: str, session_cache: Path,
                                           tmp_path: Path, record_property) -> None:
    provide(arch, session_cache)
    log = tmp_path / "state" / name / "log"
    t0 = time.monotonic()
    run_vmctl("run", "--backend", "qemu", str(MACHINES / f"{name}.toml"), check=True)
    try:
        text = wait_for(log, PROMPT, t0 + DEADLINE)
        record_property("seconds_to_prompt", round(time.monotonic() - t0, 2))
        assert re.search(rf"^vmctl-guest: busybox 1:\S+ on Linux \S+ {arch}, 2 CPUs, console {console}$",
                         text, re.M), text[-2000:]
        assert "insmod" not in text.split("vmctl-guest: busybox", 1)[1]      # every module loaded
        lines = interrupts(text)
        assert lines[0].split() == ["CPU0", "CPU1"]
        if arch == "ppc64le":   # POWER9 + ic-mode dual: the guest chose XIVE at CAS
            assert any(re.search(r"\bXIVE-IPI\b.*\bIPI-0$", ln) for ln in lines), lines
            assert any(re.search(r"\bXIVE-IRQ\b.*\bhvc_console$", ln) for ln in lines), lines
            assert not any("XICS" in ln for ln in lines)
        else:                   # s390: external and I/O interruption classes
            assert any(ln.startswith("EXT:") for ln in lines) and any("[I/O]" in ln for ln in lines), lines
        assert text.index(PROMPT) > text.index(INTERRUPTS_END)            # the shell comes after
        st = run_vmctl("status", name, check=True).stdout
        assert f"{name}: running" in st
    finally:
        stopped = run_vmctl("stop", name)
    assert stopped.returncode == 0 and f"{name}: stopped" in stopped.stdout


def test_initramfs_configures_eth0_by_dhcp(session_cache: Path, tmp_path: Path) -> None:
    """vmctl has no NIC device kind yet: QEMU is started directly, with slirp's DHCP server."""
    base = provide("ppc64le", session_cache)
    log = tmp_path / "console.log"
    argv = ["qemu-system-ppc64", "-M", "pseries,ic-mode=dual,x-vof=on", "-accel", "tcg", "-cpu", "power9",
            "-smp", "1", "-m", "512M", "-nodefaults", "-display", "none",
            "-kernel", str(base / "kernel"), "-initrd", str(base / "initrd"), "-append", "console=hvc0",
            "-chardev", f"file,id=con,path={log}", "-serial", "chardev:con",
            "-netdev", "user,id=n0", "-device", "virtio-net-pci,netdev=n0"]
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        text = wait_for(log, PROMPT, time.monotonic() + DEADLINE)
    finally:
        proc.kill()
        proc.wait()
    assert "vmctl-guest: eth0 10.0.2.15 netmask 255.255.255.0 router 10.0.2.2 (DHCP)" in text
    assert any("virtio0-input.0" in ln for ln in interrupts(text))       # the NIC's queue, via virtio_pci
