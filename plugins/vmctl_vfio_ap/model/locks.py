"""The vfio_ap lock hierarchy, checked like lockdep, and a deterministic interleaver.

Every model operation is a generator that *yields* lock requests (:class:`Acquire`,
:class:`Release`) and does its work between them, exactly where the kernel holds the locks.
A driver runs it:

* :func:`run` — one operation alone (the normal, fast path);
* :class:`Interleaver` — several operations at once, switching between them at every lock
  request in an order drawn from a seeded :class:`random.Random`, so a race is reproducible
  from its seed.

Both go through :class:`LockChecker`, which enforces the global order and raises
:class:`LockOrderError` (``EDEADLK``) on an inversion *before* taking the lock, the way
lockdep reports a possible deadlock even when the run itself would not hang.

The locks (semantics.md §4.7, ``Documentation/arch/s390/vfio-ap-locking.rst``)::

    merged (Linux 6.0, v19):  pqap_hook_rwsem → ap_perms_mutex → guests_lock → kvm->lock → mdevs_lock
    seed v18 (experimental):  pqap_hook_rwsem → guests_lock → kvm->lock → mdevs_lock → ap_perms_mutex

In v18 the assign path took ``ap_perms_mutex`` last (inside the AP bus helper), so the
apmask/aqmask store, which holds ``ap_perms_mutex`` first, could only look at the mdevs with
*try-locks* — and fails with ``EBUSY`` when they are contended.  Try-locks cannot deadlock and
are exempt from the order check, as in lockdep.  ``kvm->lock`` and the PQAP rwsem exist once
per guest (the lock *instance* is the guest name); holding two instances of one class at once
is reported as recursive locking.
"""

from __future__ import annotations

import enum
import errno
import random
from collections.abc import Generator
from dataclasses import dataclass
from typing import Any, NamedTuple, TypeVar

from vmctl.api import ModelError


class LockClass(str, enum.Enum):
    """The lock classes of the vfio_ap driver, the AP bus and KVM."""

    PQAP_HOOK = "kvm->arch.crypto.pqap_hook_rwsem"
    AP_PERMS = "ap_perms_mutex"
    GUESTS = "matrix_dev->guests_lock"
    KVM = "kvm->lock"
    MDEVS = "matrix_dev->mdevs_lock"


class LockingModel(str, enum.Enum):
    """Which locking design the model follows."""

    MERGED = "merged"
    """Linux 6.0 (v19, what upstream merged): assign_* take ap_perms_mutex first; in_use locks plainly."""
    SEED_V18 = "v18"
    """The v18 proposal (seed 004): in_use try-locks and returns EBUSY when contended. Experimental."""


ORDERS: dict[LockingModel, tuple[LockClass, ...]] = {
    LockingModel.MERGED: (LockClass.PQAP_HOOK, LockClass.AP_PERMS, LockClass.GUESTS,
                          LockClass.KVM, LockClass.MDEVS),
    LockingModel.SEED_V18: (LockClass.PQAP_HOOK, LockClass.GUESTS, LockClass.KVM,
                            LockClass.MDEVS, LockClass.AP_PERMS),
}


class Acquire(NamedTuple):
    """Request to take a lock; the driver sends back ``True`` (taken) or ``False`` (try-lock lost)."""

    cls: LockClass
    instance: str = ""
    shared: bool = False
    trylock: bool = False


class Release(NamedTuple):
    """Request to drop a lock this operation holds."""

    cls: LockClass
    instance: str = ""


LOCK_AP_PERMS, UNLOCK_AP_PERMS = Acquire(LockClass.AP_PERMS), Release(LockClass.AP_PERMS)
LOCK_GUESTS, UNLOCK_GUESTS = Acquire(LockClass.GUESTS), Release(LockClass.GUESTS)
LOCK_MDEVS, UNLOCK_MDEVS = Acquire(LockClass.MDEVS), Release(LockClass.MDEVS)
"""Requests for the global (single-instance) locks, built once."""

Request = Acquire | Release
T = TypeVar("T")
Op = Generator[Request, Any, T]
"""An operation: yields lock requests, returns its result (or raises ModelError)."""


class LockOrderError(ModelError):
    """A lock taken against the declared order (or recursively): ``EDEADLK``."""

    def __init__(self, message: str) -> None:
        super().__init__(errno.EDEADLK, message)


