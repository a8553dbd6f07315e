"""What installed plugins contribute to completion, remembered between TABs.

Plugin names, device kinds, export formats, third-party command groups (``vmctl ap``-style
groups of plugins not shipped with vmctl, with their options and arguments) and the plugins
that answer ``vmctl_complete`` are only known after discovering entry points and importing every
plugin — too slow for a TAB.  :func:`plugin_facts` keeps them in
``$XDG_CACHE_HOME/vmctl/complete.json`` under the same install-state key as the CLI's
command cache (:mod:`vmctl.cli.plugin_commands`): the modification times of every
``sys.path`` folder and plugin module, and ``VMCTL_DISABLE_PLUGINS``.  Installing or removing
a plugin changes the key, and the next TAB rebuilds the file (once, ~0.2 s).
"""

from __future__ import annotations

import functools
import json
import sys
from typing import Any

from vmctl.cli.plugin_commands import install_key as _key
from vmctl.paths import cache_dir

CACHE_NAME = "complete.json"

Facts = dict[str, Any]


@functools.cache
def plugin_facts() -> Facts:
    """The facts: ``plugins``, ``kinds``, ``formats`` (``[[name, help], …]``), ``groups``
    (third-party command groups as completion-table nodes) and ``completers`` (``[[plugin,
    entry point], …]`` for the plugins that implement ``vmctl_complete``).  Read once per
    process (one TAB is one process)."""
    path = cache_dir() / CACHE_NAME
    try:
        cached = json.loads(path.read_text())
        if cached["key"] == _key([m[0] for m in cached["key"]["modules"]]):
            return cached["facts"]
    except (OSError, ValueError, KeyError, TypeError):
        pass  # missing, stale or unreadable: rebuild below
    facts, files = collect()
    try:
        from vmctl.fsutil import atomic_write

        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, json.dumps({"key": _key(files), "facts": facts}), mode=0o600)
    except OSError:
        pass  # an unwritable cache only costs speed
    return facts


def collect() -> tuple[Facts, list[str]]:
    """Ask the plugins (slow path): the facts, and the plugin module files for the key."""
    from vmctl.export import formats
    from vmctl.plugins import call_flat, get_plugin_manager, hooks_of

    pm = get_plugin_manager()
    infos = pm.infos  # type: ignore[attr-defined]
    plugins = []
    for name, info in sorted(infos.items()):
        origin = "built-in" if info.builtin else f"from {info.distribution or info.module}"
        status = "" if info.status == "loaded" else f", {info.status}"
        plugins.append([name, f"{info.version} {origin}{status}".strip()])
    kinds = sorted([k.name, f"{k.help} ({k.plugin})"] for k in call_flat(pm, "vmctl_device_kinds"))
    from vmctl.complete.clitree import completion_table, plugin_groups
    from vmctl.complete.table import TABLE

    groups = {n["name"]: completion_table(n)
              for n in plugin_groups(pm, builtin=False, taken=set(TABLE["commands"]))}
    completers = [[name, infos[name].module] for name, _ in sorted(pm.list_name_plugin())
                  if name in infos and "vmctl_complete" in hooks_of(pm, name)]
    facts = {"plugins": plugins, "kinds": kinds, "groups": groups,
             "formats": [[k, v] for k, v in formats(pm).items()], "completers": completers}
    files = sorted({getattr(sys.modules.get(getattr(p, "__name__", "")), "__file__", None) or ""
                    for _, p in pm.list_name_plugin()} - {""})
    return facts, files
