"""The test scenarios of semantics.md §4.11, on fake sysfs trees and on the model.

Scenario 9 (two ``-device vfio-ap``; ``apft=off``) is about QEMU's command line and is
checked by the plugin's validation, not by the host model.
"""

from __future__ import annotations

import errno
import random
from pathlib import Path

import pytest

from vmctl.host.sysfs import Sysfs
from vmctl.model import ModelError
from vmctl_vfio_ap.fakesys import (NOT_HOST, SCENARIOS, UUID_A, UUID_B, MdevSpec, build_scenario,
                                   build_system, scenario_system, snapshot)
from vmctl_vfio_ap.model import masks as M
from vmctl_vfio_ap.model.locks import Interleaver, LockingModel
from vmctl_vfio_ap.model.system import AP_BUS, MATRIX, ApSystem


def mdev_path(uuid: str, attr: str) -> str:
    return f"{MATRIX}/{uuid}/{attr}"


def fails(sysfs: Sysfs, kpath: str, value: str, code: int) -> OSError:
    """Write, expect the kernel's errno, and check the tree was left exactly as it was."""
    before = snapshot(sysfs.root)
    with pytest.raises(OSError) as exc:
        sysfs.write(kpath, value)
    assert exc.value.errno == code, exc.value
    assert snapshot(sysfs.root) == before
    return exc.value


@pytest.mark.parametrize("name", SCENARIOS)
def test_every_scenario_tree_reads_back_as_its_model(tmp_path: Path, name: str) -> None:
    from vmctl_vfio_ap.fakesys import desired_tree
    from vmctl_vfio_ap.host import load_system

    sysfs = build_scenario(tmp_path, name)
    assert desired_tree(load_system(sysfs)) == desired_tree(scenario_system(name))


def test_1_an_apqn_belongs_to_one_mdev(tmp_path: Path) -> None:
    sysfs = build_scenario(tmp_path, "shared-apqn")
    sysfs.write(mdev_path(UUID_B, "assign_adapter"), "1")
    err = fails(sysfs, mdev_path(UUID_B, "assign_domain"), "6", errno.EADDRINUSE)
    assert "01.0006" in str(err) and UUID_A in str(err)
    assert sysfs.read(mdev_path(UUID_B, "matrix")) == "01."
    sysfs.write(mdev_path(UUID_B, "assign_domain"), "7")
    assert sysfs.read(mdev_path(UUID_B, "matrix")) == "01.0007"
    assert sysfs.read(mdev_path(UUID_A, "matrix")).split() == ["01.0005", "01.0006", "02.0005", "02.0006"]


def test_1_the_kernel_log_names_the_queue_and_its_owner() -> None:
    ap = scenario_system("shared-apqn")
    ap.write(mdev_path(UUID_B, "assign_adapter"), "1")
    with pytest.raises(ModelError):
        ap.write(mdev_path(UUID_B, "assign_domain"), "6")
    assert ap.journal.log == [f"vfio_ap_mdev {UUID_A}: Userspace may not re-assign queue 01.0006 "
                              f"already assigned to {UUID_A}"]
    assert ap.journal.counters.assignments_refused == {"EADDRINUSE": 1}


def test_2_a_host_owned_apqn_cannot_be_assigned_until_the_mask_frees_it(tmp_path: Path) -> None:
    sysfs = build_scenario(tmp_path, "host-owned-apqn")
    assert Path(tmp_path, "sys/devices/ap/card05/05.0004/driver").readlink().name == "cex4queue"
    sysfs.write(mdev_path(UUID_A, "assign_adapter"), "5")
    err = fails(sysfs, mdev_path(UUID_A, "assign_domain"), "4", errno.EADDRNOTAVAIL)
    assert "05.0004" in str(err)
    sysfs.write(f"{AP_BUS}/apmask", "-5")
    assert sysfs.read(f"{AP_BUS}/apmask") == "0xfb" + "f" * 62
    assert Path(tmp_path, "sys/devices/ap/card05/05.0004/driver").readlink().name == "vfio_ap"
    sysfs.write(mdev_path(UUID_A, "assign_domain"), "4")
    assert sysfs.read(mdev_path(UUID_A, "matrix")) == "05.0004"
    assert sysfs.read(mdev_path(UUID_A, "guest_matrix")) == "05.0004"


