"""Is a process still the one we started?  (``/proc/PID/stat``, no psutil.)

A pid alone is not an identity: after a crash the number can be reused by an unrelated
process.  vmctl records each process's start time (field 22 of ``/proc/PID/stat``, clock
ticks since boot) when it starts it, and :func:`is_alive` compares both.  A zombie counts
as dead.
"""

from __future__ import annotations

import os


def _stat_fields(pid: int, tid: int | None = None) -> list[str] | None:
    path = f"/proc/{pid}/stat" if tid is None else f"/proc/{pid}/task/{tid}/stat"
    try:
        with open(path, "rb") as f:
            raw = f.read().decode("ascii", "replace")
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # comm (field 2) may contain spaces and parentheses: split after the last ')'.
    return raw[raw.rfind(")") + 2:].split()


def start_time(pid: int) -> int | None:
    """The process's start time in clock ticks since boot, or None if it is gone."""
    fields = _stat_fields(pid)
    if fields is None or len(fields) < 20:
        return None
    return int(fields[19])


def is_alive(pid: int | None, started: int | None) -> bool:
    """True when ``pid`` exists, is not a zombie, and started at ``started`` (if given)."""
    if not pid or pid <= 0:
        return False
    fields = _stat_fields(pid)
    if fields is None or not fields:
        return False
    if fields[0] in ("Z", "X"):
        return False
    return started is None or int(fields[19]) == started


def boot_time() -> float:
    """Wall-clock time of the boot (``btime`` in ``/proc/stat``)."""
    with open("/proc/stat", encoding="ascii") as f:
        for line in f:
            if line.startswith("btime "):
                return float(line.split()[1])
    return 0.0


def started_at(pid: int) -> float | None:
    """Wall-clock start time of ``pid`` (seconds since the epoch), or None."""
    ticks = start_time(pid)
    if ticks is None:
        return None
    return boot_time() + ticks / os.sysconf("SC_CLK_TCK")


def thread_cpu(pid: int, tid: int) -> tuple[float, str] | None:
    """Thread ``tid`` of ``pid``: ``(CPU seconds used, scheduler state letter)``, or None.

    ``utime + stime`` (fields 14 and 15) in clock ticks, as ``top -H`` and virt-top read
    them; the state is ``R`` (running), ``S`` (sleeping: a halted vCPU) …
    """
    fields = _stat_fields(pid, tid)
    if fields is None or len(fields) < 13:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK"), fields[0]
