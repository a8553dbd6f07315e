"""``[async-pf]`` validation: what a user is told for each arch, accel, mode and backend."""

from __future__ import annotations

import pytest

from tests.conftest import run_vmctl
from vmctl.types import Severity, ValidationContext
from vmctl_async_pf.validate import validate_machine as validate

X86 = '''[machine]
name = "x"
arch = "x86_64"
type = "q35"
cpu = "{cpu}"
accel = "{accel}"
{extra}
'''
ARM = '''[machine]
name = "a"
arch = "aarch64"
type = "virt"
cpu = "cortex-a72"
accel = "tcg"
{extra}
'''


def findings(machine_from_toml, text: str, backend: str = "sim") -> dict[str, tuple[Severity, str, str]]:  # type: ignore[no-untyped-def]
    machine = machine_from_toml(text)
    return {d.code: (d.severity, d.key, d.message) for d in validate(machine, ValidationContext(backend=backend))}


def x86(machine_from_toml, mode: str | None, accel: str = "kvm", cpu: str = "host", extra: str = ""):  # type: ignore[no-untyped-def]
    section = f'[async-pf]\nmode = "{mode}"\n' if mode else ""
    return findings(machine_from_toml, X86.format(cpu=cpu, accel=accel, extra=section + extra))


@pytest.mark.parametrize("accel", ["tcg", "auto"])
def test_x86_on_without_kvm_is_an_error_naming_the_accel(machine_from_toml, accel: str) -> None:  # type: ignore[no-untyped-def]
    out = x86(machine_from_toml, "on", accel=accel)
    sev, key, msg = out["async-pf-needs-kvm"]
    assert sev is Severity.ERROR and key == "async-pf.mode"
    assert f'machine.accel = "{accel}"' in msg and "no effect" in msg


def test_x86_on_with_kvm_is_clean(machine_from_toml) -> None:  # type: ignore[no-untyped-def]
    assert x86(machine_from_toml, "on", cpu="qemu64") == {}


def test_x86_auto_under_tcg_is_a_note(machine_from_toml) -> None:  # type: ignore[no-untyped-def]
    sev, _, msg = x86(machine_from_toml, "auto", accel="tcg")["async-pf-tcg"]
    assert sev is Severity.NOTE and "TCG has no async page faults" in msg


def test_x86_auto_with_a_named_cpu_model_notes_that_int_delivery_stays_off(machine_from_toml) -> None:  # type: ignore[no-untyped-def]
    sev, _, msg = x86(machine_from_toml, "auto", cpu="Skylake-Server")["async-pf-int-off"]
    assert sev is Severity.NOTE and "kvm-asyncpf-int" in msg and "Linux >= 5.8" in msg
    assert x86(machine_from_toml, "auto", cpu="host") == {}


def test_no_async_pf_table_means_no_notes(machine_from_toml) -> None:  # type: ignore[no-untyped-def]
    assert x86(machine_from_toml, None, accel="tcg", cpu="qemu64") == {}
    assert findings(machine_from_toml, ARM.format(extra="")) == {}


def test_no_kvmapf_on_the_command_line_contradicts_mode_on(machine_from_toml) -> None:  # type: ignore[no-untyped-def]
    out = x86(machine_from_toml, "on", extra='[boot]\nappend = "console=ttyS0 no-kvmapf"\n')
    sev, key, _ = out["no-kvmapf-in-append"]
    assert sev is Severity.WARNING and key == "boot.append"
    out = x86(machine_from_toml, "on", extra='[boot]\nappend = "no-kvmapf-please"\n')
    assert "no-kvmapf-in-append" not in out


def test_x86_off_without_a_kernel_explains_where_no_kvmapf_goes(machine_from_toml) -> None:  # type: ignore[no-untyped-def]
    sev, _, msg = x86(machine_from_toml, "off")["no-kvmapf-needs-kernel"]
    assert sev is Severity.NOTE and "kvm-asyncpf=off" in msg


def test_experimental_on_x86_is_noted_as_ignored(machine_from_toml) -> None:  # type: ignore[no-untyped-def]
    out = x86(machine_from_toml, "on", extra="experimental = true\n")
    assert out["experimental-ignored"][0] is Severity.NOTE


# ---------------------------------------------------------------- aarch64

def arm(machine_from_toml, mode: str, experimental: bool, backend: str = "sim"):  # type: ignore[no-untyped-def]
    extra = f'[async-pf]\nmode = "{mode}"\nexperimental = {str(experimental).lower()}\n'
    return findings(machine_from_toml, ARM.format(extra=extra), backend)


def test_arm64_on_needs_the_experimental_flag(machine_from_toml) -> None:  # type: ignore[no-untyped-def]
    sev, key, msg = arm(machine_from_toml, "on", False)["arm64-apf-needs-experimental"]
    assert sev is Severity.ERROR and key == "async-pf.mode" and "unsupported" in msg


def test_arm64_auto_without_the_flag_is_a_quiet_unsupported(machine_from_toml) -> None:  # type: ignore[no-untyped-def]
    out = arm(machine_from_toml, "auto", False)
    assert list(out) == ["arm64-apf-unsupported"] and out["arm64-apf-unsupported"][0] is Severity.NOTE


def test_arm64_experimental_runs_on_the_simulator_with_a_note(machine_from_toml) -> None:  # type: ignore[no-untyped-def]
    out = arm(machine_from_toml, "on", True)
    assert list(out) == ["arm64-apf-simulator-only"] and out["arm64-apf-simulator-only"][0] is Severity.NOTE


def test_arm64_on_real_qemu_is_refused_with_the_history_and_the_objections(machine_from_toml) -> None:  # type: ignore[no-untyped-def]
    sev, key, msg = arm(machine_from_toml, "on", True, backend="qemu")["arm64-apf-not-upstream"]
    assert sev is Severity.ERROR and key == "async-pf.mode"
    for part in ("never merged", "RFCv2", "SDEI", "entry assembly", "open-coded idle", "+ 4096", "NAK",
                 "interrupt"):
        assert part in msg, part
    sev, _, _ = arm(machine_from_toml, "auto", True, backend="qemu")["arm64-apf-not-upstream"]
    assert sev is Severity.NOTE
    assert arm(machine_from_toml, "off", True, backend="qemu") == {}


def test_cli_refuses_the_shipped_arm64_machine_for_qemu_only() -> None:
    sim = run_vmctl("validate", "machines/arm64-apf.toml")
    assert sim.returncode == 0 and "arm64-apf-simulator-only" in sim.stdout
    qemu = run_vmctl("validate", "--backend", "qemu", "machines/arm64-apf.toml")
    out = qemu.stdout + qemu.stderr
    assert qemu.returncode == 1
    assert "machines/arm64-apf.toml:12: error[async-pf.mode]" in out
    assert "arm64-apf-not-upstream" in out and "docs/async-pf.md" in out
    assert "Traceback" not in out
