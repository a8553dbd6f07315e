"""The guest half: waiter tables, dummies, wake-all, the RFC's delayed wake and reason check."""

from __future__ import annotations

import errno

import pytest

from vmctl.model import ModelError
from vmctl_async_pf.model.guest import AbortOutcome, GuestApf
from vmctl_async_pf.model.protocol import (
    ARM64_RFCV2, PAGE_NOT_PRESENT, PAGE_READY, WAKE_ALL_TOKEN, X86_64_MERGED, ControlBlock,
    FaultContext,
)

SLEEPER, OTHER = "task-a", "task-b"


@pytest.mark.parametrize("rules", [X86_64_MERGED, ARM64_RFCV2], ids=["x86", "arm64"])
def test_ready_before_not_present_leaves_a_dummy_the_wait_consumes(rules) -> None:  # type: ignore[no-untyped-def]
    guest = GuestApf(rules, 2)
    assert guest.wake(0, 0x1000, current=OTHER) == []
    assert guest.waiters(0) == {"sleeping": 0, "halted": 0, "dummy": 1, "delayed": 0}
    assert guest.wait(0, 0x1000, SLEEPER, halted=False) is None     # no sleep
    assert guest.waiters(0)["dummy"] == 0
    assert (guest.dummies, guest.dummies_consumed) == (1, 1)


@pytest.mark.parametrize("rules", [X86_64_MERGED, ARM64_RFCV2], ids=["x86", "arm64"])
def test_ready_after_not_present_wakes_the_sleeper(rules) -> None:  # type: ignore[no-untyped-def]
    guest = GuestApf(rules, 1)
    node = guest.wait(0, 0x2000, SLEEPER, halted=False)
    assert node is not None and guest.waiters(0)["sleeping"] == 1
    assert guest.wake(0, 0x2000, current=OTHER) == [node]
    assert guest.waiters(0)["sleeping"] == 0 and guest.dummies == 0


def test_wake_all_wakes_this_cpus_waiters_and_frees_its_dummies_only() -> None:
    guest = GuestApf(X86_64_MERGED, 2)              # one table shared by both CPUs
    a = guest.wait(0, 0x1000, "a", halted=False)
    guest.wait(1, 0x1001, "b", halted=False)
    guest.wake(0, 0x3000, current=None)              # dummy on CPU 0
    woken = guest.wake(0, WAKE_ALL_TOKEN, current=None)
    assert woken == [a]
    assert guest.waiters(0) == {"sleeping": 0, "halted": 0, "dummy": 0, "delayed": 0}
    assert guest.waiters(1)["sleeping"] == 1
    assert guest.wake_alls == 1


def test_wake_all_on_an_empty_table_wakes_nothing() -> None:
    guest = GuestApf(X86_64_MERGED, 1)
    assert guest.wake(0, WAKE_ALL_TOKEN, current=None) == []
    assert guest.dummies == 0


def test_rfc_wake_from_the_sleepers_own_context_is_delayed_until_return_to_user() -> None:
    guest = GuestApf(ARM64_RFCV2, 1)
    node = guest.wait(0, 0x1000, SLEEPER, halted=False)
    assert guest.wake(0, 0x1000, current=SLEEPER) == []
    assert node.delayed and guest.delayed_pending[0] == 1 and guest.delayed_marked == 1
    assert guest.delayed_scan(0, current=SLEEPER) == []           # still its own context
    assert guest.delayed_scan(0, current=OTHER) == [node]         # another task returns to user
    assert guest.delayed_pending[0] == 0 and guest.waiters(0)["sleeping"] == 0


def test_rfc_wake_with_the_run_queue_lock_held_is_delayed_until_idle() -> None:
    guest = GuestApf(ARM64_RFCV2, 1)
    node = guest.wait(0, 0x1000, SLEEPER, halted=False)
    assert guest.wake(0, 0x1000, current=OTHER, rq_locked=True) == []
    assert guest.delayed_scan(0, current=None) == [node]         # the idle loop


def test_x86_has_no_delayed_wake() -> None:
    guest = GuestApf(X86_64_MERGED, 1)
    node = guest.wait(0, 0x1000, SLEEPER, halted=True)
    assert guest.wake(0, 0x1000, current=SLEEPER) == [node]
    assert guest.delayed_marked == 0


