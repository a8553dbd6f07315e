"""vmctl: configure, validate, plan, run and monitor QEMU machines through plugins.

``vmctl.hookimpl`` is the marker for plugin hook implementations.  It is created on first
use so that ``import vmctl`` (and so ``vmctl --help``) does not import pluggy.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    if name == "hookimpl":
        import pluggy

        marker = pluggy.HookimplMarker("vmctl")
        globals()["hookimpl"] = marker
        return marker
    raise AttributeError(f"module 'vmctl' has no attribute {name!r}")
