"""``vmctl export --format libvirt-xml``: a domain definition libvirt accepts.

The host writes what ``[machine]`` and ``[boot]`` mean; plugins add devices and features
through ``vmctl_libvirt_xml``.  Checked against libvirt's schema by ``virt-xml-validate``.
"""

from __future__ import annotations

import uuid
import xml.etree.ElementTree as ET

import pluggy

from vmctl.config.hostschema import parse_size
from vmctl.config.machine import Machine
from vmctl.plugins import call

NAMESPACE = uuid.UUID("6f1d3c52-3b0e-4a51-9a4f-766d63746c00")


def machine_uuid(machine: Machine) -> str:
    """A UUID derived stably from the machine name."""
    return str(uuid.uuid5(NAMESPACE, machine.name))


def build_domain(machine: Machine, kernel_args: list[str] | None = None) -> ET.Element:
    """The host's part of the domain; ``kernel_args`` are plugins' additions to the command line."""
    kernel_args = kernel_args or []
    mach = machine.section("machine")
    accel = mach.get("accel", "auto")
    dom = ET.Element("domain", type="kvm" if accel == "kvm" else "qemu")
    ET.SubElement(dom, "name").text = machine.name
    ET.SubElement(dom, "uuid").text = machine_uuid(machine)
    kib = (parse_size(str(mach.get("memory", "1G"))) or (1 << 30)) >> 10
    ET.SubElement(dom, "memory", unit="KiB").text = str(kib)
    cpus = int(mach.get("cpus", 1))
    vcpu = ET.SubElement(dom, "vcpu", placement="static")
    if mach.get("max-cpus"):
        vcpu.set("current", str(cpus))
        vcpu.text = str(mach["max-cpus"])
    else:
        vcpu.text = str(cpus)
    os_ = ET.SubElement(dom, "os")
    ET.SubElement(os_, "type", arch=machine.arch, machine=str(mach["type"])).text = "hvm"
    boot = machine.section("boot")
    if boot.get("kernel"):
        ET.SubElement(os_, "kernel").text = str(machine.resolve_path("boot.kernel"))
    if boot.get("initrd"):
        ET.SubElement(os_, "initrd").text = str(machine.resolve_path("boot.initrd"))
    cmdline = " ".join(x for x in [str(boot.get("append", "")).strip(), *kernel_args] if x)
    if cmdline:
        ET.SubElement(os_, "cmdline").text = cmdline
    if not boot.get("kernel"):
        ET.SubElement(os_, "boot", dev="hd")
    ET.SubElement(dom, "features")
    cpu_model = str(mach["cpu"])
    if cpu_model == "host":
        ET.SubElement(dom, "cpu", mode="host-passthrough")
    elif cpu_model == "max":
        ET.SubElement(dom, "cpu", mode="maximum")
    else:
        cpu = ET.SubElement(dom, "cpu", mode="custom", match="exact")
        ET.SubElement(cpu, "model", fallback="forbid").text = cpu_model
    ET.SubElement(dom, "on_poweroff").text = "destroy"
    ET.SubElement(dom, "on_reboot").text = "restart"
    ET.SubElement(dom, "on_crash").text = "destroy"
    devices = ET.SubElement(dom, "devices")
    from vmctl.qemu.argv import qemu_binary

    ET.SubElement(devices, "emulator").text = f"/usr/bin/{qemu_binary(machine.arch)}"
    return dom


def render_libvirt(machine: Machine, pm: pluggy.PluginManager) -> str:
    from vmctl.plugins import call_flat
    from vmctl.types import KernelArg

    kargs = [f.text for f in call_flat(pm, "vmctl_qemu_args", machine=machine) if isinstance(f, KernelArg)]
    dom = build_domain(machine, kargs if machine.section("boot").get("kernel") else [])
    call(pm, "vmctl_libvirt_xml", machine=machine, domain=dom)
    features = dom.find("features")
    if features is not None and len(features) == 0:
        dom.remove(features)
    check_xml_text(dom)
    ET.indent(dom, "  ")
    return ET.tostring(dom, encoding="unicode") + "\n"


def check_xml_text(root: ET.Element) -> None:
    """Refuse text XML 1.0 cannot carry (ElementTree would write it and break the document).

    Validation refuses such strings in machine files; this guards what plugins add.
    """
    from vmctl.errors import VmctlError
    from vmctl.textfmt import first_unsafe, safe

    for el in root.iter():
        texts = [("text", el.text), ("tail", el.tail), *el.attrib.items()]
        for what, value in texts:
            if isinstance(value, str) and (at := first_unsafe(value.replace("\n", " "))) >= 0:
                raise VmctlError(f"libvirt XML: <{el.tag}> {what} holds a character XML cannot "
                                 f"carry ({safe(value[at])}): '{safe(value)}'",
                                 hint="remove control characters from the machine file")