def _name(cls: LockClass, instance: str) -> str:
    return f"{cls.value}[{instance}]" if instance else cls.value


class _State:
    __slots__ = ("writer", "readers")

    def __init__(self) -> None:
        self.writer: str | None = None
        self.readers: dict[str, int] = {}


class LockChecker:
    """Tracks who holds which lock and refuses acquisitions against the global order.

    ``ctx`` names the operation (the "task") taking the lock.  :meth:`acquire` returns whether
    the lock was taken; ``False`` means it is held elsewhere (a try-lock lost, or a blocking
    acquisition that must wait).  Counters: ``acquisitions``, ``contentions``,
    ``inversions`` (messages of refused acquisitions).
    """

    def __init__(self, model: LockingModel = LockingModel.MERGED) -> None:
        self.model = model
        self.order = ORDERS[model]
        self._rank = {c: i for i, c in enumerate(self.order)}
        #: per operation: ``(class, instance, shared, rank, state)`` of each lock it holds
        self._held: dict[str, list[tuple[LockClass, str, bool, int, _State]]] = {}
        self._locks: dict[tuple[LockClass, str], _State] = {}
        self.acquisitions = 0
        self.contentions = 0
        self.inversions: list[str] = []

    def order_text(self) -> str:
        return " → ".join(c.value for c in self.order)

    def held(self, ctx: str) -> tuple[str, ...]:
        """Names of the locks ``ctx`` holds, in acquisition order."""
        return tuple(_name(h[0], h[1]) for h in self._held.get(ctx, ()))

    def holders(self, cls: LockClass, instance: str = "") -> tuple[str, ...]:
        """The operations holding a lock (one writer, or the readers)."""
        st = self._locks.get((cls, instance))
        if st is None:
            return ()
        return (st.writer,) if st.writer else tuple(st.readers)

    def is_free(self, req: Acquire) -> bool:
        """Whether ``req`` could be taken now (no writer; no readers for an exclusive take)."""
        st = self._locks.get((req.cls, req.instance))
        return st is None or (st.writer is None and (req.shared or not st.readers))

    def holds_any(self, ctx: str) -> bool:
        return ctx in self._held

    def _refuse(self, ctx: str, req: Acquire, cls: LockClass, inst: str) -> None:
        if cls is req.cls:
            what = "recursive locking" if inst == req.instance else "nested locking of one class"
            msg = (f"{ctx}: {what}: acquiring {_name(req.cls, req.instance)} while holding "
                   f"{_name(cls, inst)}")
        else:
            msg = (f"{ctx}: lock inversion: acquiring {_name(req.cls, req.instance)} while "
                   f"holding {_name(cls, inst)}; the order is {self.order_text()}")
        self.inversions.append(msg)
        raise LockOrderError(msg)

    def acquire(self, ctx: str, req: Acquire) -> bool:
        """Take ``req`` for ``ctx`` if it is free; raise :class:`LockOrderError` on an inversion.

        Every lock ``ctx`` already holds must rank strictly below the new one (same class:
        recursive or nested locking).  Try-locks are not order-checked: they cannot deadlock.
        """
        cls, inst, shared, trylock = req
        rank = self._rank[cls]
        held = self._held.get(ctx)
        if held and not trylock:
            for h in held:
                if h[3] >= rank:
                    self._refuse(ctx, req, h[0], h[1])
        key = (cls, inst)
        st = self._locks.get(key)
        if st is None:
            st = self._locks[key] = _State()
        if st.writer is not None or (st.readers and not shared):
            self.contentions += 1
            return False
        if shared:
            st.readers[ctx] = st.readers.get(ctx, 0) + 1
        else:
            st.writer = ctx
        if held is None:
            self._held[ctx] = [(cls, inst, shared, rank, st)]
        else:
            held.append((cls, inst, shared, rank, st))
        self.acquisitions += 1
        return True

    def release(self, ctx: str, req: Release) -> None:
        """Drop a lock ``ctx`` holds; releasing a lock not held is a model bug (``EPERM``)."""
        cls, inst = req
        held = self._held.get(ctx, [])
        i = len(held) - 1
        while i >= 0 and not (held[i][0] is cls and held[i][1] == inst):
            i -= 1
        if i < 0:
            raise ModelError(errno.EPERM, f"{ctx}: releasing {_name(cls, inst)} it does not hold")
        _, _, shared, _, st = held.pop(i)
        if shared:
            st.readers[ctx] -= 1
            if not st.readers[ctx]:
                del st.readers[ctx]
        else:
            st.writer = None
        if not held:
            del self._held[ctx]

    def release_all(self, ctx: str) -> tuple[str, ...]:
        """Drop everything ``ctx`` holds (error paths); returns what was held."""
        names = self.held(ctx)
        for h in reversed(list(self._held.get(ctx, ()))):
            self.release(ctx, Release(h[0], h[1]))
        return names


