"""mdev lifecycle, the guest's filtered view, hot plug/unplug by trigger, resets, PQAP."""

from __future__ import annotations

import errno

import pytest

from vmctl.model import ModelError
from vmctl_vfio_ap.fakesys import NOT_HOST, UUID_A, UUID_B, MdevSpec, build_system
from vmctl_vfio_ap.model import masks as M
from vmctl_vfio_ap.model.system import AP_BUS, MATRIX, TYPE_DIR, ApSystem

UUID_C = "0b9b4f4e-3c0e-4a53-9b43-44c1a2d5e2aa"


def guest_apqns(ap: ApSystem, uuid: str) -> list[str]:
    """What the running guest can use: the APQNs of its CRYCB."""
    apm, aqm, _ = ap.mdev(uuid).crycb
    return [M.format_apqn(a, q) for a in M.ids(apm) for q in M.ids(aqm)]


def running(**kw: object) -> ApSystem:
    """Adapters 3, 4 × domains 5, 6 in a running guest's mdev; control domain 5."""
    return build_system(adapters=range(8), domains=(5, 6, 7), apmask=NOT_HOST,
                        mdevs=[MdevSpec(UUID_A, (3, 4), (5, 6), (5,), guest="vm1")], **kw)  # type: ignore[arg-type]


def refused(code: int, fn: object, *args: object) -> ModelError:
    with pytest.raises(ModelError) as exc:
        fn(*args)  # type: ignore[operator]
    assert exc.value.errno == code, exc.value
    return exc.value


def test_lifecycle_states_and_available_instances() -> None:
    ap = build_system(apmask=NOT_HOST)
    total = ap.driver.available_instances
    ap.write(f"{TYPE_DIR}/create", UUID_A.upper() + "\n")          # names are lower-case
    m = ap.mdev(UUID_A)
    assert (m.state.value, ap.driver.available_instances) == ("defined", total - 1)
    ap.write(f"{MATRIX}/{UUID_A}/assign_control_domain", "1")
    assert m.state.value == "configured"
    ap.open_mdev(UUID_A, "vm1")
    assert m.state.value == "in-use"
    refused(errno.EBUSY, ap.write, f"{MATRIX}/{UUID_A}/remove", "1")
    ap.close_mdev(UUID_A)
    ap.write(f"{MATRIX}/{UUID_A}/remove", "0")                      # 0 does nothing
    assert UUID_A in ap.driver.mdevs
    ap.write(f"{MATRIX}/{UUID_A}/remove", "1")
    assert UUID_A not in ap.driver.mdevs and ap.driver.available_instances == total


@pytest.mark.parametrize("text, code", [("not-a-uuid", errno.EINVAL), (UUID_A + "0", errno.EINVAL),
                                        (UUID_A, errno.EEXIST)])
def test_create_refusals(text: str, code: int) -> None:
    ap = build_system(mdevs=[MdevSpec(UUID_A)])
    refused(code, ap.write, f"{TYPE_DIR}/create", text)


def test_create_without_available_instances_is_eusers() -> None:
    ap = ApSystem(available_instances=1)
    ap.write(f"{TYPE_DIR}/create", UUID_A)
    refused(errno.EUSERS, ap.write, f"{TYPE_DIR}/create", UUID_B)


def test_open_gives_the_guest_the_filtered_view_and_close_takes_it_back() -> None:
    ap = running()
    assert guest_apqns(ap, UUID_A) == ["03.0005", "03.0006", "04.0005", "04.0006"]
    assert ap.mdev(UUID_A).crycb[2] == M.bit(5)
    ap.close_mdev(UUID_A)
    assert ap.mdev(UUID_A).crycb == (0, 0, 0)
    assert sorted(r.apqn for r in ap.journal.resets if r.reason == "close") == \
        ["03.0005", "03.0006", "04.0005", "04.0006"]
    assert ap.journal.counters.hotplug == {} and ap.journal.counters.hotunplug == {}


