"""``vmctl ap show APQN…``: who owns a queue, and whether the guest really sees it."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import run_vmctl
from vmctl_vfio_ap.fakesys import build_scenario


@pytest.fixture
def host(tmp_path):
    root = tmp_path / "ap"
    build_scenario(root, "unbound-queue")  # 03-04 x 0047 assigned, 04.0047 unbound, guest running
    return str(root)


def test_owner_and_guest_view_per_apqn(host):
    out = json.loads(run_vmctl("ap", "show", "03.0047", "04.0047", "--sysfs-root", host, "--format", "json",
                               check=True).stdout)
    first, second = out
    assert first["apqn"] == "03.0047" and first["driver"] == "vfio_ap" and first["in_guest"] is True
    assert second["driver"] is None and second["mdev"] == first["mdev"] and second["in_guest"] is False
    text = run_vmctl("ap", "show", "04.0047", "--sysfs-root", host, check=True).stdout
    assert "filtered out of the guest's view" in text


@pytest.mark.parametrize("arg, words", [("5.zz", "'5.zz' is not an APQN"),
                                        ("1ff.0001", "outside this machine (ENODEV)")])
def test_bad_apqns_get_one_clear_error(host, arg, words):
    proc = run_vmctl("ap", "show", arg, "--sysfs-root", host)
    assert proc.returncode == 1 and words in proc.stderr and "hint:" in proc.stderr


def test_tab_completes_apqns_with_their_owner(host, tmp_path):
    env = {**os.environ, "VMCTL_CACHE_DIR": str(tmp_path / "cache")}
    words = ["vmctl", "ap", "show", "--sysfs-root", host, "0"]
    proc = subprocess.run([sys.executable, "-P", "-m", "vmctl.complete", "fish", str(len(words) - 1), *words],
                          capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 0, proc.stderr
    values = {line.split("\t")[0] for line in proc.stdout.splitlines()[1:]}
    assert {"03.0047", "04.0047"} <= values
