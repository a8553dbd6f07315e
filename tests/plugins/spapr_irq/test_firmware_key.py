"""``[pseries] firmware`` is the pseries firmware's home; ``[boot] firmware`` still works, noted.

The key moved from vmctl's ``[boot]`` table to the spapr-irq plugin's ``[pseries]`` table
(issue 13): the host knows no pseries firmware.  For one release the old key keeps its
meaning (lowering, simulator timing, provenance) and ``vmctl validate`` notes each use.
"""

from __future__ import annotations

import json

import pytest

from vmctl.qemu.argv import build_argv
from vmctl.sim.build import build_simulation
from vmctl_spapr_irq.sim import sim_devices

HEAD = """
[machine]
name = "fw"
arch = "ppc64"
type = "pseries"
cpu = "power9"
memory = "1G"
accel = "tcg"
"""

NEW = HEAD + '\n[pseries]\nfirmware = "vof"\n'
OLD = HEAD + '\n[boot]\nfirmware = "vof"\n'


def _machine_prop(machine, vmctl_pm, name):
    for unit in build_argv(machine, vmctl_pm).units:
        if unit.args[0] == "-machine":
            return unit
    raise AssertionError("no -machine")


@pytest.mark.parametrize("text, key", [(NEW, "pseries.firmware"), (OLD, "boot.firmware")])
def test_both_keys_lower_to_x_vof_with_their_own_provenance(text, key, machine_from_toml, vmctl_pm):
    unit = _machine_prop(machine_from_toml(text), vmctl_pm, "x-vof")
    assert "x-vof=on" in unit.args[1]
    assert key in [o.key for o in unit.origins]


@pytest.mark.parametrize("text", [NEW, OLD])
def test_vof_reaches_the_kernel_in_a_tenth_of_a_second_either_way(text, machine_from_toml):
    m = machine_from_toml(text)
    sim = build_simulation(m, contributions=[("spapr-irq", sim_devices(m))])
    sim.advance(0.09)
    assert sim.vm.phase == "firmware"
    sim.advance(0.02)
    assert sim.vm.phase == "kernel"


def test_slof_is_the_default_and_takes_a_second(machine_from_toml, vmctl_pm):
    m = machine_from_toml(HEAD)
    sim = build_simulation(m, contributions=[("spapr-irq", sim_devices(m))])
    sim.advance(0.5)
    assert sim.vm.phase == "firmware"
    assert "x-vof=on" not in _machine_prop(m, vmctl_pm, "x-vof").args[1]


def test_validate_notes_the_old_key_with_file_line_and_the_new_home(vmctl, tmp_path):
    old = tmp_path / "old.toml"
    old.write_text(OLD)
    new = tmp_path / "new.toml"
    new.write_text(NEW.replace('name = "fw"', 'name = "fw-new"'))
    proc = vmctl("validate", "--format", "json", str(old), str(new))
    assert proc.returncode == 0, proc.stderr
    diags = json.loads(proc.stdout)["diagnostics"]
    assert [(d["code"], d["key"], d["severity"], d["line"]) for d in diags] == \
        [("deprecated", "boot.firmware", "note", 11)]
    assert "[pseries] firmware" in diags[0]["message"] and diags[0]["file"].endswith("old.toml")


def test_the_new_key_is_pseries_only(vmctl, tmp_path):
    path = tmp_path / "x86.toml"
    path.write_text('[machine]\nname = "x"\narch = "x86_64"\ntype = "q35"\ncpu = "max"\n'
                    'memory = "1G"\n\n[pseries]\nfirmware = "vof"\n')
    proc = vmctl("validate", str(path))
    assert proc.returncode == 1
    assert "[pseries] applies to ppc64 machines" in proc.stdout


def test_vof_on_a_powernv_machine_names_the_key_the_user_wrote(machine_from_toml):
    from vmctl_spapr_irq.validate import validate_machine

    m = machine_from_toml(NEW.replace('type = "pseries"', 'type = "powernv9"'))
    found = {(d.code, d.key) for d in validate_machine(m, None)}
    assert ("vof-needs-pseries", "pseries.firmware") in found
