"""Checking a machine's argv against QEMU capabilities (a recorded QemuCaps: no QEMU run)."""

from __future__ import annotations

import pytest

from vmctl.config.machine import Machine
from vmctl.config.loader import Source
from vmctl.qemu.argv import Argv, Origin, Unit
from vmctl.qemu.caps import QemuCaps
from vmctl.qemu.check import check_argv, split_opts

CAPS = QemuCaps(
    binary="/usr/bin/qemu-system-ppc64", version="7.2.22",
    machines={"pseries": "pseries-7.2", "pseries-7.2": "pseries-7.2", "pseries-7.1": "pseries-7.1"},
    cpus={"power9": "power9_v2.0-powerpc64-cpu", "power10": "power10_v2.0-powerpc64-cpu",
          "power9_v2.0": ""},
    devices={"vfio-pci": {"host": "str", "addr": "int32"}, "power9_v2.0-powerpc64-cpu":
             {"memory": "link"}, "virtio-gpu-gl-pci": None},
    machine_props={"pseries-7.2": {"ic-mode": "string", "x-vof": "bool"}},
    objects=["memory-backend-ram"], accels=["tcg"])


def machine() -> Machine:
    data = {"machine": {"name": "m", "arch": "ppc64", "type": "pseries"}, "irq": {"ic-mode": "dual"},
            "device": [{"kind": "vfio-pci", "host": "0000:03:00.0"}]}
    prov = {("machine", "type"): Source("m.toml", 3), ("irq", "ic-mode"): Source("m.toml", 8),
            ("device", 0): Source("m.toml", 12)}
    return Machine(data, prov, "m.toml")


def origin(key: str, plugin: str = "vmctl", line: int = 0) -> Origin:
    return Origin(plugin, key, "m.toml", line)


def argv(*units: Unit) -> Argv:
    return Argv([Unit(("qemu-system-ppc64",), [origin("machine.arch")]), *units])


def codes(diags) -> list[tuple[str, str, str]]:
    return [(d.code, d.key, d.hint) for d in diags]


def test_a_valid_command_line_has_no_findings():
    a = argv(Unit(("-machine", "pseries,ic-mode=dual,kernel-irqchip=off,x-vof=on"),
                  [origin("machine.type"), origin("irq.ic-mode", "spapr-irq"),
                   origin("irq.kernel-irqchip", "spapr-irq"), origin("boot.firmware")]),
             Unit(("-accel", "kvm"), [origin("machine.accel")]),
             Unit(("-accel", "tcg"), [origin("machine.accel")]),
             Unit(("-cpu", "power9"), [origin("machine.cpu")]),
             Unit(("-device", "vfio-pci,host=0000:03:00.0,id=hostdev0"), [origin("device[0]", "vfio")]),
             Unit(("-device", "virtio-gpu-gl-pci,whatever=1"), [origin("device[1]")]))
    assert check_argv(machine(), a, CAPS) == []


def test_unknown_names_give_errors_with_version_key_plugin_and_nearest():
    a = argv(Unit(("-machine", "pseries,ic-mod=dual"),
                  [origin("machine.type"), origin("irq.ic-mode", "spapr-irq")]),
             Unit(("-cpu", "power11"), [origin("machine.cpu")]),
             Unit(("-device", "vfio-pcie,host=x"), [origin("device[0]", "vfio")]),
             Unit(("-device", "vfio-pci,hots=x"), [origin("device[0]", "vfio")]),
             Unit(("-object", "iommufd,id=i0"), [origin("device[0]", "vfio")]))
    diags = check_argv(machine(), a, CAPS)
    assert codes(diags) == [
        ("qemu-unknown-property", "irq.ic-mode", 'did you mean "ic-mode"?'),
        ("qemu-unknown-cpu", "machine.cpu", 'did you mean "power10"?'),
        ("qemu-unknown-device", "device[0]", 'did you mean "vfio-pci"?'),
        ("qemu-unknown-property", "device[0]", 'did you mean "host"?'),
        ("qemu-unknown-object", "device[0]", ""),
    ]
    assert all("QEMU 7.2.22 (/usr/bin/qemu-system-ppc64)" in d.message for d in diags)
    assert diags[0].plugin == "spapr-irq" and diags[0].line == 8 and diags[0].file == "m.toml"
    assert all(d.severity.value == "error" for d in diags)


def test_unknown_machine_type_and_missing_accelerator():
    a = argv(Unit(("-machine", "pseriez"), [origin("machine.type")]),
             Unit(("-accel", "kvm"), [origin("machine.accel")]))
    diags = check_argv(machine(), a, CAPS)
    assert [d.code for d in diags] == ["qemu-unknown-machine", "qemu-no-accel"]
    assert diags[0].hint == 'did you mean "pseries"?'
    assert "built without the kvm accelerator" in diags[1].message


@pytest.mark.parametrize("text,parts", [
    ("a,b=c", ["a", "b=c"]), ("file,path=/x,,y,append=on", ["file", "path=/x,y", "append=on"]),
    ("", [""])])
def test_qemu_option_splitting(text, parts):
    assert split_opts(text) == parts