def test_duplicate_wait_and_duplicate_ready_are_refused() -> None:
    guest = GuestApf(X86_64_MERGED, 1)
    guest.wait(0, 0x1000, SLEEPER, halted=False)
    with pytest.raises(ModelError) as exc:
        guest.wait(0, 0x1000, OTHER, halted=False)
    assert exc.value.errno == errno.EEXIST
    guest.wake(0, 0x2000, current=None)
    with pytest.raises(ModelError) as exc:
        guest.wake(0, 0x2000, current=None)
    assert exc.value.errno == errno.EALREADY


@pytest.mark.parametrize("ctx, preempt_count, halts", [
    (FaultContext.USER, True, False),
    (FaultContext.KERNEL, True, False),
    (FaultContext.KERNEL, False, True),
    (FaultContext.ATOMIC, True, True),
    (FaultContext.EXCEPTION_OTHER, True, True),
])
def test_who_must_halt_instead_of_sleeping(ctx: FaultContext, preempt_count: bool, halts: bool) -> None:
    assert GuestApf(ARM64_RFCV2, 1, preempt_count=preempt_count).must_halt(ctx) is halts


# ---------------------------------------------------------------- control-block entry points

def test_x86_not_present_handler_reads_and_zeroes_flags() -> None:
    guest, area = GuestApf(X86_64_MERGED, 1), ControlBlock(0x1000)
    area.reason = PAGE_NOT_PRESENT
    node = guest.x86_async_pf(0, area, 0x1000, SLEEPER)
    assert node is not None and area.reason == 0
    with pytest.raises(ModelError):                   # no flag: not an async #PF
        guest.x86_async_pf(0, area, 0x2000, SLEEPER)


def test_x86_ready_interrupt_wakes_and_zeroes_the_token() -> None:
    guest, area = GuestApf(X86_64_MERGED, 1), ControlBlock(0x1000)
    node = guest.wait(0, 0x1000, SLEEPER, halted=False)
    area.token = 0x1000
    assert guest.x86_ready_interrupt(0, area, current=OTHER) == [node]
    assert area.token == 0


def test_rfc_abort_dispatches_on_reason_and_clears_it() -> None:
    guest, area = GuestApf(ARM64_RFCV2, 1), ControlBlock(0x1000)
    area.enabled = True
    assert guest.arm64_abort(0, area, 0x1000, task=SLEEPER, halted=False).outcome is AbortOutcome.ORDINARY
    area.reason = PAGE_NOT_PRESENT
    waited = guest.arm64_abort(0, area, 0xAB_0000_1000, task=SLEEPER, halted=False)
    assert waited.outcome is AbortOutcome.WAITED and waited.node.token == 0x1000  # low 32 bits
    assert area.reason == 0
    area.reason = PAGE_READY
    woke = guest.arm64_abort(0, area, 0x1000, task=OTHER, halted=False)
    assert woke.outcome is AbortOutcome.WOKE and woke.woken == (waited.node,)
    assert area.reason == 0


def test_rfc_illegal_reason_warns_clears_and_the_retry_is_an_ordinary_abort() -> None:
    guest, area = GuestApf(ARM64_RFCV2, 1), ControlBlock(0x1000)
    area.enabled = True
    area.reason = PAGE_NOT_PRESENT + PAGE_READY       # 3
    assert guest.arm64_abort(0, area, 0x1000, task=SLEEPER, halted=False).outcome is AbortOutcome.ILLEGAL
    assert area.reason == 0 and guest.illegal_reasons == 1
    assert guest.arm64_abort(0, area, 0x1000, task=SLEEPER, halted=False).outcome is AbortOutcome.ORDINARY
    assert guest.waiters(0) == {"sleeping": 0, "halted": 0, "dummy": 0, "delayed": 0}


def test_rfc_abort_with_apf_disabled_in_the_guest_is_ordinary() -> None:
    guest, area = GuestApf(ARM64_RFCV2, 1), ControlBlock(0x1000)
    area.reason = PAGE_NOT_PRESENT                    # stale, but enabled is false
    assert guest.arm64_abort(0, area, 0x1000, task=SLEEPER, halted=False).outcome is AbortOutcome.ORDINARY


def test_rfc_branch_handlers_refuse_an_abort_without_their_reason() -> None:
    guest, area = GuestApf(ARM64_RFCV2, 1), ControlBlock(0x1000)
    area.enabled = True
    area.reason = PAGE_READY
    with pytest.raises(ModelError) as exc:
        guest.arm64_not_present(0, area, 0x1000, SLEEPER, False)
    assert exc.value.errno == errno.EINVAL
    area.reason = PAGE_NOT_PRESENT
    with pytest.raises(ModelError):
        guest.arm64_ready(0, area, 0x1000, OTHER)
