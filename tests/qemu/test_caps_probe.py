"""Probing the real QEMU's capabilities, and the per-binary cache."""

from __future__ import annotations

import shutil

import pytest

from vmctl.errors import VmctlError
from vmctl.qemu import caps as capsmod
from vmctl.qemu.caps import binary_key, load_cached, probe, probe_for_arch

pytestmark = pytest.mark.qemu


@pytest.fixture(autouse=True)
def _cache(monkeypatch, tmp_path_factory):
    if shutil.which("qemu-system-ppc64") is None:
        pytest.fail("qemu-system-ppc64 is not installed: apt-get install "
                    "--no-install-recommends qemu-system-ppc (.ci/run does it)")
    monkeypatch.setenv("VMCTL_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "caps"))


def test_probe_records_what_vmctl_checks_against():
    caps = probe_for_arch("ppc64")
    assert caps.version.startswith("7.2.")
    assert caps.machine_type("pseries").startswith("pseries-7.")
    assert caps.machine_properties("pseries")["ic-mode"] == "string"
    assert caps.cpus["power9"].startswith("power9")
    assert "host" in caps.devices["vfio-pci"]
    assert "tcg" in caps.accels and "iommufd" not in caps.objects  # iommufd came in 8.2
    assert len(caps.devices) > 200
    assert "memory" in caps.cpu_properties("power9")


def test_second_probe_comes_from_the_cache(monkeypatch):
    first = probe("qemu-system-ppc64")

    def no_qemu(*a, **k):
        raise AssertionError("QEMU started although the cache is fresh")

    monkeypatch.setattr(capsmod.subprocess, "Popen", no_qemu)
    again = probe("qemu-system-ppc64")
    assert again.to_json() == first.to_json()


def test_cache_is_keyed_by_size_and_mtime():
    first = probe("qemu-system-ppc64")
    key = dict(first.key)
    assert load_cached(key) is not None
    assert load_cached({**key, "mtime_ns": key["mtime_ns"] + 1}) is None
    assert load_cached({**key, "size": key["size"] + 1}) is None
    assert binary_key(shutil.which("qemu-system-ppc64")) == key


def test_missing_binary_names_the_package(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(VmctlError) as err:
        probe_for_arch("s390x")
    assert "qemu-system-misc" in err.value.hint