def test_assignments_while_running_are_hot_plugged_and_counted() -> None:
    ap = running()
    ap.write(f"{MATRIX}/{UUID_A}/assign_domain", "7")
    ap.write(f"{MATRIX}/{UUID_A}/assign_control_domain", "6")
    ap.write(f"{MATRIX}/{UUID_A}/unassign_adapter", "4")
    plug, cdom, unplug = ap.journal.hotplugs
    assert plug.plugged == ("03.0007", "04.0007") and plug.trigger.value == "assign"
    assert cdom.cdoms_plugged == (6,)
    assert unplug.unplugged == ("04.0005", "04.0006", "04.0007") and unplug.trigger.value == "unassign"
    assert ap.journal.counters.hotplug == {"assign": 2}
    assert ap.journal.counters.hotunplug == {"unassign": 1}
    assert [r.apqn for r in ap.journal.resets] == ["04.0005", "04.0006", "04.0007"]


def test_assigning_a_domain_whose_queue_is_missing_filters_the_whole_adapter() -> None:
    ap = running(unbound=["04.0007"])
    ap.write(f"{MATRIX}/{UUID_A}/assign_domain", "7")
    assert guest_apqns(ap, UUID_A) == ["03.0005", "03.0006", "03.0007"]
    event = ap.journal.hotplugs[-1]
    assert event.plugged == ("03.0007",) and event.unplugged == ("04.0005", "04.0006")
    reasons = {f["apqn"]: f["reason"] for f in ap.status()["mdevs"][0]["filtered"]}
    assert reasons["04.0007"] == "queue 04.0007 is bound to no driver, not vfio_ap"
    assert reasons["04.0005"] == "adapter 04 filtered out: queue 04.0007 is bound to no driver, not vfio_ap"


def test_unbinding_a_queue_unplugs_its_adapter_and_resets_it() -> None:
    ap = running()
    ap.write(f"{AP_BUS}/drivers/vfio_ap/unbind", "03.0006")
    assert guest_apqns(ap, UUID_A) == ["04.0005", "04.0006"]
    assert ap.journal.counters.hotunplug == {"queue-remove": 1}
    assert [(r.apqn, r.reason) for r in ap.journal.resets] == [("03.0006", "unbind")]
    assert ap.bus.queue(3, 6).driver is None


def test_host_config_change_unplugs_then_the_scan_plugs_back() -> None:
    ap = running()
    cfg = ap.bus.config
    ap.config_change(apm=cfg.apm & ~M.bit(4))
    assert guest_apqns(ap, UUID_A) == ["03.0005", "03.0006"]
    assert ap.bus.queue(4, 5) is None and 4 not in ap.bus.cards
    ap.config_change(apm=cfg.apm)
    assert guest_apqns(ap, UUID_A) == ["03.0005", "03.0006", "04.0005", "04.0006"]
    assert ap.journal.counters.hotunplug == {"config-change": 1}
    assert ap.journal.counters.hotplug == {"scan-complete": 1}
    assert ap.bus.queue(4, 5).driver == "vfio_ap"                   # type: ignore[union-attr]


def test_a_removed_control_domain_leaves_the_guest() -> None:
    ap = running()
    ap.config_change(adm=ap.bus.config.adm & ~M.bit(5))
    assert ap.mdev(UUID_A).crycb[2] == 0
    assert ap.journal.hotplugs[-1].cdoms_unplugged == (5,)


def test_a_failed_reset_keeps_the_adapter_out_until_a_reset_succeeds() -> None:
    ap = running()
    ap.inject_reset_failure("03.0005", 0x02)
    ap.reset_mdev(UUID_A)
    assert ap.journal.counters.reset_failures == 1
    ap.write(f"{MATRIX}/{UUID_A}/assign_domain", "7")               # the next refilter sees it
    assert guest_apqns(ap, UUID_A) == ["04.0005", "04.0006", "04.0007"]
    reasons = {f["apqn"]: f["reason"] for f in ap.status()["mdevs"][0]["filtered"]}
    assert reasons["03.0005"] == "the last reset of queue 03.0005 failed (response code 0x02)"


