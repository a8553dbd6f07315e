"""CAS negotiation and the prediction (semantics.md §1.5, §1.6; DESIGN.md "Seen here")."""

from __future__ import annotations

import itertools

import pytest

from vmctl_spapr_irq.model.cas import (
    MSG_BROKEN_RELEASE, MSG_GUEST_XICS, MSG_NO_XIVE_CAP, MSG_SPLIT, MSG_XIVE_NEEDS_P9,
    append_disables_xive, cpu_generation, effective_generation, guest_answer, predict,
)
from vmctl_spapr_irq.model.guest import boot_guest
from vmctl_spapr_irq.model.kvm import HostKvm
from vmctl_spapr_irq.model.spapr import IrqConfig, QemuExit, SpaprIrqMachine


def tcg(ic_mode: str, cpu: str = "power9", append: str | None = "console=hvc0",
        max_cpu_compat: str | None = None):
    return predict(ic_mode, cpu, max_cpu_compat, append, "tcg", "auto", False)


# -- the five cases seen on QEMU 7.2 with Debian's 6.1 kernel under TCG ----------------------
@pytest.mark.parametrize(("ic_mode", "cpu", "append", "after"), [
    ("dual", "power9", "console=hvc0", "xive"),
    ("dual", "power9", "console=hvc0 xive=off", "xics"),
    ("xics", "power9", "console=hvc0", "xics"),
    ("xive", "power9", "console=hvc0", "xive"),
    ("dual", "power8", "console=hvc0", "xics"),
])
def test_the_five_real_cases(ic_mode: str, cpu: str, append: str, after: str) -> None:
    p = tcg(ic_mode, cpu, append)
    assert (p.after_cas, p.controller, p.error) == (after, "emulated", None)


def test_dual_starts_in_xics_and_says_it_switches_at_cas() -> None:
    p = tcg("dual")
    assert p.before_cas == "xics" and p.after_cas == "xive"
    assert any("in place at CAS" in r for r in p.reasons)


def test_xive_only_on_power8_is_an_error() -> None:
    p = tcg("xive", cpu="power8")
    assert p.after_cas is None and p.error == MSG_XIVE_NEEDS_P9 and p.hint


def test_max_cpu_compat_power8_behaves_like_power8() -> None:
    assert tcg("xive", max_cpu_compat="power8").error == MSG_XIVE_NEEDS_P9
    p = tcg("dual", max_cpu_compat="power8")
    assert p.after_cas == "xics"
    assert any("max-cpu-compat=power8" in r for r in p.reasons)


def test_xive_only_with_xive_off_the_kernel_ignores_the_option() -> None:
    """Observed: Linux prints 'Ignoring cmdline option xive=off' and uses XIVE; QEMU runs on."""
    p = tcg("xive", append="console=hvc0 xive=off")
    assert p.after_cas == "xive" and p.error is None
    assert any("ignores xive=off" in r for r in p.reasons)


def test_xive_only_with_a_guest_that_knows_no_xive_makes_qemu_exit() -> None:
    p = predict("xive", "power9", None, None, "tcg", "auto", False, guest_xive_capable=False)
    assert p.after_cas is None and p.error == MSG_GUEST_XICS
    assert "unavailable interrupt mode (XICS)" in p.error


# -- controller: KVM or emulated -------------------------------------------------------------
def test_kvm_with_xive_capability_runs_in_kernel() -> None:
    p = predict("dual", "power9", None, None, "kvm", "auto", True)
    assert (p.after_cas, p.controller) == ("xive", "kvm")


def test_kvm_without_xive_capability_emulates_xive_or_refuses_with_on() -> None:
    auto = predict("dual", "power9", None, None, "kvm", "auto", False, kvm_available=True)
    assert (auto.after_cas, auto.controller) == ("xive", "emulated")
    assert any("XIVE will be emulated" in r for r in auto.reasons)
    on = predict("dual", "power9", None, None, "kvm", "on", False, kvm_available=True)
    assert on.error == MSG_NO_XIVE_CAP
    xics = predict("dual", "power9", None, "xive=off", "kvm", "on", False, kvm_available=True)
    assert (xics.after_cas, xics.controller) == ("xics", "kvm")


