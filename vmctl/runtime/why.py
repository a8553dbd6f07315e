"""Why a machine is not running: the reason ``status`` and the TUI show beside its run state.

QEMU's ``query-status`` says *that* the vCPUs are stopped (``prelaunch``, ``paused``,
``guest-panicked`` …), not why.  The why is in what vmctl knows and in the console log,
which holds the guest's console and QEMU's own messages (the simulator writes the same
kind of lines):

==================  ========================================================================
run state           reason
==================  ========================================================================
``prelaunch``       started with ``--paused`` (QEMU's ``-S``), or reset while not running
``guest-panicked``  the guest kernel's panic lines from the console (``-action panic=pause``)
``paused``          the firmware exited (QEMU: ``Stopped as the VM requested "exit"`` — VOF
                    with no kernel), else a ``stop`` over QMP
``shutdown``        the guest powered off and QEMU was told to stay
``watchdog``        a guest watchdog fired with ``action = "pause"``
``internal-error``  QEMU hit an emulation error (its lines in the console log)
``io-error``        a disk error stopped the vCPUs (``werror=stop``)
==================  ========================================================================
"""

from __future__ import annotations

import re
from collections.abc import Sequence

#: How much of the console log (bytes from its end) status and probes read.
CONSOLE_BYTES = 65536

#: The first line of a guest kernel's panic or oops report.
PANIC = re.compile(r"Kernel panic - not syncing|kernel BUG at|Unable to handle kernel|Oops:")
#: QEMU 7.2's line when the guest firmware calls ``exit`` (VOF without a kernel, SLOF's ``bye``).
FIRMWARE_EXIT = re.compile(r'Stopped as the VM requested "exit"')
#: A printk line (``[    1.234567] …``): the guest kernel is running.
PRINTK = re.compile(r"^\[\s*\d+\.\d+\] ")


def _strip_stamp(line: str) -> str:
    return PRINTK.sub("", line).strip()


def panic_lines(log: Sequence[str], most: int = 3) -> list[str]:
    """The last panic report's first ``most`` lines, without printk time stamps."""
    starts = [i for i, line in enumerate(log) if PANIC.search(line)]
    if not starts:
        return []
    return [_strip_stamp(line) for line in log[starts[-1]:starts[-1] + most] if line.strip()]


def why_stopped(run_state: str | None, log: Sequence[str], *, paused_at_start: bool = False) -> str:
    """One sentence on why a machine in ``run_state`` is not running, or ``""``."""
    if run_state == "prelaunch":
        if paused_at_start:
            return "started paused (--paused, QEMU's -S): send cont over QMP to start the vCPUs"
        return "reset while stopped: send cont over QMP to start the vCPUs"
    if run_state == "guest-panicked":
        lines = panic_lines(log, most=1)
        return ("the guest kernel panicked: " + lines[0] if lines
                else "the guest reported a panic (no panic text in the console log)")
    if run_state == "paused":
        for line in reversed(log):
            if FIRMWARE_EXIT.search(line):
                return ("the guest firmware exited (QEMU: Stopped as the VM requested \"exit\"); "
                        "is there a kernel to boot? set [boot] kernel")
            if PRINTK.match(line):
                break  # the guest ran after any firmware exit: a stop over QMP
        return "stopped over QMP (stop); send cont to resume"
    if run_state == "shutdown":
        return "the guest powered off; QEMU keeps the machine until vmctl stop"
    if run_state == "watchdog":
        return "the guest's watchdog fired (action pause)"
    if run_state == "internal-error":
        return "QEMU hit an emulation error; the console log has its lines"
    if run_state == "io-error":
        return "a disk I/O error stopped the vCPUs"
    return ""
