"""The lock checker: the global order, inversions, try-locks, and the v18 vs merged in_use."""

from __future__ import annotations

import errno
import random
from collections.abc import Sequence
from typing import Any

import pytest

from vmctl.model import ModelError
from vmctl_vfio_ap.fakesys import NOT_HOST, UUID_A, MdevSpec, build_system
from vmctl_vfio_ap.model.locks import (Acquire, Interleaver, LockChecker, LockClass, LockingModel,
                                       LockOrderError, Op, Release, run)
from vmctl_vfio_ap.model.system import AP_BUS, MATRIX, ApSystem

G, K, MD, P, H = (LockClass.GUESTS, LockClass.KVM, LockClass.MDEVS, LockClass.AP_PERMS,
                  LockClass.PQAP_HOOK)


def ops(*reqs: Acquire | Release) -> Op[None]:
    for r in reqs:
        yield r


class Script:
    """A scheduler "rng" that runs tasks in a written order (then the first runnable one)."""

    def __init__(self, *names: str) -> None:
        self.names = list(names)

    def choice(self, runnable: Sequence[str]) -> str:
        while self.names:
            name = self.names.pop(0)
            if name in runnable:
                return name
        return runnable[0]


def test_a_deliberately_inverted_order_is_caught_before_the_lock_is_taken() -> None:
    checker = LockChecker()
    with pytest.raises(LockOrderError) as exc:
        run(checker, "bad", ops(Acquire(MD), Acquire(G), Release(G), Release(MD)))
    assert exc.value.errno == errno.EDEADLK
    assert "acquiring matrix_dev->guests_lock while holding matrix_dev->mdevs_lock" in str(exc.value)
    assert "ap_perms_mutex → matrix_dev->guests_lock → kvm->lock → matrix_dev->mdevs_lock" in str(exc.value)
    assert checker.holders(G) == checker.holders(MD) == ()
    assert len(checker.inversions) == 1


def test_the_documented_order_passes() -> None:
    checker = LockChecker()
    run(checker, "ok", ops(Acquire(H, "vm1"), Release(H, "vm1"), Acquire(P), Acquire(G),
                           Acquire(K, "vm1"), Acquire(MD), Release(MD), Release(K, "vm1"),
                           Release(G), Release(P)))
    assert checker.acquisitions == 5 and checker.inversions == []


def test_two_guests_kvm_locks_at_once_and_recursion_are_reported() -> None:
    with pytest.raises(LockOrderError, match="nested locking of one class"):
        run(LockChecker(), "t", ops(Acquire(K, "vm1"), Acquire(K, "vm2")))
    with pytest.raises(LockOrderError, match="recursive locking"):
        run(LockChecker(), "t", ops(Acquire(G), Acquire(G)))


def test_returning_with_a_lock_held_is_a_model_bug() -> None:
    checker = LockChecker()
    with pytest.raises(ModelError, match="returned holding matrix_dev->guests_lock"):
        run(checker, "leaky", ops(Acquire(G)))
    assert checker.holders(G) == ()


def test_the_seeds_in_use_with_plain_locks_is_the_inversion_it_describes() -> None:
    """v18 takes ap_perms_mutex last (inside assign); a plain-locking in_use inverts that."""
    naive_in_use = (Acquire(P), Acquire(G), Release(G), Release(P))
    with pytest.raises(LockOrderError, match="acquiring matrix_dev->guests_lock while holding ap_perms_mutex"):
        run(LockChecker(LockingModel.SEED_V18), "apmask", ops(*naive_in_use))
    run(LockChecker(LockingModel.MERGED), "apmask", ops(*naive_in_use))   # fine once reordered
    tried = (Acquire(P), Acquire(G, trylock=True), Release(G), Release(P))
    run(LockChecker(LockingModel.SEED_V18), "apmask", ops(*tried))       # try-locks are exempt


def test_without_the_order_check_the_interleaver_finds_the_deadlock() -> None:
    class NoLockdep(LockChecker):
        def _check_order(self, ctx: str, req: Acquire) -> None:
            return None

    il = Interleaver(NoLockdep(), Script("a", "b"))
    il.spawn("a", ops(Acquire(G), Acquire(MD), Release(MD), Release(G)))
    il.spawn("b", ops(Acquire(MD), Acquire(G), Release(G), Release(MD)))
    with pytest.raises(ModelError) as exc:
        il.run()
    assert exc.value.errno == errno.EDEADLK
    assert "a waits for matrix_dev->mdevs_lock held by b" in str(exc.value)
    assert "b waits for matrix_dev->guests_lock held by a" in str(exc.value)


