"""The guest kernel side of async page faults: the waiter table and its three operations.

Both designs keep nodes ``{token, task, cpu, halted, delayed}`` (semantics.md §3.2, §3.4):

* **wait(T)** — if a node for T exists it is a *dummy* (page-ready overtook not-present):
  remove it and return without sleeping.  Otherwise insert a node; ``halted`` when the context
  cannot sleep (preemption or interrupts off, RCU read side, or kernel mode without
  ``CONFIG_PREEMPT_COUNT``): the vCPU then spins in its own wait-for-interrupt loop instead of
  scheduling another task.
* **wake(T)** — ``T == ~0`` wakes every node of this CPU (dummies are freed); an unknown T
  inserts a dummy; a known T is woken.
* **wake_one** (arm64 RFC only) — if the waker *is* the sleeping task, or this CPU's
  run-queue lock is held, only mark the node ``delayed``; a later **delayed scan** (on return
  to user space and in the idle loop) wakes it.  A halted waiter is the current task of its
  vCPU and spins in kernel mode, so it reaches neither place: as posted in RFCv2 (seed-002),
  a page-ready taken in a halted waiter's own context leaves that vCPU halted for good.  The
  model keeps that behaviour and counts it (:attr:`GuestApf.delayed_pending`).

x86 keeps one table keyed by token for all CPUs (``arch/x86/kernel/kvm.c``, 256 hash buckets);
the RFC keeps a list per CPU.  The entry points read and clear the :class:`ControlBlock` as
the real handlers do: :meth:`GuestApf.x86_async_pf` (#PF with CR2 = token),
:meth:`GuestApf.x86_ready_interrupt` (vector handler; the caller then writes ACK) and
:meth:`GuestApf.arm64_abort` (``do_async_pf`` in the RFC's ``do_mem_abort``).
"""

from __future__ import annotations

import enum
import errno
from typing import NamedTuple

from vmctl.api import ModelError

from .protocol import PAGE_NOT_PRESENT, PAGE_READY, WAKE_ALL_TOKEN, ArchRules, ControlBlock, FaultContext

__all__ = ["WaitNode", "AbortOutcome", "AbortResult", "GuestApf"]

_USER = FaultContext.USER
_KERNEL = FaultContext.KERNEL


class WaitNode:
    """One entry of the waiter table; ``task`` is None for a dummy."""

    __slots__ = ("token", "task", "cpu", "halted", "delayed", "dummy")

    def __init__(self, token: int, task: object, cpu: int, halted: bool, dummy: bool = False) -> None:
        self.token = token
        self.task = task
        self.cpu = cpu
        self.halted = halted
        self.delayed = False
        self.dummy = dummy

    def __repr__(self) -> str:
        kind = "dummy" if self.dummy else ("halted" if self.halted else "sleeping")
        return f"WaitNode({self.token:#x}, cpu={self.cpu}, {kind}{', delayed' if self.delayed else ''})"


class AbortOutcome(enum.Enum):
    """What the RFC's ``do_async_pf`` made of a data abort."""

    ORDINARY = "ordinary"      # reason 0 or APF off: the normal abort handler runs
    WAITED = "waited"          # reason 1: the task waits (or consumed a dummy)
    WOKE = "woke"              # reason 2: a wake for the token in the fault address
    ILLEGAL = "illegal"        # other reason: warning, reason cleared, abort swallowed


class AbortResult(NamedTuple):
    outcome: AbortOutcome
    node: WaitNode | None = None          # WAITED: the inserted node, None if a dummy was consumed
    woken: tuple[WaitNode, ...] = ()      # WOKE: nodes unlinked (their tasks become runnable)


