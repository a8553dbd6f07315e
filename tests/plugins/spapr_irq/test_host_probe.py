"""The read-only KVM probe (what this host can give a pseries guest)."""

from __future__ import annotations

from pathlib import Path

from vmctl_spapr_irq.host import KVM_CAP_MAX_VCPUS, kernel_at_least, probe
from vmctl_spapr_irq.model.constants import KVM_CAP_PPC_IRQ_XIVE


def caps(values: dict[int, int]):
    return lambda cap: values.get(cap, 0)


def test_non_power_host_cannot_run_pseries_kvm() -> None:
    p = probe(machine="x86_64")
    assert not p.kvm_available and "host is x86_64" in p.detail


def test_power9_bare_metal_host() -> None:
    p = probe(machine="ppc64le", release="6.1.0-50-powerpc64le",
              check_extension=caps({KVM_CAP_PPC_IRQ_XIVE: 1, KVM_CAP_MAX_VCPUS: 2048}))
    assert (p.kvm_available, p.xive_cap, p.can_release, p.max_vcpus) == (True, True, True, 2048)
    assert p.kvm_host.xive_cap


def test_nested_or_old_host() -> None:
    p = probe(machine="ppc64le", release="4.19.0", check_extension=caps({}))
    assert p.kvm_available and not p.xive_cap and not p.can_release
    assert "absent" in p.detail and "< 5.2" in p.detail


def test_missing_or_fake_dev_kvm(tmp_path: Path) -> None:
    assert "no " in probe(tmp_path, machine="ppc64le").detail
    (tmp_path / "dev").mkdir()
    (tmp_path / "dev" / "kvm").write_text("")
    assert "not a character device" in probe(tmp_path, machine="ppc64le").detail


def test_kernel_versions() -> None:
    assert kernel_at_least("5.2.0", (5, 2)) and kernel_at_least("6.1.0-50-powerpc64le", (5, 2))
    assert not kernel_at_least("5.1.21", (5, 2)) and not kernel_at_least("weird", (5, 2))
