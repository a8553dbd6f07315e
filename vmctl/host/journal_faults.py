"""Fault injection for the host journal: stop vmctl at an exact point of apply or undo.

For tests only.  The journal calls :func:`point` at every boundary of its write-ahead
protocol; two ways to act there:

``VMCTL_JOURNAL_PAUSE=POINT:STEP[,POINT:STEP…]``
    the process stops itself with ``SIGSTOP`` when it reaches ``POINT`` of step ``STEP``
    (1-based), after saying so on stderr.  A test waits for the stop (``waitpid`` with
    ``WUNTRACED``), then ``kill -9``\\ s it there, or resumes it with ``SIGCONT``.
:func:`set_hook`
    ``hook(point, step)`` is called in-process at every point (raise to simulate a crash).

The points, in the order one step passes them::

    locked          the lock is held, nothing planned yet (step 0)
    before-intent   step N not yet announced: nothing of it written
    before-write    its intent is on disk; the write has not been made
    after-write     the write was made; its outcome is not on disk
    after-done      the outcome ("done") is on disk
    before-reverse  undo: the reversal of step N is announced; no undo write made yet
    after-reverse   undo: every undo write of step N was made; "reversed" not on disk
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable

ENV = "VMCTL_JOURNAL_PAUSE"
POINTS = ("locked", "before-intent", "before-write", "after-write", "after-done",
          "before-reverse", "after-reverse")

Hook = Callable[[str, int], None]
_hook: list[Hook] = []


def set_hook(hook: Hook | None) -> None:
    """Call ``hook(point, step)`` at every point from now on (None: stop calling it)."""
    _hook[:] = [hook] if hook is not None else []


def point(name: str, step: int = 0) -> None:
    """The journal reached ``name`` for step ``step``: run the hook, pause if asked to."""
    for hook in _hook:
        hook(name, step)
    spec = os.environ.get(ENV, "")
    if spec and f"{name}:{step}" in (s.strip() for s in spec.split(",")):
        print(f"vmctl: paused at {name}:{step} ({ENV}); pid {os.getpid()}", file=sys.stderr, flush=True)
        os.kill(os.getpid(), signal.SIGSTOP)
