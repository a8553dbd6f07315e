"""Helpers shared by command modules; imports nothing heavy."""

from __future__ import annotations

import enum
import json
import sys
from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:  # pragma: no cover
    import pluggy

_PM: list[Any] = []


class TextJson(str, enum.Enum):
    text = "text"
    json = "json"


def plugin_manager() -> pluggy.PluginManager:
    """The run's plugin manager, built on first use."""
    if not _PM:
        from vmctl.plugins import get_plugin_manager

        _PM.append(get_plugin_manager())
    return _PM[0]


def emit_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n")


def echo(text: str = "", err: bool = False) -> None:
    """Print a line for people: control characters shown as escapes, never sent raw."""
    from vmctl.textfmt import safe_lines

    typer.echo(safe_lines(text), err=err)


SYSFS_ROOT = typer.Option("/", "--sysfs-root", metavar="DIR",
                          help="Root under which /sys and /dev are read and written (a fake tree in tests).")
