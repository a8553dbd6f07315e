"""The plugins' command groups, remembered between runs so ``vmctl --help`` stays fast.

Listing ``vmctl ap`` in the help needs the plugins' ``vmctl_cli_commands`` answers, and
asking means discovering entry points and importing every plugin (≈ 40 ms).  The answers
are cached in the user cache dir under a key made of the install state: the
modification times of every ``sys.path`` folder (installing or removing a distribution
changes them), of each plugin module file, and ``VMCTL_DISABLE_PLUGINS``.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

from vmctl.paths import cache_dir

CACHE_NAME = "cli-commands.json"


def _stamp(paths: list[str]) -> list[list[Any]]:
    out = []
    for p in paths:
        try:
            out.append([p, os.stat(p).st_mtime_ns])
        except OSError:
            out.append([p, None])
    return out


def install_key(module_files: list[str]) -> dict[str, Any]:
    return {"path": _stamp([p for p in sys.path if p]), "modules": _stamp(module_files),
            "disabled": os.environ.get("VMCTL_DISABLE_PLUGINS", ""), "python": sys.version}


def plugin_commands(session: Any = None) -> list[dict[str, str]]:
    """``[{"name", "help", "factory", "plugin"}, …]`` from the cache or the plugins
    (asked through ``session``'s plugin manager when the cache is stale)."""
    path = cache_dir() / CACHE_NAME
    try:
        cached = json.loads(path.read_text())
        modules = [m[0] for m in cached["key"]["modules"]]
        if cached["key"] == install_key(modules):
            return cached["commands"]
    except (OSError, ValueError, KeyError, TypeError):
        pass
    from vmctl.cli.common import Session
    from vmctl.plugins import call_flat

    pm = (session if isinstance(session, Session) else Session()).pm
    commands = [{"name": c.name, "help": c.help, "factory": c.factory, "plugin": c.plugin}
                for c in call_flat(pm, "vmctl_cli_commands")]
    files = sorted({getattr(sys.modules.get(getattr(p, "__name__", "")), "__file__", None) or ""
                    for _, p in pm.list_name_plugin()} - {""})
    try:
        from vmctl.fsutil import atomic_write

        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, json.dumps({"key": install_key(files), "commands": commands}), mode=0o600)
    except OSError:
        pass  # an unwritable cache only costs speed
    return commands
