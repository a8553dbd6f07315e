"""The seeded DMA workload and the IOPF ramp-up it shows."""

from __future__ import annotations

import pytest

from vmctl_vfio.model.workload import Pattern, WorkloadSpec, q35_ram_layout, rampup

from .conftest import GiB, MiB


def test_q35_layout_keeps_ram_out_of_the_pci_hole() -> None:
    assert q35_ram_layout(GiB) == [(0, GiB)]
    assert q35_ram_layout(4 * GiB) == [(0, 2 * GiB), (4 * GiB, 2 * GiB)]


@pytest.mark.parametrize("pattern", [Pattern.RANDOM, Pattern.HOTSET])
def test_fault_rate_falls_as_the_working_set_gets_mapped(pattern: Pattern) -> None:
    r = rampup(512 * MiB, WorkloadSpec(pattern=pattern, rate=20_000), seed=7,
               seconds=4, dt=0.5)
    rates = [s.faults_per_s for s in r.samples]
    assert rates[0] > 4 * rates[-1] > 0
    mapped = [s.mapped_pages for s in r.samples]
    assert mapped == sorted(mapped)                       # IOMMU-resident memory only grows
    assert all(s.locked_pages == 0 for s in r.samples)    # nothing pinned under IOPF
    assert r.pinned_bytes_without_iopf == 512 * MiB
    assert not r.pinning_fits_memlock                     # 64 MiB limit would refuse it


def test_sequential_sweep_faults_once_per_prefault_window() -> None:
    spec = WorkloadSpec(pattern=Pattern.SEQUENTIAL, rate=65_536)
    r = rampup(256 * MiB, spec, seconds=2, dt=1, prefault=512)
    first, second = r.samples
    assert first.faults == 65_536 // 512                  # the whole 256 MiB, 512 pages a fault
    assert second.faults == 0                             # second pass: all mapped


def test_smaller_prefault_means_more_faults() -> None:
    spec = WorkloadSpec(pattern=Pattern.SEQUENTIAL, rate=16_384)
    few = rampup(64 * MiB, spec, seconds=1, dt=1, prefault=512).samples[0].faults
    many = rampup(64 * MiB, spec, seconds=1, dt=1, prefault=16).samples[0].faults
    assert many == 32 * few


def test_same_seed_same_run_other_seed_other_run() -> None:
    spec = WorkloadSpec(pattern=Pattern.HOTSET, rate=5_000)
    a = rampup(256 * MiB, spec, seed=1, seconds=2).to_json()
    b = rampup(256 * MiB, spec, seed=1, seconds=2).to_json()
    c = rampup(256 * MiB, spec, seed=2, seconds=2).to_json()
    assert a == b and a["samples"] != c["samples"]


def test_table_shows_each_step() -> None:
    r = rampup(64 * MiB, WorkloadSpec(rate=1000), seconds=1, dt=0.25)
    lines = r.table().splitlines()
    assert lines[0].split()[:2] == ["t(s)", "faults/s"] and len(lines) == 5
