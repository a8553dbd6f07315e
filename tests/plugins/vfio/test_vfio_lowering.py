"""QEMU argv and libvirt XML for vfio-pci devices (golden), and PCI address completion."""

from __future__ import annotations

import json
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.conftest import run_vmctl
from vmctl.export.libvirt import render_libvirt
from vmctl.host.sysfs import Sysfs
from vmctl.qemu.argv import build_argv
from vmctl_vfio.complete import complete_pci
from vmctl_vfio.fakesys import host_scenario, no_iommu_scenario

from .test_vfio_validate import machine_text

IOMMUFD = machine_text('id = "gpu0"\nhost = "0000:01:00.0"\niommu = "iommufd"',
                       'host = "0000:01:00.1"\niommu = "iommufd"', name="fd")


@pytest.mark.parametrize("name", ["x86-passthrough", "x86-passthrough-iopf"])
def test_shipped_machine_argv_and_xml(name: str, golden) -> None:
    golden(f"{name}.argv.json",
           run_vmctl("export", f"machines/{name}.toml", "--format", "argv", check=True).stdout)
    golden(f"{name}.xml", run_vmctl("export", f"machines/{name}.toml", "--format",
                                    "libvirt-xml", check=True).stdout)


def test_iommufd_argv_and_xml(machine_from_toml, vmctl_pm, golden) -> None:
    m = machine_from_toml(IOMMUFD, name="fd.toml")
    args = build_argv(m, vmctl_pm).args
    assert args.count("-object") == 1                     # one iommufd object, shared
    golden("iommufd.argv.json", json.dumps(args, indent=2) + "\n")
    golden("iommufd.xml", render_libvirt(m, vmctl_pm))


def test_iopf_is_not_lowered_to_a_qemu_property(machine_from_toml, vmctl_pm) -> None:
    m = machine_from_toml(machine_text('host = "0000:03:00.0"\niopf = true\n'
                                       'experimental = true'))
    dev = [a for a in build_argv(m, vmctl_pm).args if a.startswith("vfio-pci")]
    assert dev == ["vfio-pci,host=0000:03:00.0"]


def test_hostdev_source_address(machine_from_toml, vmctl_pm) -> None:
    m = machine_from_toml(machine_text('id = "nic0"\nhost = "0001:af:1f.7"'))
    dom = ET.fromstring(render_libvirt(m, vmctl_pm))
    hd = dom.find("devices/hostdev")
    assert hd.attrib == {"mode": "subsystem", "type": "pci", "managed": "yes"}
    assert hd.find("source/address").attrib == {"domain": "0x0001", "bus": "0xaf",
                                                "slot": "0x1f", "function": "0x7"}
    assert hd.find("alias").get("name") == "ua-nic0"


@pytest.mark.tools
@pytest.mark.parametrize("source", ["machines/x86-passthrough.toml", "iommufd"])
def test_virt_xml_validate_accepts_hostdevs(source: str, machine_from_toml, vmctl_pm,
                                            tmp_path: Path) -> None:
    tool = shutil.which("virt-xml-validate")
    assert tool, "virt-xml-validate is missing: run ./scripts/install-test-deps"
    if source == "iommufd":
        xml = render_libvirt(machine_from_toml(IOMMUFD, name="fd.toml"), vmctl_pm)
    else:
        xml = run_vmctl("export", source, "--format", "libvirt-xml", check=True).stdout
    path = tmp_path / "domain.xml"
    path.write_text(xml)
    proc = subprocess.run([tool, str(path), "domain"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_completion_of_pci_addresses(tmp_path: Path) -> None:
    host_scenario(tmp_path)
    got = dict(complete_pci("0000:0", Sysfs(tmp_path)))
    assert got == {"0000:01:00.0": "[10de:1b80] VGA, group 1, on nouveau",
                   "0000:01:00.1": "[10de:10f0] Audio, group 1, on snd_hda_intel",
                   "0000:03:00.0": "[8086:10d3] Ethernet, group 8, on e1000e",
                   "0000:00:1f.3": "[8086:a348] Audio, group 9, on snd_hda_intel"}
    assert [a for a, _ in complete_pci("03:", Sysfs(tmp_path))] == ["0000:03:00.0"]


def test_completion_without_iommu_says_so(tmp_path: Path) -> None:
    no_iommu_scenario(tmp_path)
    assert dict(complete_pci("0000:03", Sysfs(tmp_path))) == {
        "0000:03:00.0": "[8086:10d3] Ethernet, no IOMMU group, on e1000e"}
