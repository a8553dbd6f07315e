"""QEMU's flow: default controller at reset, the switch at CAS, resets (§1.5, §1.9 scenarios 7–9, 11)."""

from __future__ import annotations

import random

import pytest

from vmctl_spapr_irq.model.cas import MSG_BROKEN_RELEASE, MSG_GUEST_INVALID, MSG_GUEST_XICS, MSG_XIVE_NEEDS_P9
from vmctl_spapr_irq.model.constants import IrqType, SlotState
from vmctl_spapr_irq.model.guest import boot_guest
from vmctl_spapr_irq.model.info_pic import format_info_pic
from vmctl_spapr_irq.model.kvm import HostKvm
from vmctl_spapr_irq.model.spapr import IrqConfig, MachineState, QemuExit, SpaprIrqMachine


def kvm_machine(ic_mode: str = "dual", host: HostKvm | None = None, **kw) -> SpaprIrqMachine:
    m = SpaprIrqMachine(IrqConfig(ic_mode=ic_mode, accel="kvm", cpus=4, **kw), host or HostKvm())
    m.power_on()
    return m


# -- §1.9.7 ---------------------------------------------------------------------------------
def test_dual_on_kvm_switches_xics_to_xive_at_cas_without_reset() -> None:
    m = kvm_machine()
    assert (m.active.value, m.controller.value, m.state) == ("xics", "kvm", MachineState.BEFORE_CAS)
    vm = m.vm
    assert vm.slot_states()["xics-on-xive"] is SlotState.ACTIVE
    boot_guest(m, "console=hvc0")
    assert (m.active.value, m.controller.value, m.state) == ("xive", "kvm", MachineState.NEGOTIATED)
    assert m.stats["resets"] == 1 and m.stats["switches"] == 1 and m.stats["cas_reboots"] == 0
    assert vm.stats["creates"] == 2 and vm.stats["releases"] == 1
    assert vm.slot_states() == {"xics-on-xive": SlotState.CACHED_IDLE, "xive-native": SlotState.ACTIVE}
    assert {v.irq_type for v in vm.vcpus} == {IrqType.XIVE}          # every vCPU reconnected


def test_qemu_4_x_reboots_once_at_cas() -> None:
    m = kvm_machine(qemu_version=(4, 2))
    boot = boot_guest(m, None)
    assert m.active.value == "xive" and m.state is MachineState.NEGOTIATED
    assert m.stats["cas_reboots"] == 1 and m.stats["resets"] == 2 and boot.cas_calls == 2


def test_system_reset_returns_dual_to_xics_until_the_next_cas() -> None:
    m = kvm_machine()
    boot_guest(m, None)
    m.system_reset()
    assert (m.active.value, m.state, m.ov5_cas) == ("xics", MachineState.BEFORE_CAS, None)
    assert {v.irq_type for v in m.vm.vcpus} == {IrqType.XICS}
    assert m.vm.slot_states()["xive-native"] is SlotState.CACHED_IDLE
    boot_guest(m, None)
    assert m.active.value == "xive"
    assert [e["mode"] for e in m.log] == ["xics", "xive", "xics", "xive"]
    assert [e["cause"] for e in m.log] == ["power-on", "cas", "reset", "cas"]


def test_reset_in_the_same_mode_keeps_the_device_and_clears_its_routing() -> None:
    m = kvm_machine("xics")
    boot_guest(m, None)
    assert m.deliver(0x1000) is not None
    m.system_reset()
    assert m.vm.stats["creates"] == 1 and m.vm.stats["releases"] == 0
    assert m.deliver(0x1000) is None                     # masked again until the guest sets it up


# -- §1.9.8 -----------------------------------------------------------------------------------
def test_xive_only_machine_exits_when_the_guest_asks_for_xics() -> None:
    m = SpaprIrqMachine(IrqConfig(ic_mode="xive"))
    m.power_on()
    with pytest.raises(QemuExit) as info:
        m.cas(0x00)
    assert info.value.message == MSG_GUEST_XICS and m.state is MachineState.EXITED


