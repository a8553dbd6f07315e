"""What one poll of a running instance saw, as plain data (no Textual, no sockets).

The feed (:mod:`vmctl.tui.feed`) produces a :class:`Snapshot` per poll and whenever the
connection changes; the screens only render snapshots.  That split keeps the screens
testable with recorded or in-process data and keeps every QMP detail in one place.

The connection to an instance is in one of the :class:`Link` states: the instance's
file-and-process :class:`~vmctl.runtime.inspect.State` (what ``vmctl ps`` shows) seen
through a QMP connection, mapped in one place (:meth:`Link.of`):

============  ==============================================================================
link          meaning (what the header and ``vmctl top`` show instead of the run state)
============  ==============================================================================
connecting    the instance folder says the backend is starting or running; no QMP yet
live          connected; ``run_state`` is QEMU's ``query-status`` answer
lost          the backend process is alive but its QMP socket is gone or refuses us
crashed       the backend was killed or failed (``reason`` holds the exit and why)
exited        the backend ended normally (guest power-off, ``quit``)
gone          the instance folder was removed (``vmctl stop`` cleaned it)
============  ==============================================================================
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from vmctl.runtime.inspect import State
from vmctl.textfmt import format_duration  # noqa: F401 - the TUI's widgets import it from here
from vmctl.types import LiveState


class Link(str, enum.Enum):
    """The state of vmctl's connection to an instance (see the module docstring)."""

    CONNECTING = "connecting"
    LIVE = "live"
    LOST = "lost"
    CRASHED = "crashed"
    EXITED = "exited"
    GONE = "gone"

    @property
    def dead(self) -> bool:
        """True when the backend process is no longer there to talk to."""
        return self in (Link.CRASHED, Link.EXITED, Link.GONE)

    @classmethod
    def of(cls, state: State | None, *, after_loss: bool = False) -> Link:
        """The link an instance's file-and-process :class:`~vmctl.runtime.inspect.State`
        implies while no QMP connection is up (``None``: the folder is gone).

        One mapping for every screen: ``crashed`` and ``exited`` are the same words in both
        enums, ``starting``/``running``/``stopping`` are ``connecting`` — or ``lost`` once a
        connection was up (``after_loss``).  ``live`` is only ever set by a connected poll.
        """
        if state is None:
            return cls.GONE
        if state.alive:
            return cls.LOST if after_loss else cls.CONNECTING
        return cls(state.value)


@dataclass(frozen=True)
class Vcpu:
    """One row of the vCPU table (``query-cpus-fast``, plus the simulator's load)."""

    index: int
    thread_id: int | None = None
    core: int | None = None
    state: str = ""              # s390 ``cpu-state``; "online"/"offline" on the simulator
    load: float | None = None    # simulator only: 0.0 .. 1.0
    qom_path: str = ""


@dataclass(frozen=True)
class Snapshot:
    """One observation of one instance.

    ``sampled_at`` is the feed's monotonic clock (seconds) when the poll finished; rates
    are computed from it.  ``now`` is the wall clock at the same moment, for uptimes.
    """

    name: str
    backend: str
    link: Link
    sampled_at: float
    now: float
    reason: str = ""
    run_state: str | None = None
    started: float | None = None
    socket: str = ""
    vcpus: tuple[Vcpu, ...] = ()
    sim: Mapping[str, Any] | None = None
    plugins: Mapping[str, LiveState] = field(default_factory=dict)

    @property
    def uptime(self) -> float | None:
        """Seconds since the backend started, while it lives."""
        if self.started is None or self.link.dead:
            return None
        return max(0.0, self.now - self.started)

    @property
    def status(self) -> str:
        """The one word a user wants: the run state when live, else the link state."""
        if self.link is Link.LIVE and self.run_state:
            return self.run_state
        return self.link.value


class RateMeter:
    """Per-second rates of monotonically rising counters, with a short history.

    Feed it ``(counter value, time)`` pairs as they are polled::

        meter = RateMeter(history=60)
        meter.update("delivered", 1000, at=10.0)   # None: no rate from one sample
        meter.update("delivered", 1600, at=10.5)   # 1200.0 per second
        meter.history("delivered")                 # [1200.0]

    A counter that goes down (the machine was reset, a device re-created) restarts the
    rate instead of producing a negative one; two samples at the same time are ignored.
    """

    def __init__(self, history: int = 60) -> None:
        self._last: dict[str, tuple[float, float]] = {}
        self._rates: dict[str, deque[float]] = {}
        self._size = history

    def update(self, key: str, value: float, at: float) -> float | None:
        """Record ``value`` at time ``at``; the rate since the previous sample, or None."""
        prev = self._last.get(key)
        if prev is not None and at <= prev[1]:
            return self.current(key)
        self._last[key] = (float(value), at)
        if prev is None:
            return None
        if value < prev[0]:
            self._rates.pop(key, None)
            return None
        rate = (value - prev[0]) / (at - prev[1])
        self._rates.setdefault(key, deque(maxlen=self._size)).append(rate)
        return rate

    def current(self, key: str) -> float | None:
        """The most recent rate of ``key``, or None before two samples."""
        rates = self._rates.get(key)
        return rates[-1] if rates else None

    def history(self, key: str) -> list[float]:
        """Past rates of ``key``, oldest first (at most ``history`` of them)."""
        return list(self._rates.get(key, ()))

    def reset(self) -> None:
        """Forget everything (a new connection, another instance)."""
        self._last.clear()
        self._rates.clear()


def format_rate(rate: float | None, unit: str = "/s") -> str:
    """``"—"``, ``"950/s"``, ``"1.2k/s"``, ``"3.4M/s"``."""
    if rate is None:
        return "—"
    for scale, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(rate) >= scale:
            return f"{rate / scale:.1f}{suffix}{unit}"
    return f"{rate:.0f}{unit}"


def format_count(value: float | None) -> str:
    """A counter for a narrow column: ``"12"``, ``"4.5k"``, ``"1.2M"``."""
    return "—" if value is None else format_rate(value, unit="")