def run(checker: LockChecker, ctx: str, op: Op[T]) -> T:
    """Run one operation to completion through ``checker``.

    A blocking acquisition of a lock held by another (paused) operation cannot make progress
    here and is reported as ``EDEADLK`` naming the holder.  Whatever the operation still holds
    when it fails is dropped; returning while holding a lock is a model bug (``EDEADLK``).
    """
    send: Any = None
    step, acquire, release = op.send, checker.acquire, checker.release
    try:
        while True:
            req = step(send)
            if type(req) is Acquire:
                send = acquire(ctx, req)
                if not send and not req.trylock:
                    holders = ", ".join(checker.holders(req.cls, req.instance))
                    op.close()
                    raise ModelError(errno.EDEADLK, f"{ctx}: would wait forever for "
                                     f"{_name(req.cls, req.instance)} held by {holders}")
            else:
                release(ctx, req)
                send = None
    except StopIteration as stop:
        if checker.holds_any(ctx):
            leaked = checker.release_all(ctx)
            raise ModelError(errno.EDEADLK, f"{ctx} returned holding {', '.join(leaked)}") from None
        return stop.value  # type: ignore[no-any-return]
    except BaseException:
        checker.release_all(ctx)
        raise


@dataclass
class Outcome:
    """How one task of an :class:`Interleaver` ended: its result or its ModelError."""

    name: str
    result: Any = None
    error: ModelError | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


class Interleaver:
    """Runs several operations concurrently, one lock request at a time, in seeded order.

    At each step a runnable task (not waiting for a lock) is chosen with ``rng`` and advanced
    by one request.  A task whose blocking acquisition finds the lock taken waits until it is
    released.  If every unfinished task waits, that is a deadlock: :meth:`run` raises
    ``ModelError(EDEADLK)`` describing the cycle.  An inversion raises at once.
    """

    def __init__(self, checker: LockChecker, rng: random.Random) -> None:
        self.checker = checker
        self.rng = rng
        self._tasks: dict[str, Op[Any]] = {}
        self._pending: dict[str, Request | None] = {}
        self.trace: list[str] = []

    def spawn(self, name: str, op: Op[Any]) -> None:
        self._tasks[name] = op
        self._pending[name] = None

    def _step(self, name: str, send: Any, outcomes: dict[str, Outcome]) -> None:
        op = self._tasks[name]
        try:
            self._pending[name] = op.send(send)
        except StopIteration as stop:
            outcomes[name] = Outcome(name, result=stop.value)
        except LockOrderError:
            raise
        except ModelError as err:
            outcomes[name] = Outcome(name, error=err)
        if name in outcomes:
            self.checker.release_all(name)
            del self._tasks[name], self._pending[name]

    def run(self) -> dict[str, Outcome]:
        outcomes: dict[str, Outcome] = {}
        for name in list(self._tasks):
            self._step(name, None, outcomes)
        while self._tasks:
            runnable = [name for name, req in self._pending.items()
                        if not (type(req) is Acquire and not req.trylock and not self.checker.is_free(req))]
            if not runnable:
                raise ModelError(errno.EDEADLK, "deadlock: " + "; ".join(
                    f"{n} waits for {_name(r.cls, r.instance)} held by "
                    f"{', '.join(self.checker.holders(r.cls, r.instance))}"
                    for n, r in sorted(self._pending.items()) if isinstance(r, Acquire)))
            name = self.rng.choice(sorted(runnable))
            req = self._pending[name]
            if type(req) is Acquire:
                ok = self.checker.acquire(name, req)
                self.trace.append(f"{name}: {'take' if ok else 'trylock-fail'} {_name(req.cls, req.instance)}")
                self._step(name, ok, outcomes)
            elif type(req) is Release:
                self.checker.release(name, req)
                self.trace.append(f"{name}: drop {_name(req.cls, req.instance)}")
                self._step(name, None, outcomes)
        return outcomes
