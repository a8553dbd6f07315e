"""What installed plugins contribute, remembered between runs under an install-state key.

Some answers need every plugin imported (≈ 40 ms with entry-point discovery): the command
groups ``vmctl --help`` lists, and the names, kinds, formats and completers a TAB offers.
:func:`cached` keeps such an answer in the user cache dir under a key made of the install
state — the modification times of every ``sys.path`` folder (installing or removing a
distribution changes them), of each plugin module file, ``VMCTL_DISABLE_PLUGINS`` and the
Python version — and asks the plugins again only when the key changes.  One module for
both users (:mod:`vmctl.cli.plugin_commands`, :mod:`vmctl.complete.cache`), so neither
imports the other.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from typing import Any

from vmctl.paths import cache_dir


def _stamp(paths: list[str]) -> list[list[Any]]:
    out = []
    for p in paths:
        try:
            out.append([p, os.stat(p).st_mtime_ns])
        except OSError:
            out.append([p, None])
    return out


def install_key(module_files: list[str]) -> dict[str, Any]:
    """The install state: ``sys.path`` folders and ``module_files`` with their mtimes."""
    return {"path": _stamp([p for p in sys.path if p]), "modules": _stamp(module_files),
            "disabled": os.environ.get("VMCTL_DISABLE_PLUGINS", ""), "python": sys.version}


def plugin_files(pm: Any) -> list[str]:
    """The module files of the plugins registered in ``pm`` (part of the key)."""
    return sorted({getattr(sys.modules.get(getattr(p, "__name__", "")), "__file__", None) or ""
                   for _, p in pm.list_name_plugin()} - {""})


def cached(name: str, compute: Callable[[], tuple[Any, list[str]]]) -> Any:
    """The answer stored as ``name`` in the cache dir while the install state holds, else
    ``compute()`` → ``(answer, plugin module files)``, stored for next time."""
    path = cache_dir() / name
    try:
        stored = json.loads(path.read_text())
        if stored["key"] == install_key([m[0] for m in stored["key"]["modules"]]):
            return stored["value"]
    except (OSError, ValueError, KeyError, TypeError):
        pass  # missing, stale or unreadable: ask the plugins
    value, files = compute()
    try:
        from vmctl.fsutil import atomic_write

        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, json.dumps({"key": install_key(files), "value": value}), mode=0o600)
    except OSError:
        pass  # an unwritable cache only costs speed
    return value
