"""What installed plugins contribute to completion, remembered between TABs.

Plugin names, device kinds, export formats, the plugins' command groups (``vmctl ap``-style
groups, built-in or not, with their options and arguments) and the plugins
that answer ``vmctl_complete`` are only known after discovering entry points and importing every
plugin — too slow for a TAB.  :func:`plugin_facts` keeps them in
``$XDG_CACHE_HOME/vmctl/complete.json`` under the install-state key of
:mod:`vmctl.pluginfacts` (shared with the CLI's command cache): the modification times of
every ``sys.path`` folder and plugin module, and ``VMCTL_DISABLE_PLUGINS``.  Installing or removing
a plugin changes the key, and the next TAB rebuilds the file (once, ~0.2 s).
"""

from __future__ import annotations

import functools
from typing import Any

from vmctl.pluginfacts import cached, plugin_files

CACHE_NAME = "complete.json"

Facts = dict[str, Any]


@functools.cache
def plugin_facts() -> Facts:
    """The facts: ``plugins``, ``kinds``, ``formats`` (``[[name, help], …]``), ``groups``
    (every plugin's command groups as completion-table nodes) and ``completers`` (``[[plugin,
    entry point], …]`` for the plugins that implement ``vmctl_complete``).  Read once per
    process (one TAB is one process)."""
    return cached(CACHE_NAME, collect)


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
              for n in plugin_groups(pm, builtin=None, taken=set(TABLE["commands"]))}
    completers = [[name, infos[name].module] for name, _ in sorted(pm.list_name_plugin())
                  if name in infos and "vmctl_complete" in hooks_of(pm, name)]
    facts = {"plugins": plugins, "kinds": kinds, "groups": groups,
             "formats": [[k, v] for k, v in formats(pm).items()], "completers": completers}
    return facts, plugin_files(pm)
