"""Lowering to ``-machine pseries,…`` properties: golden argv (``--update-golden`` rewrites)."""

from __future__ import annotations

import json

import pytest

from vmctl.qemu.argv import build_argv
from vmctl.types import MachineProp
from vmctl_spapr_irq.qemu import qemu_args as machine_props

MACHINE = """
[machine]
name = "m"
arch = "ppc64"
type = "{type}"
cpu = "power9"
cpus = 2
accel = "{accel}"

[boot]
firmware = "{firmware}"
append = "console=hvc0"
"""

CASES = {
    "default": ("", "", "pseries", "tcg", "default"),
    "xics-vof": ('ic-mode = "xics"', "", "pseries", "tcg", "vof"),
    "xive-kvm-on": ('ic-mode = "xive"\nkernel-irqchip = "on"', "", "pseries", "kvm", "slof"),
    "dual-off-compat": ('kernel-irqchip = "off"', 'max-cpu-compat = "power8"', "pseries-7.2", "kvm", "vof"),
}


def load(machine_from_toml, case: str):
    irq, pseries, mtype, accel, firmware = CASES[case]
    text = MACHINE.format(type=mtype, accel=accel, firmware=firmware)
    text += f"\n[irq]\n{irq}\n" if irq else ""
    text += f"\n[pseries]\n{pseries}\n" if pseries else ""
    return machine_from_toml(text)


@pytest.mark.parametrize("case", sorted(CASES))
def test_golden_argv(case, machine_from_toml, vmctl_pm, golden) -> None:
    argv = build_argv(load(machine_from_toml, case), vmctl_pm)
    golden(f"argv-{case}.json", json.dumps(argv.args[1:], indent=2) + "\n")


def test_properties_carry_the_key_they_come_from(machine_from_toml) -> None:
    props = machine_props(load(machine_from_toml, "dual-off-compat"))
    assert props == [MachineProp("ic-mode", "dual", key="irq.ic-mode"),
                     MachineProp("kernel-irqchip", "off", key="irq.kernel-irqchip"),
                     MachineProp("max-cpu-compat", "power8", key="pseries.max-cpu-compat"),
                     MachineProp("x-vof", "on", key="boot.firmware")]


def test_auto_and_split_add_no_kernel_irqchip(machine_from_toml) -> None:
    for value in ("auto", "split"):
        m = machine_from_toml(MACHINE.format(type="pseries", accel="tcg", firmware="default")
                              + f'\n[irq]\nkernel-irqchip = "{value}"\n')
        assert [p.name for p in machine_props(m)] == ["ic-mode"]


def test_other_machines_get_nothing(machine_from_toml) -> None:
    m = machine_from_toml('[machine]\nname = "x"\narch = "x86_64"\ntype = "q35"\ncpu = "host"\n')
    assert machine_props(m) == []


def test_argv_has_one_machine_option_with_provenance(machine_from_toml, vmctl_pm) -> None:
    argv = build_argv(load(machine_from_toml, "xics-vof"), vmctl_pm)
    units = [u for u in argv.units if u.args[0] == "-machine"]
    assert len(units) == 1 and units[0].args[1] == "pseries,ic-mode=xics,x-vof=on"
    assert {(o.plugin, o.key) for o in units[0].origins} >= {("spapr-irq", "irq.ic-mode"),
                                                             ("spapr-irq", "boot.firmware")}