def test_3_ids_are_checked_like_kstrtoul_and_the_maxima(tmp_path: Path) -> None:
    sysfs = build_scenario(tmp_path, "id-limits")
    fails(sysfs, mdev_path(UUID_A, "assign_adapter"), "256", errno.ENODEV)
    fails(sysfs, mdev_path(UUID_A, "assign_domain"), "xyz", errno.EINVAL)
    sysfs.write(mdev_path(UUID_A, "assign_adapter"), "3")
    before = snapshot(tmp_path)
    sysfs.write(mdev_path(UUID_A, "assign_adapter"), "0x3")
    assert snapshot(tmp_path) == before
    assert sysfs.read(mdev_path(UUID_A, "matrix")) == "03."


def test_3_a_machine_without_apxa_stops_at_63_adapters_and_15_domains() -> None:
    ap = build_system(adapters=[3, 63], domains=[15], max_adapter_id=63, max_domain_id=15,
                      apmask=0, mdevs=[MdevSpec(UUID_A)])
    ap.write(mdev_path(UUID_A, "assign_adapter"), "63")
    for attr, value in (("assign_adapter", "64"), ("assign_domain", "16"), ("assign_control_domain", "16")):
        with pytest.raises(ModelError) as exc:
            ap.write(mdev_path(UUID_A, attr), value)
        assert exc.value.errno == errno.ENODEV


def test_4_an_unbound_queue_filters_its_adapter_until_it_is_bound(tmp_path: Path) -> None:
    sysfs = build_scenario(tmp_path, "unbound-queue")
    assert sysfs.read(mdev_path(UUID_A, "matrix")).split() == ["03.0047", "04.0047"]
    assert sysfs.read(mdev_path(UUID_A, "guest_matrix")).split() == ["03.0047"]
    sysfs.write(f"{AP_BUS}/drivers/vfio_ap/bind", "04.0047")
    assert sysfs.read(mdev_path(UUID_A, "guest_matrix")).split() == ["03.0047", "04.0047"]
    assert sysfs.read("/sys/bus/ap/devices/04.0047/status") == "in use"


def test_4_binding_while_the_guest_runs_is_a_hot_plug() -> None:
    ap = scenario_system("unbound-queue")
    ap.write(f"{AP_BUS}/drivers/vfio_ap/bind", "04.0047")
    (event,) = ap.journal.hotplugs
    assert (event.guest, event.trigger.value, event.plugged, event.unplugged) == \
        ("vm1", "queue-probe", ("04.0047",), ())
    assert ap.journal.counters.hotplug == {"queue-probe": 1}


def test_5_a_mask_write_cannot_take_an_assigned_queue_back(tmp_path: Path) -> None:
    sysfs = build_scenario(tmp_path, "mask-takes-assigned")
    err = fails(sysfs, f"{AP_BUS}/apmask", "+3", errno.EBUSY)
    assert "03.0047" in str(err) and UUID_A in str(err)
    sysfs.write(mdev_path(UUID_A, "unassign_adapter"), "3")
    sysfs.write(f"{AP_BUS}/apmask", "+3")
    assert sysfs.read(f"{AP_BUS}/apmask") == M.format_mask(M.FULL)
    assert Path(tmp_path, "sys/devices/ap/card03/03.0047/driver").readlink().name == "cex4queue"


def test_5_the_refusal_is_logged_and_counted() -> None:
    ap = scenario_system("mask-takes-assigned")
    with pytest.raises(ModelError):
        ap.write(f"{AP_BUS}/apmask", "+3")
    assert ap.journal.log == [f"vfio_ap_mdev {UUID_A}: Userspace may not re-assign queue 03.0047 "
                              f"already assigned to {UUID_A}"]
    assert ap.journal.counters.mask_writes_refused == {"EBUSY": 1}
    assert ap.bus.apmask == M.FULL & ~M.bit(3)


