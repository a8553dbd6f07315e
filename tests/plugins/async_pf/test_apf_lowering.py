"""Lowering to QEMU: golden argv per mode, and which fragments carry which key."""

from __future__ import annotations

import json

import pytest

from vmctl.qemu.argv import build_argv
from vmctl.types import CpuProp, KernelArg
from vmctl_async_pf.qemu import qemu_args as qemu_fragments

MACHINE = '''[machine]
name = "g"
arch = "{arch}"
type = "{type}"
cpu = "{cpu}"
cpus = 2
memory = "1G"
accel = "{accel}"
{extra}'''
KERNEL = {"guest/bzImage": "not a real kernel\n"}

CASES = {
    # name: (arch, type, cpu, accel, extra TOML)
    "x86-on": ("x86_64", "q35", "qemu64", "kvm", '[async-pf]\nmode = "on"\n'),
    "x86-off-kernel": ("x86_64", "q35", "host", "kvm",
                       '[boot]\nkernel = "guest/bzImage"\nappend = "console=ttyS0"\n\n'
                       '[async-pf]\nmode = "off"\n'),
    "x86-off-no-kernel": ("x86_64", "q35", "host", "kvm", '[async-pf]\nmode = "off"\n'),
    "x86-auto": ("x86_64", "q35", "host", "kvm", '[async-pf]\nmode = "auto"\n'),
    "arm64-rfc": ("aarch64", "virt", "cortex-a72", "tcg",
                  '[async-pf]\nmode = "on"\nexperimental = true\n'),
}


def argv(machine_from_toml, vmctl_pm, case: str) -> list[str]:  # type: ignore[no-untyped-def]
    arch, type_, cpu, accel, extra = CASES[case]
    text = MACHINE.format(arch=arch, type=type_, cpu=cpu, accel=accel, extra=extra)
    args = build_argv(machine_from_toml(text, files=KERNEL), vmctl_pm).args
    return [a.split("/guest/")[-1] if "/guest/" in a else a for a in args]  # tmp dir independent


@pytest.mark.parametrize("case", sorted(CASES))
def test_argv_matches_golden(machine_from_toml, vmctl_pm, golden, case: str) -> None:  # type: ignore[no-untyped-def]
    golden(f"argv/{case}.json", json.dumps(argv(machine_from_toml, vmctl_pm, case), indent=2) + "\n")


def test_on_sets_both_cpu_properties(machine_from_toml, vmctl_pm) -> None:  # type: ignore[no-untyped-def]
    args = argv(machine_from_toml, vmctl_pm, "x86-on")
    assert args[args.index("-cpu") + 1] == "qemu64,kvm-asyncpf=on,kvm-asyncpf-int=on"


def test_off_turns_both_off_and_tells_the_kernel(machine_from_toml, vmctl_pm) -> None:  # type: ignore[no-untyped-def]
    args = argv(machine_from_toml, vmctl_pm, "x86-off-kernel")
    assert args[args.index("-cpu") + 1] == "host,kvm-asyncpf=off,kvm-asyncpf-int=off"
    assert args[args.index("-append") + 1] == "console=ttyS0 no-kvmapf"


def test_off_without_a_kernel_adds_no_append(machine_from_toml, vmctl_pm) -> None:  # type: ignore[no-untyped-def]
    args = argv(machine_from_toml, vmctl_pm, "x86-off-no-kernel")
    assert "-append" not in args                   # QEMU refuses -append without -kernel


@pytest.mark.parametrize("case", ["x86-auto", "arm64-rfc"])
def test_auto_and_arm64_leave_qemu_alone(machine_from_toml, case: str) -> None:  # type: ignore[no-untyped-def]
    arch, type_, cpu, accel, extra = CASES[case]
    machine = machine_from_toml(MACHINE.format(arch=arch, type=type_, cpu=cpu, accel=accel, extra=extra))
    assert qemu_fragments(machine) == []


def test_fragments_name_the_key_they_come_from(machine_from_toml) -> None:  # type: ignore[no-untyped-def]
    arch, type_, cpu, accel, extra = CASES["x86-off-kernel"]
    machine = machine_from_toml(MACHINE.format(arch=arch, type=type_, cpu=cpu, accel=accel, extra=extra),
                                files=KERNEL)
    frags = qemu_fragments(machine)
    assert [type(f) for f in frags] == [CpuProp, CpuProp, KernelArg]
    assert {f.key for f in frags} == {"async-pf.mode"}


def test_no_kvmapf_is_not_added_twice(machine_from_toml) -> None:  # type: ignore[no-untyped-def]
    extra = '[boot]\nkernel = "guest/bzImage"\nappend = "no-kvmapf"\n\n[async-pf]\nmode = "off"\n'
    machine = machine_from_toml(MACHINE.format(arch="x86_64", type="q35", cpu="host", accel="kvm",
                                               extra=extra), files=KERNEL)
    assert not any(isinstance(f, KernelArg) for f in qemu_fragments(machine))
