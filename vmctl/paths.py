"""Where vmctl keeps state and caches (XDG rules, overridable for tests)."""

from __future__ import annotations

import os
from pathlib import Path


def state_dir() -> Path:
    """``$VMCTL_STATE_DIR``, else ``$XDG_RUNTIME_DIR/vmctl``, else ``~/.local/state/vmctl``."""
    if os.environ.get("VMCTL_STATE_DIR"):
        return Path(os.environ["VMCTL_STATE_DIR"])
    if os.environ.get("XDG_RUNTIME_DIR"):
        return Path(os.environ["XDG_RUNTIME_DIR"]) / "vmctl"
    return Path.home() / ".local" / "state" / "vmctl"


def cache_dir() -> Path:
    """``$VMCTL_CACHE_DIR``, else ``$XDG_CACHE_HOME/vmctl``, else ``~/.cache/vmctl``."""
    if os.environ.get("VMCTL_CACHE_DIR"):
        return Path(os.environ["VMCTL_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "vmctl"