def test_guest_setting_both_bits_is_an_invalid_mode() -> None:
    m = SpaprIrqMachine(IrqConfig(ic_mode="dual"))
    m.power_on()
    with pytest.raises(QemuExit, match=MSG_GUEST_INVALID):
        m.cas(0x80)


def test_xics_only_machine_gives_xics_to_a_guest_that_would_take_xive() -> None:
    m = SpaprIrqMachine(IrqConfig(ic_mode="xics", cpus=2))
    m.power_on()
    assert boot_guest(m, None).mode.value == "xics"


# -- §1.9.9 -----------------------------------------------------------------------------------
def test_power8_cpu_refuses_xive_only_and_runs_dual_as_xics() -> None:
    with pytest.raises(QemuExit, match=MSG_XIVE_NEEDS_P9):
        SpaprIrqMachine(IrqConfig(ic_mode="xive", cpu="power8"))
    m = SpaprIrqMachine(IrqConfig(ic_mode="dual", cpu="power8"))
    m.power_on()
    assert boot_guest(m, None).mode.value == "xics" and m.stats["switches"] == 0


# -- §1.9.11: a host kernel without the release operation --------------------------------------
def test_old_kvm_refuses_dual_with_kernel_irqchip_on() -> None:
    with pytest.raises(QemuExit, match=MSG_BROKEN_RELEASE) as info:
        SpaprIrqMachine(IrqConfig(ic_mode="dual", accel="kvm", kernel_irqchip="on"), HostKvm(release_op=False))
    assert "kernel-irqchip=off" in info.value.hint


def test_old_kvm_with_kernel_irqchip_auto_falls_back_to_emulation_when_switching() -> None:
    m = kvm_machine(host=HostKvm(release_op=False))
    assert m.controller.value == "kvm"
    boot_guest(m, None)
    assert (m.active.value, m.controller.value, m.stats["fallbacks"]) == ("xive", "emulated", 1)
    assert "EEXIST" in m.notes[-1]


def test_no_xive_capability_with_kernel_irqchip_on_exits_at_cas() -> None:
    m = kvm_machine(host=HostKvm(xive_native=False), kernel_irqchip="on")
    with pytest.raises(QemuExit, match="IRQ_XIVE capability must be present"):
        boot_guest(m, None)


def test_kvm_without_a_host_is_refused() -> None:
    with pytest.raises(QemuExit, match="failed to initialize kvm"):
        SpaprIrqMachine(IrqConfig(accel="kvm"))


def test_transitions_check_their_state() -> None:
    m = SpaprIrqMachine(IrqConfig())
    with pytest.raises(RuntimeError):
        m.cas(0x40)
    m.power_on()
    with pytest.raises(RuntimeError):
        m.power_on()


def test_shutdown_destroys_the_vm_and_its_slots() -> None:
    m = kvm_machine()
    boot_guest(m, None)
    m.shutdown()
    assert m.vm.destroyed and m.vm.slots == [None, None]


# -- counters and determinism ----------------------------------------------------------------
def test_status_counts_interrupts_per_vcpu_and_source() -> None:
    m = kvm_machine()
    boot_guest(m, None)
    for cpu in range(4):
        m.routing.ipi(cpu)
    m.deliver(0x1000)
    snap = m.snapshot()
    assert snap["mode"] == "xive" and snap["controller"] == "kvm"
    assert snap["interrupts"]["per_vcpu"] == {0: 2, 1: 1, 2: 1, 3: 1}
    assert snap["interrupts"]["per_source"] == {0: 1, 1: 1, 2: 1, 3: 1, 0x1000: 1}
    assert snap["kvm"]["active"] == "xive-native"


def run(seed: int) -> str:
    m = SpaprIrqMachine(IrqConfig(cpus=4), name="p9")
    m.power_on()
    rng = random.Random(seed)
    boot_guest(m, None, rng=rng)
    for _ in range(500):
        m.deliver(rng.choice([0, 1, 2, 3, 0x1000, 0x1001, 0x1100]))
    return format_info_pic(m.routing, m.controller, m.name)


def test_a_run_is_reproducible_from_its_seed() -> None:
    assert run(7) == run(7)
    assert run(7) != run(8)