def test_6_one_mdev_per_guest_and_a_kvm_is_required() -> None:
    ap = scenario_system("shared-control-domain")
    ap.open_mdev(UUID_A, "vm1")
    with pytest.raises(ModelError) as exc:
        ap.open_mdev(UUID_B, "vm1")
    assert exc.value.errno == errno.EPERM
    with pytest.raises(ModelError) as exc:
        ap.open_mdev(UUID_B, None)
    assert exc.value.errno == errno.EINVAL
    assert ap.mdev(UUID_B).state.value == "defined"
    assert ap.mdev(UUID_A).state.value == "in-use"


def test_7_unassigning_the_guests_domain_unplugs_and_resets_the_queue() -> None:
    ap = build_system(domains=(0x47,), apmask=NOT_HOST,
                      mdevs=[MdevSpec(UUID_A, (3,), (0x47,), guest="vm1")])
    assert ap.mdev(UUID_A).crycb[:2] == (M.bit(3), M.bit(0x47))
    ap.write(mdev_path(UUID_A, "unassign_domain"), "0x47")
    m = ap.mdev(UUID_A)
    # the guest has no APQN left; the kernel keeps adapter 3 in the shadow APCB, so
    # guest_matrix prints the adapter-only form
    assert M.matrix_text(*m.crycb[:2]) == ap.read(mdev_path(UUID_A, "guest_matrix")) == "03.\n"
    assert [r.apqn for r in ap.journal.resets] == ["03.0047"]
    assert ap.journal.counters.hotunplug == {"unassign": 1}
    assert ap.journal.hotplugs[-1].unplugged == ("03.0047",)


def test_8_control_domains_may_be_shared(tmp_path: Path) -> None:
    sysfs = build_scenario(tmp_path, "shared-control-domain")
    for uuid in (UUID_A, UUID_B):
        sysfs.write(mdev_path(uuid, "assign_control_domain"), "0x47")
        assert sysfs.read(mdev_path(uuid, "control_domains")) == "0047"


# -- scenario 10: the lock model ----------------------------------------------------------
def _race(locking: LockingModel, seed: int, adapter: int) -> tuple[ApSystem, dict[str, int], list[str]]:
    """``assign_adapter`` on one mdev racing ``echo +7 > apmask``, interleaved by ``seed``."""
    ap = build_system(domains=(5,), apmask=NOT_HOST, mdevs=[MdevSpec(UUID_A, (), (5,))],
                      locking=locking, experimental=True)
    il = Interleaver(ap.locks, random.Random(seed))
    for kpath, value in ((mdev_path(UUID_A, "assign_adapter"), str(adapter)), (f"{AP_BUS}/apmask", "+7")):
        name, op = ap.op(kpath, value)
        il.spawn(name, op)
    outcomes = il.run()
    return (ap, {n: o.error.errno if o.error else 0 for n, o in outcomes.items()},
            [str(o.error) for o in outcomes.values() if o.error])


@pytest.mark.parametrize("seed", range(60))
def test_10_merged_assign_and_apmask_serialize_on_ap_perms_mutex(seed: int) -> None:
    ap, results, _ = _race(LockingModel.MERGED, seed, adapter=1)
    assert results == {"assign_adapter": 0, "apmask": 0}
    assert ap.bus.apmask == NOT_HOST | M.bit(7)


def test_10_seed_v18_apmask_write_fails_with_ebusy_when_the_try_lock_loses() -> None:
    outcomes, messages = set(), set()
    for seed in range(60):
        _, results, errors = _race(LockingModel.SEED_V18, seed, adapter=1)
        outcomes.add(tuple(sorted(results.items())))
        messages.update(errors)
    assert outcomes == {(("apmask", errno.EBUSY), ("assign_adapter", 0)),
                        (("apmask", 0), ("assign_adapter", 0))}
    assert all("could not try-lock" in m for m in messages), messages


@pytest.mark.parametrize("locking", [LockingModel.MERGED, LockingModel.SEED_V18])
def test_10_a_racing_mask_write_and_assignment_never_both_claim_the_queue(locking: LockingModel) -> None:
    seen = set()
    for seed in range(60):
        ap, results, _ = _race(locking, seed, adapter=7)
        seen.add(tuple(sorted(results.items())))
        assert list(results.values()).count(0) == 1, results
        m = ap.mdev(UUID_A)
        assert not ap.bus.owned_by_def_drv(m.apm, m.aqm)
    assert len(seen) == 2, seen