class GuestApf:
    """Waiter tables for ``ncpus`` guest CPUs under one architecture's rules.

    ``preempt_count`` is ``CONFIG_PREEMPT_COUNT``: with it, a preemptible kernel context may
    sleep; without it, any kernel-mode wait halts the vCPU.
    """

    def __init__(self, rules: ArchRules, ncpus: int, *, preempt_count: bool = True) -> None:
        self.rules = rules
        self.ncpus = ncpus
        self.preempt_count = preempt_count
        self.delayed_wake = rules.delayed_wake
        if rules.per_cpu_waiters:
            self.tables: list[dict[int, WaitNode]] = [{} for _ in range(ncpus)]
        else:
            shared: dict[int, WaitNode] = {}
            self.tables = [shared] * ncpus
        self.delayed_pending = [0] * ncpus
        self.dummies = 0              # dummy entries created (ready before not-present)
        self.dummies_consumed = 0     # waits that found their dummy and did not sleep
        self.wake_alls = 0            # ~0 tokens handled
        self.delayed_marked = 0       # wakes turned into "delayed"
        self.illegal_reasons = 0      # arm64 RFC: warnings for an unknown reason value

    # ------------------------------------------------------------------ policy
    def must_halt(self, ctx: FaultContext) -> bool:
        """True when a waiter in ``ctx`` cannot sleep and must halt its vCPU."""
        if ctx is _USER:
            return False
        if ctx is _KERNEL:
            return not self.preempt_count
        return True

    # ------------------------------------------------------------------ table operations
    def wait(self, cpu: int, token: int, task: object, halted: bool) -> WaitNode | None:
        """Queue ``task`` on ``token``; None when a dummy was waiting (no sleep needed)."""
        table = self.tables[cpu]
        node = table.get(token)
        if node is not None:
            if not node.dummy:
                raise ModelError(errno.EEXIST, f"cpu {cpu}: token {token:#x} already has a waiter")
            del table[token]
            self.dummies_consumed += 1
            return None
        node = WaitNode(token, task, cpu, halted)
        table[token] = node
        return node

    def wake(self, cpu: int, token: int, current: object, rq_locked: bool = False) -> list[WaitNode]:
        """Handle page-ready ``token`` on ``cpu`` in the context of task ``current``.

        Returns the nodes unlinked whose tasks must run again (dummies are never returned).
        """
        if token == WAKE_ALL_TOKEN:
            return self._wake_all(cpu, current, rq_locked)
        table = self.tables[cpu]
        node = table.get(token)
        if node is None:
            table[token] = WaitNode(token, None, cpu, False, dummy=True)
            self.dummies += 1
            return []
        if node.dummy:
            raise ModelError(errno.EALREADY, f"cpu {cpu}: page-ready for token {token:#x} "
                             "delivered twice")
        return [node] if self._wake_one(table, node, current, rq_locked) else []

    def _wake_one(self, table: dict[int, WaitNode], node: WaitNode, current: object,
                  rq_locked: bool) -> bool:
        if self.delayed_wake and (node.task is current or rq_locked) and not node.dummy:
            if not node.delayed:
                node.delayed = True
                self.delayed_pending[node.cpu] += 1
                self.delayed_marked += 1
            return False
        del table[node.token]
        if node.delayed:
            node.delayed = False
            self.delayed_pending[node.cpu] -= 1
        return not node.dummy

    def _wake_all(self, cpu: int, current: object, rq_locked: bool) -> list[WaitNode]:
        self.wake_alls += 1
        table = self.tables[cpu]
        mine = [n for n in table.values() if n.cpu == cpu]
        return [n for n in mine if self._wake_one(table, n, current, rq_locked)]

    def delayed_scan(self, cpu: int, current: object) -> list[WaitNode]:
        """The RFC's ``kvm_async_pf_delayed_wake``: on return to user space / in the idle loop.

        (The RFC also parks reason 1+2 in the control block while it scans so the host will
        not post a signal meanwhile; in this model the scan is atomic, so that is invisible.)
        """
        if not self.delayed_pending[cpu]:
            return []
        table = self.tables[cpu]
        pending = [n for n in table.values() if n.cpu == cpu and n.delayed]
        return [n for n in pending if self._wake_one(table, n, current, False)]

    # ------------------------------------------------------------------ entry points
    def x86_async_pf(self, cpu: int, area: ControlBlock, cr2: int, task: object,
                     halted: bool = False) -> WaitNode | None:
        """The #PF handler for an async not-present: read and zero ``flags``, then wait."""
        if area.reason != PAGE_NOT_PRESENT:
            raise ModelError(errno.EINVAL, f"cpu {cpu}: #PF without a not-present flag "
                             f"(flags={area.reason})")
        area.reason = 0
        return self.wait(cpu, cr2 & 0xFFFF_FFFF, task, halted)

    def x86_ready_interrupt(self, cpu: int, area: ControlBlock, current: object) -> list[WaitNode]:
        """The page-ready vector: wake ``token``, zero it; the caller then writes ACK = 1."""
        token = area.token
        if not token:
            raise ModelError(errno.EINVAL, f"cpu {cpu}: page-ready interrupt with token 0")
        woken = self.wake(cpu, token, current)
        area.token = 0
        return woken

    def arm64_abort(self, cpu: int, area: ControlBlock, far: int, *, task: object,
                    halted: bool) -> AbortResult:
        """``do_async_pf``: dispatch a data abort on the control block's reason.

        ``task`` is the current task (the one whose context took the abort).  The reason is
        cleared after handling.  An unknown reason is warned about, cleared, and the abort is
        swallowed — the faulting access re-executes and, with reason now 0, takes the
        ordinary path (semantics.md §3.7 #8).  :meth:`arm64_not_present` and
        :meth:`arm64_ready` are the two APF branches, for callers that know what was posted.
        """
        if not area.enabled or not area.reason:
            return AbortResult(AbortOutcome.ORDINARY)
        reason = area.reason
        if reason == PAGE_NOT_PRESENT:
            return AbortResult(AbortOutcome.WAITED, self.arm64_not_present(cpu, area, far, task, halted))
        if reason == PAGE_READY:
            return AbortResult(AbortOutcome.WOKE, None, tuple(self.arm64_ready(cpu, area, far, task)))
        self.illegal_reasons += 1
        area.reason = 0
        return AbortResult(AbortOutcome.ILLEGAL)

    def arm64_not_present(self, cpu: int, area: ControlBlock, far: int, task: object,
                          halted: bool) -> WaitNode | None:
        """``arm64_abort`` for an abort the host flagged not-present (reason 1)."""
        if area.reason != PAGE_NOT_PRESENT or not area.enabled:
            raise ModelError(errno.EINVAL, f"cpu {cpu}: abort without a not-present reason "
                             f"(reason={area.reason})")
        node = self.wait(cpu, far & 0xFFFF_FFFF, task, halted)
        area.reason = 0
        return node

    def arm64_ready(self, cpu: int, area: ControlBlock, far: int, current: object) -> list[WaitNode]:
        """``arm64_abort`` for an abort the host flagged page-ready (reason 2)."""
        if area.reason != PAGE_READY or not area.enabled:
            raise ModelError(errno.EINVAL, f"cpu {cpu}: abort without a page-ready reason "
                             f"(reason={area.reason})")
        woken = self.wake(cpu, far & 0xFFFF_FFFF, current)
        area.reason = 0
        return woken

    # ------------------------------------------------------------------ observables
    def waiters(self, cpu: int) -> dict[str, int]:
        """Guest-side view of one CPU's table: sleeping, halted, dummy, delayed."""
        nodes = [n for n in self.tables[cpu].values() if n.cpu == cpu]
        return {
            "sleeping": sum(1 for n in nodes if not n.dummy and not n.halted),
            "halted": sum(1 for n in nodes if n.halted),
            "dummy": sum(1 for n in nodes if n.dummy),
            "delayed": self.delayed_pending[cpu],
        }