def test_waiting_on_a_paused_operation_alone_is_reported() -> None:
    checker = LockChecker()
    checker.acquire("paused", Acquire(G))
    with pytest.raises(ModelError, match="would wait forever for matrix_dev->guests_lock held by paused"):
        run(checker, "apmask", ops(Acquire(P), Acquire(G)))
    assert checker.holders(P) == ()


def test_the_v18_model_needs_the_experimental_flag() -> None:
    with pytest.raises(ValueError, match="experimental"):
        ApSystem(locking=LockingModel.SEED_V18)


def _host(locking: LockingModel) -> ApSystem:
    return build_system(domains=(5,), apmask=NOT_HOST, mdevs=[MdevSpec(UUID_A, (), (5,), guest="vm1")],
                        locking=locking, experimental=True)


def _holding_guests() -> Op[None]:
    """An operation in the middle of its work with guests_lock held (as assign would be)."""
    yield Acquire(G)
    yield Acquire(MD)
    yield Release(MD)
    yield Release(G)


def _interleave(ap: ApSystem, script: Script, *tasks: tuple[str, Op[Any]]) -> dict[str, Any]:
    il = Interleaver(ap.locks, script)
    for name, op in tasks:
        il.spawn(name, op)
    return {n: (o.error.errno if o.error else 0) for n, o in il.run().items()}


def test_v18_in_use_refuses_while_another_operation_holds_guests_lock() -> None:
    ap = _host(LockingModel.SEED_V18)
    result = _interleave(ap, Script("holder", "apmask", "apmask", "apmask", "apmask"),
                         ("holder", _holding_guests()), ap.op(f"{AP_BUS}/apmask", "+7"))
    assert result == {"holder": 0, "apmask": errno.EBUSY}
    assert ap.journal.counters.mask_writes_refused == {"EBUSY": 1}


def test_merged_in_use_waits_for_the_holder_instead() -> None:
    ap = _host(LockingModel.MERGED)
    il = Interleaver(ap.locks, Script("holder", "apmask", "apmask", "apmask"))
    il.spawn("holder", _holding_guests())
    il.spawn(*ap.op(f"{AP_BUS}/apmask", "+7"))
    assert all(o.ok for o in il.run().values())
    waited = il.trace.index("holder: drop matrix_dev->guests_lock")
    assert il.trace.index("apmask: take matrix_dev->guests_lock") > waited


def test_assign_on_a_running_guest_takes_the_documented_locks_in_order() -> None:
    ap = _host(LockingModel.MERGED)
    il = Interleaver(ap.locks, random.Random(0))
    il.spawn(*ap.op(f"{MATRIX}/{UUID_A}/assign_adapter", "1"))
    il.run()
    takes = [line.split(" take ")[1] for line in il.trace if " take " in line]
    assert takes == ["ap_perms_mutex", "matrix_dev->guests_lock", "kvm->lock[vm1]", "matrix_dev->mdevs_lock"]


def test_pqap_intercept_takes_the_hook_rwsem_shared_then_mdevs_lock() -> None:
    ap = _host(LockingModel.MERGED)
    ap.write(f"{MATRIX}/{UUID_A}/assign_adapter", "1")
    il = Interleaver(ap.locks, Script("pqap-1", "pqap-2"))
    il.spawn("pqap-1", ap.driver.pqap_aqic_op("vm1", 1, 5, True))
    il.spawn("pqap-2", ap.driver.pqap_aqic_op("vm1", 1, 5, False))
    results = il.run()
    assert il.trace[:3] == ["pqap-1: take kvm->arch.crypto.pqap_hook_rwsem[vm1]",
                            "pqap-2: take kvm->arch.crypto.pqap_hook_rwsem[vm1]",  # readers share it
                            "pqap-1: take matrix_dev->mdevs_lock"]
    assert results["pqap-1"].result == results["pqap-2"].result == 0
    assert ap.journal.counters.aqic == {"enable": 1, "disable": 1}


def test_every_write_goes_through_the_checker_and_releases_everything() -> None:
    ap = _host(LockingModel.MERGED)
    before = ap.locks.acquisitions
    ap.write(f"{MATRIX}/{UUID_A}/assign_adapter", "1")
    ap.write(f"{AP_BUS}/apmask", "-0x10")
    ap.write(f"{MATRIX}/{UUID_A}/unassign_adapter", "1")
    assert ap.locks.acquisitions > before
    assert all(not ap.locks.holders(c) for c in LockClass)
