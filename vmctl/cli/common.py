"""Helpers shared by command modules; imports nothing heavy."""

from __future__ import annotations

import enum
import json
import sys
from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:  # pragma: no cover
    import pluggy



class Session:
    """What one ``vmctl`` invocation shares between its commands: ``ctx.obj``.

    The plugin manager is built on first use (``--help`` and TAB never build it) and passed
    down through typer's context instead of living in a module global.
    """

    def __init__(self, pm: Any = None) -> None:
        self._pm = pm

    @property
    def pm(self) -> pluggy.PluginManager:
        if self._pm is None:
            from vmctl.plugins import get_plugin_manager

            self._pm = get_plugin_manager()
        return self._pm


class TextJson(str, enum.Enum):
    text = "text"
    json = "json"


def session() -> Session:
    """The current invocation's :class:`Session` (from the root context's ``obj``)."""
    try:  # typer < 0.20 depends on click; later versions vendor it
        from click import get_current_context
    except ImportError:
        from typer.main import get_current_context  # type: ignore[attr-defined,no-redef]

    ctx = get_current_context(silent=True)
    root = ctx.find_root() if ctx is not None else None
    if root is None:
        return Session()  # outside a command (a library caller): a manager of its own
    if not isinstance(root.obj, Session):
        root.obj = Session()
    return root.obj


def plugin_manager() -> pluggy.PluginManager:
    """The invocation's plugin manager, built on first use (see :class:`Session`)."""
    return session().pm


def emit_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n")


def echo(text: str = "", err: bool = False) -> None:
    """Print a line for people: control characters shown as escapes, never sent raw."""
    from vmctl.textfmt import safe_lines

    typer.echo(safe_lines(text), err=err)


SYSFS_ROOT = typer.Option("/", "--sysfs-root", metavar="DIR",
                          help="Root under which /sys and /dev are read and written (a fake tree in tests).")
