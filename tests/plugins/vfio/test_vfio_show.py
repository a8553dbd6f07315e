"""``vmctl vfio show``: groups, companions and drivers, as a passthrough user checks them."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import run_vmctl
from vmctl_vfio.fakesys import nonviable_scenario


@pytest.fixture
def host(tmp_path):
    root = tmp_path / "host"
    nonviable_scenario(root)
    return str(root)


def test_device_group_names_the_companion_on_a_host_driver(host):
    out = run_vmctl("vfio", "show", "01:00.0", "--sysfs-root", host, check=True).stdout
    assert "group 1: not viable: 1 device(s) on a host driver" in out
    assert "  ! 0000:01:00.1 [10de:10f0] on snd_hda_intel" in out
    assert "    0000:01:00.0 [10de:1b80] on vfio-pci" in out
    assert "group 8" not in out  # only the asked-for group


def test_json_lists_every_group_with_blockers(host):
    data = json.loads(run_vmctl("vfio", "show", "--sysfs-root", host, "--format", "json", check=True).stdout)
    by_group = {g["group"]: g for g in data["groups"]}
    assert by_group[1]["viable"] is False and by_group[1]["blockers"] == ["0000:01:00.1"]
    assert by_group[8]["viable"] is True


@pytest.mark.parametrize("arg, words", [("zz", "'zz' is not a PCI address"),
                                        ("0000:09:00.0", "no PCI device 0000:09:00.0")])
def test_bad_addresses_get_one_clear_error(host, arg, words):
    proc = run_vmctl("vfio", "show", arg, "--sysfs-root", host)
    assert proc.returncode == 1 and words in proc.stderr and "hint:" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_tab_completes_pci_addresses_with_their_group(host, tmp_path):
    env = {**os.environ, "VMCTL_CACHE_DIR": str(tmp_path / "cache")}
    words = ["vmctl", "vfio", "show", "--sysfs-root", host, "0000:0"]
    proc = subprocess.run([sys.executable, "-P", "-m", "vmctl.complete", "fish", str(len(words) - 1), *words],
                          capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    addresses = {line.split("\t")[0] for line in lines[1:]}
    assert {"0000:01:00.0", "0000:01:00.1", "0000:03:00.0"} <= addresses
    assert any(line.startswith("0000:01:00.1\t") and "group 1" in line for line in lines)