def test_over_provisioned_apqns_join_the_guest_when_their_queues_appear() -> None:
    ap = build_system(adapters=range(4), domains=(5,), apmask=NOT_HOST & ~M.bit(9),
                      mdevs=[MdevSpec(UUID_A, (3,), (5,), guest="vm1")])
    ap.write(f"{MATRIX}/{UUID_A}/assign_adapter", "9")              # not in the host config yet
    assert ap.read(f"{MATRIX}/{UUID_A}/matrix") == "03.0005\n09.0005\n"
    assert guest_apqns(ap, UUID_A) == ["03.0005"]
    ap.config_change(apm=ap.bus.config.apm | M.bit(9))
    assert guest_apqns(ap, UUID_A) == ["03.0005", "09.0005"]


def test_pqap_aqic_through_the_guests_hook() -> None:
    ap = running()
    assert ap.pqap_aqic("vm1", "03.0005", True) == 0
    assert ap.bus.queue(3, 5).irq_enabled                           # type: ignore[union-attr]
    assert ap.pqap_aqic("vm1", "07.0005", True) == 0x01             # not in the guest's mdev
    assert ap.pqap_aqic("vm2", "03.0005", True) == 0x01             # no hook for that guest
    ap.close_mdev(UUID_A)
    assert not ap.bus.queue(3, 5).irq_enabled                       # type: ignore[union-attr]


def test_a_refused_second_mdev_still_replaces_the_guests_pqap_hook() -> None:
    """vfio_ap_mdev_set_kvm installs the hook before the EPERM check (kernel behaviour)."""
    ap = running()
    ap.write(f"{TYPE_DIR}/create", UUID_C)
    refused(errno.EPERM, ap.open_mdev, UUID_C, "vm1")
    assert ap.pqap_aqic("vm1", "03.0005", True) == 0x01
    assert any("no mdev in use by guest vm1" in line for line in ap.journal.log)


def test_an_mdev_opened_twice_by_its_guest_closes_once() -> None:
    ap = running()
    ap.open_mdev(UUID_A, "vm1")
    refused(errno.EBUSY, ap.open_mdev, UUID_A, "vm2")
    ap.close_mdev(UUID_A)
    assert ap.mdev(UUID_A).guest == "vm1"
    ap.close_mdev(UUID_A)
    assert ap.mdev(UUID_A).guest is None
    refused(errno.EINVAL, ap.close_mdev, UUID_A)


@pytest.mark.parametrize("write, code", [
    (("drivers/vfio_ap/bind", "00.0005"), errno.ENODEV),     # host-owned: the probe rejects vfio_ap
    (("drivers/cex4queue/bind", "01.0005"), errno.ENODEV),   # not host-owned: rejects cex4queue
    (("drivers/vfio_ap/bind", "02.0005"), errno.EBUSY),      # already bound
    (("drivers/cex4queue/unbind", "03.0005"), errno.ENODEV),  # not bound to cex4queue
    (("drivers/vfio_ap/bind", "0a.0005"), errno.ENODEV),     # no such queue
])
def test_driver_bind_and_unbind_refusals(write: tuple[str, str], code: int) -> None:
    ap = build_system(adapters=range(8), domains=(5,), apmask=M.bit(0), unbound=["00.0005", "01.0005"])
    refused(code, ap.write, f"{AP_BUS}/{write[0]}", write[1])


def test_queues_of_adapters_older_than_cex4_never_reach_vfio_ap() -> None:
    ap = build_system(adapters=(2,), domains=(5,), apmask=0, card_types={2: "CEX3C"})
    assert ap.bus.queue(2, 5).driver is None                        # type: ignore[union-attr]
    refused(errno.ENODEV, ap.write, f"{AP_BUS}/drivers/vfio_ap/bind", "02.0005")


def test_without_the_vfio_ap_module_queues_stay_unbound_and_there_is_no_matrix() -> None:
    ap = build_system(adapters=(2,), domains=(5,), apmask=0, vfio_ap_loaded=False)
    assert ap.bus.queue(2, 5).driver is None                        # type: ignore[union-attr]
    with pytest.raises(FileNotFoundError):
        ap.write(f"{TYPE_DIR}/create", UUID_A)
    ap.write(f"{AP_BUS}/apmask", "+2")                              # no in_use to ask
    assert ap.bus.queue(2, 5).driver is None                        # type: ignore[union-attr]
    ap.write(f"{AP_BUS}/drivers/cex4queue/bind", "02.0005")
    assert ap.bus.queue(2, 5).driver == "cex4queue"                 # type: ignore[union-attr]
