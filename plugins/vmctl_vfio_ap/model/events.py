"""What the AP model reports: counters, hot-plug and reset events, kernel messages.

These records are what ``vmctl status``, the simulator's QMP events and the TUI panel show
(semantics.md §4.9).  They are plain data; the model appends to them, nothing reads a clock.
"""

from __future__ import annotations

import enum
from collections import Counter
from dataclasses import dataclass, field


class Trigger(str, enum.Enum):
    """Why a guest's AP configuration changed while it ran (§4.6)."""

    ASSIGN = "assign"
    """sysfs ``assign_adapter``/``assign_domain``/``assign_control_domain``."""
    UNASSIGN = "unassign"
    """sysfs ``unassign_*``."""
    QUEUE_PROBE = "queue-probe"
    """A queue bound to vfio_ap (``bind``, or a mask change handing it over)."""
    QUEUE_REMOVE = "queue-remove"
    """A queue left vfio_ap (``unbind``, a mask change, or it disappeared in a scan)."""
    CONFIG_CHANGE = "config-change"
    """The host AP configuration lost adapters/domains (AP bus ``on_config_changed``)."""
    SCAN_COMPLETE = "scan-complete"
    """The host AP configuration gained adapters/domains (AP bus ``on_scan_complete``)."""


@dataclass(frozen=True)
class HotplugEvent:
    """One update of a running guest's CRYCB masks.

    ``plugged``/``unplugged`` are APQNs (``AA.DDDD``) the guest gained/lost; ``cdoms_plugged``
    /``cdoms_unplugged`` control domains.  An update can both plug and unplug.
    """

    seq: int
    mdev: str
    guest: str
    trigger: Trigger
    plugged: tuple[str, ...] = ()
    unplugged: tuple[str, ...] = ()
    cdoms_plugged: tuple[int, ...] = ()
    cdoms_unplugged: tuple[int, ...] = ()


@dataclass(frozen=True)
class ResetEvent:
    """A queue reset (ZAPQ): after unassignment, unbind, mdev close/remove or VFIO_DEVICE_RESET.

    ``rc`` is the AP response code (0 = normal); a non-zero ``rc`` keeps the queue's adapter
    out of the guest until a later reset succeeds.
    """

    seq: int
    apqn: str
    reason: str
    rc: int = 0


@dataclass
class Counters:
    """Counters of §4.9, keyed where the spec says "by trigger" or "by errno"."""

    hotplug: Counter[str] = field(default_factory=Counter)
    hotunplug: Counter[str] = field(default_factory=Counter)
    resets: int = 0
    reset_failures: int = 0
    aqic: Counter[str] = field(default_factory=Counter)
    mask_writes_refused: Counter[str] = field(default_factory=Counter)
    assignments_refused: Counter[str] = field(default_factory=Counter)

    def to_json(self) -> dict[str, object]:
        return {"hotplug": dict(sorted(self.hotplug.items())),
                "hotunplug": dict(sorted(self.hotunplug.items())),
                "resets": self.resets, "reset_failures": self.reset_failures,
                "aqic": dict(sorted(self.aqic.items())),
                "mask_writes_refused": dict(sorted(self.mask_writes_refused.items())),
                "assignments_refused": dict(sorted(self.assignments_refused.items()))}


@dataclass
class Journal:
    """Everything the model reports, in order: kernel log lines, hot-plug and reset events."""

    counters: Counters = field(default_factory=Counters)
    log: list[str] = field(default_factory=list)
    hotplugs: list[HotplugEvent] = field(default_factory=list)
    resets: list[ResetEvent] = field(default_factory=list)
    seq: int = 0

    def next_seq(self) -> int:
        self.seq += 1
        return self.seq

    def kmsg(self, line: str) -> None:
        """A kernel log (dmesg) line."""
        self.log.append(line)
