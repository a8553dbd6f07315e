"""libvirt XML of every shipped machine is accepted by libvirt's own schema validator."""

from __future__ import annotations

import shutil
import subprocess
import xml.etree.ElementTree as ET

import pytest

from tests.conftest import MACHINES, run_vmctl

SHIPPED = sorted(p.name for p in MACHINES.glob("*.toml"))


@pytest.mark.tools
@pytest.mark.parametrize("name", SHIPPED)
def test_virt_xml_validate_accepts_export(name, tmp_path):
    tool = shutil.which("virt-xml-validate")
    assert tool, "virt-xml-validate is missing: run ./scripts/install-test-deps (Debian package libvirt-clients)"
    xml = run_vmctl("export", f"machines/{name}", "--format", "libvirt-xml", check=True).stdout
    path = tmp_path / "domain.xml"
    path.write_text(xml)
    proc = subprocess.run([tool, str(path), "domain"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_domain_reflects_the_machine():
    xml = run_vmctl("export", "machines/p9-dual.toml", "--format", "libvirt-xml", check=True).stdout
    dom = ET.fromstring(xml)
    assert dom.get("type") == "qemu" and dom.findtext("name") == "p9-dual"
    assert dom.find("os/type").get("arch") == "ppc64" and dom.find("os/type").get("machine") == "pseries"
    assert dom.findtext("memory") == str(2 * 1024 * 1024) and dom.find("vcpu").get("current") == "2"
    assert dom.findtext("devices/emulator") == "/usr/bin/qemu-system-ppc64"


def test_pseries_interrupt_settings_reach_qemu_through_libvirt():
    xml = run_vmctl("export", "machines/p8-dual.toml", "--format", "libvirt-xml", check=True).stdout
    ns = {"qemu": "http://libvirt.org/schemas/domain/qemu/1.0"}
    args = [a.get("value") for a in ET.fromstring(xml).findall("qemu:commandline/qemu:arg", ns)]
    argv = run_vmctl("export", "machines/p8-dual.toml", "--format", "argv", check=True).stdout
    assert args[0] == "-machine" and args[1].startswith("ic-mode=")
    # the same properties the argv export puts on -machine, type aside
    assert f'"pseries,{args[1]}"' in argv