def test_kernel_irqchip_off_and_split() -> None:
    assert predict("dual", "power9", None, None, "kvm", "off", True).controller == "emulated"
    assert predict("dual", "power9", None, None, "kvm", "split", True).error == MSG_SPLIT
    assert predict("dual", "power9", None, None, "tcg", "split", False).error is None   # TCG ignores it


def test_host_that_cannot_release_a_device() -> None:
    on = predict("dual", "power9", None, None, "kvm", "on", True, host_can_release=False)
    assert on.error == MSG_BROKEN_RELEASE
    auto = predict("dual", "power9", None, None, "kvm", "auto", True, host_can_release=False)
    assert (auto.after_cas, auto.controller) == ("xive", "emulated")


def test_accel_auto_follows_kvm_availability() -> None:
    assert predict("xics", "power9", None, None, "auto", "auto", False).controller == "emulated"
    assert predict("xics", "power9", None, None, "auto", "auto", False, kvm_available=True).controller == "kvm"


# -- the guest's side ------------------------------------------------------------------------
def test_guest_answers() -> None:
    assert guest_answer(0x80, "quiet")[0] == 0x40
    assert guest_answer(0x80, "xive=off quiet")[0] == 0x00
    assert guest_answer(0x80, "xive=off xive=on")[0] == 0x40          # the last one wins
    assert guest_answer(0x40, "xive=off")[0] == 0x40
    assert guest_answer(0x00, None)[0] == 0x00
    assert guest_answer(0x80, None, guest_xive_capable=False)[0] == 0x00


def test_cpu_parsing() -> None:
    assert [cpu_generation(c) for c in ("power9_v2.2", "POWER8E", "power10", "host")] == [9, 8, 10, None]
    assert effective_generation("power10", "power9") == 9
    assert effective_generation("host", "power8") == 8
    assert not append_disables_xive("noxive=off")


# -- the prediction and the simulated boot never disagree -----------------------------------
MATRIX = list(itertools.product(
    ("xics", "xive", "dual"), ("power8", "power9", "power10"), (None, "power8"),
    ("console=hvc0", "xive=off"), ("tcg", "kvm"), ("auto", "on", "off", "split"),
    (True, False), (True, False), (True, False)))


def simulate(ic_mode, cpu, compat, append, accel, kirq, xive_cap, release, capable):
    host = HostKvm(xive_native=xive_cap, release_op=release) if accel == "kvm" else None
    try:
        machine = SpaprIrqMachine(IrqConfig(ic_mode, cpu, compat, accel, kirq, cpus=2), host)
        machine.power_on()
        boot = boot_guest(machine, append, guest_xive_capable=capable)
    except QemuExit as exc:
        return None, None, exc.message
    return boot.mode.value, machine.controller.value, None


def test_prediction_matches_the_simulated_boot_over_the_whole_matrix() -> None:
    mismatches = []
    for case in MATRIX:
        ic_mode, cpu, compat, append, accel, kirq, xive_cap, release, capable = case
        p = predict(ic_mode, cpu, compat, append, accel, kirq, xive_cap, kvm_available=accel == "kvm",
                    host_can_release=release, guest_xive_capable=capable)
        got = simulate(*case)
        if (p.after_cas, p.controller, p.error) != got:
            mismatches.append((case, (p.after_cas, p.controller, p.error), got))
    assert not mismatches, mismatches[:5]
    outcomes = {simulate(*case) for case in MATRIX}
    assert {o[:2] for o in outcomes} >= {("xics", "kvm"), ("xive", "kvm"), ("xics", "emulated"),
                                         ("xive", "emulated"), (None, None)}
