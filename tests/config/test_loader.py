"""Includes, merge order, device replacement by id, and provenance."""

from __future__ import annotations

import pytest

from vmctl.config.loader import MachineError

BASE = '''[machine]
arch = "ppc64"
type = "pseries"
cpu = "power9"
cpus = 2

[irq]
ic-mode = "xics"

[[device]]
id = "a"
kind = "vfio-pci"
host = "0000:01:00.0"

[[device]]
id = "b"
kind = "vfio-pci"
host = "0000:02:00.0"
'''

TOP = '''include = ["base/common.toml"]

[machine]
name = "top"
cpus = 4

[irq]
kernel-irqchip = "off"

[[device]]
id = "b"
kind = "vfio-pci"
host = "0000:09:00.0"

[[device]]
kind = "vfio-pci"
host = "0000:0a:00.0"
'''


def test_including_file_wins_and_tables_merge(machine_from_toml):
    m = machine_from_toml(TOP, files={"base/common.toml": BASE})
    assert m.get("machine.cpus") == 4
    assert m.get("machine.cpu") == "power9"
    assert m.section("irq") == {"ic-mode": "xics", "kernel-irqchip": "off"}
    assert m.source("machine.cpus").line == 5 and m.source("machine.cpus").file.endswith("machine.toml")
    assert m.source("machine.cpu").file.endswith("common.toml") and m.source("machine.cpu").line == 4
    assert m.source("irq.ic-mode").file.endswith("common.toml")


def test_devices_concatenate_and_same_id_replaces_in_place(machine_from_toml):
    m = machine_from_toml(TOP, files={"base/common.toml": BASE})
    hosts = [d["host"] for d in m.devices]
    assert hosts == ["0000:01:00.0", "0000:09:00.0", "0000:0a:00.0"]
    # provenance follows the device: device[1] now comes from the top file, line 13
    src = m.source("device[1].host")
    assert src.file.endswith("machine.toml") and src.line == 13
    assert m.source("device[0].host").file.endswith("common.toml")
    assert m.source("device[2].host").line == 17


def test_defaults_come_from_the_plugins_schema(machine_from_toml):
    m = machine_from_toml(TOP, files={"base/common.toml": BASE})
    assert m.get("sim.seed") == 1
    assert m.devices[0]["iommu"] == "type1"
    assert m.is_default("sim.seed") and not m.is_default("machine.cpus")


def test_include_cycle_names_the_chain(machine_from_toml):
    with pytest.raises(MachineError) as info:
        machine_from_toml('include = ["b.toml"]\n', files={"b.toml": 'include = ["machine.toml"]\n'})
    (d,) = info.value.diagnostics
    assert d.code == "include-cycle" and "machine.toml" in d.message and "b.toml" in d.message


def test_json_round_trip_keeps_values_and_sources(machine_from_toml):
    from vmctl.config.machine import Machine

    m = machine_from_toml(TOP, files={"base/common.toml": BASE})
    again = Machine.from_json(m.to_json(), m.schema)
    assert again.data == m.data
    assert again.source("device[1].host") == m.source("device[1].host")
