"""Small text formats shared by the CLI and the TUI (no heavy imports)."""

from __future__ import annotations


def format_duration(seconds: float | None, missing: str = "—") -> str:
    """``"42s"``, ``"3m05s"``, ``"2h03m"``, ``"4d02h"`` — short and sortable by eye."""
    if seconds is None:
        return missing
    s = int(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600:02d}h"
