"""Pre-launch validation of the interrupt settings (semantics.md §1.6, §1.8)."""

from __future__ import annotations

import pytest

from vmctl.types import ValidationContext
from vmctl_spapr_irq import host as host_mod
from vmctl_spapr_irq.host import HostProbe
from vmctl_spapr_irq.validate import validate_machine as validate

BASE = """
[machine]
name = "m"
arch = "ppc64"
type = "{type}"
cpu = "{cpu}"
cpus = 2
accel = "{accel}"

[boot]
append = "{append}"
"""


@pytest.fixture
def make(machine_from_toml):
    def build(irq: str = "", pseries: str = "", type: str = "pseries", cpu: str = "power9", accel: str = "tcg",
              append: str = "console=hvc0", extra: str = ""):
        text = BASE.format(type=type, cpu=cpu, accel=accel, append=append) + extra
        if irq:
            text += f"\n[irq]\n{irq}\n"
        if pseries:
            text += f"\n[pseries]\n{pseries}\n"
        return machine_from_toml(text)
    return build


def codes(diags) -> list[tuple[str, str, str]]:
    return [(d.severity.value, d.code, d.key) for d in diags]


class FakeSysfs:
    root = "/nonexistent-root"


def with_host(monkeypatch, probe: HostProbe) -> ValidationContext:
    monkeypatch.setattr(host_mod, "cached_probe", lambda root: probe)
    monkeypatch.setattr("vmctl_spapr_irq.validate.cached_probe", lambda root: probe)
    return ValidationContext(sysfs=FakeSysfs())


POWER9_HOST = HostProbe(True, True, True, 2048, 16384, "KVM: KVM_CAP_PPC_IRQ_XIVE present")
NESTED_HOST = HostProbe(True, False, True, 2048, 16384, "KVM: KVM_CAP_PPC_IRQ_XIVE absent")
X86_HOST = HostProbe(False, False, True, 2048, 16384, "host is x86_64: KVM runs pseries guests only on a ppc64")


def test_a_default_pseries_machine_is_clean(make) -> None:
    assert validate(make()) == []


def test_xive_on_power8_is_an_error_naming_the_cpu_and_quoting_qemu(make) -> None:
    (d,) = validate(make('ic-mode = "xive"', cpu="power8"))
    assert (d.severity.value, d.code, d.key) == ("error", "xive-needs-power9", "irq.ic-mode")
    assert 'machine.cpu = "power8"' in d.message and "XIVE-only machines require a POWER9 CPU" in d.message
    assert 'ic-mode = "dual"' in d.hint
    assert d.file.endswith("machine.toml") and d.line > 0


def test_power8_compat_counts_like_a_power8_cpu(make) -> None:
    (d,) = validate(make('ic-mode = "xive"', 'max-cpu-compat = "power8"'))
    assert d.code == "xive-needs-power9" and 'pseries.max-cpu-compat = "power8"' in d.message


def test_dual_on_power8_notes_the_fallback(make) -> None:
    assert codes(validate(make('ic-mode = "dual"', cpu="power8"))) == [
        ("note", "dual-falls-back-to-xics", "irq.ic-mode")]


def test_compat_above_the_cpu_is_refused_as_qemu_does(make) -> None:
    (d,) = validate(make("", 'max-cpu-compat = "power10"'))
    assert d.code == "compat-above-cpu" and "Compatibility PVR 0x0f000006 not valid for CPU" in d.message


def test_split_is_refused(make) -> None:
    (d,) = validate(make('kernel-irqchip = "split"'))
    assert (d.code, d.key) == ("kernel-irqchip-split", "irq.kernel-irqchip")
    assert "not supported on pseries" in d.message


def test_kernel_irqchip_on_needs_kvm(make) -> None:
    assert codes(validate(make('kernel-irqchip = "on"'))) == [
        ("error", "kernel-irqchip-needs-kvm", "irq.kernel-irqchip")]
    assert codes(validate(make('kernel-irqchip = "on"', accel="auto")))[0] == (
        "warning", "kernel-irqchip-needs-kvm", "irq.kernel-irqchip")


def test_kernel_irqchip_on_without_host_check_only_notes_the_requirement(make) -> None:
    (d,) = validate(make('kernel-irqchip = "on"', accel="kvm"))
    assert (d.severity.value, d.code) == ("note", "kernel-irqchip-host")
    assert "--host" in d.hint


def test_kernel_irqchip_on_on_this_kind_of_host_is_an_error_with_a_hint(make, monkeypatch) -> None:
    ctx = with_host(monkeypatch, X86_HOST)
    (d,) = validate(make('kernel-irqchip = "on"', accel="kvm"), ctx)
    assert (d.severity.value, d.code) == ("error", "kernel-irqchip-host")
    assert "host is x86_64" in d.message and "POWER host" in d.hint


def test_kernel_irqchip_on_on_a_host_without_xive_cap(make, monkeypatch) -> None:
    ctx = with_host(monkeypatch, NESTED_HOST)
    (d,) = validate(make('kernel-irqchip = "on"', accel="kvm"), ctx)
    assert d.code == "kernel-irqchip-host"
    assert "IRQ_XIVE capability must be present for KVM" in d.message
    assert 'kernel-irqchip = "auto"' in d.hint
    # XICS only needs no XIVE capability, and a guest with xive=off in dual mode stays on XICS
    assert validate(make('ic-mode = "xics"\nkernel-irqchip = "on"', accel="kvm"), ctx) == []
    assert validate(make('kernel-irqchip = "on"', accel="kvm", append="xive=off"), ctx) == []


def test_kernel_irqchip_on_on_a_power9_host_is_fine(make, monkeypatch) -> None:
    assert validate(make('kernel-irqchip = "on"', accel="kvm"), with_host(monkeypatch, POWER9_HOST)) == []


def test_vcpus_above_the_hosts_kvm_limit(make, monkeypatch) -> None:
    small = HostProbe(True, True, True, 1, 8, "KVM")
    diags = validate(make(accel="kvm"), with_host(monkeypatch, small))
    assert codes(diags) == [("error", "vcpus-above-kvm-limit", "machine.cpus")]


def test_xive_off_with_xive_only_is_noted_as_ignored(make) -> None:
    (d,) = validate(make('ic-mode = "xive"', append="console=hvc0 xive=off"))
    assert (d.code, d.key) == ("xive-off-ignored", "boot.append")


def test_irq_section_on_powernv_and_vof_outside_pseries(make) -> None:
    diags = validate(make('ic-mode = "dual"', type="powernv9", extra='firmware = "vof"\n'))
    assert codes(diags) == [("error", "irq-needs-pseries", "irq"), ("error", "vof-needs-pseries", "boot.firmware")]


def test_cli_prints_file_line_key_and_hint(vmctl, tmp_path) -> None:
    (tmp_path / "p8.toml").write_text(BASE.format(type="pseries", cpu="power8", accel="tcg", append="")
                                      + '\n[irq]\nic-mode = "xive"\n')
    proc = vmctl("validate", str(tmp_path / "p8.toml"))
    assert proc.returncode == 1
    assert "p8.toml:14: error[irq.ic-mode]" in proc.stdout + proc.stderr
    assert "(spapr-irq: xive-needs-power9)" in proc.stdout + proc.stderr
    assert "hint:" in proc.stdout + proc.stderr
