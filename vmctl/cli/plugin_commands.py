"""The plugins' command groups, remembered between runs so ``vmctl --help`` stays fast.

Listing ``vmctl ap`` in the help needs the plugins' ``vmctl_cli_commands`` answers; they
are kept by :func:`vmctl.pluginfacts.cached` under the install-state key.
"""

from __future__ import annotations

from typing import Any

from vmctl.pluginfacts import cached, plugin_files

CACHE_NAME = "cli-commands.json"


def plugin_commands(session: Any = None) -> list[dict[str, str]]:
    """``[{"name", "help", "factory", "plugin"}, …]`` from the cache or the plugins
    (asked through ``session``'s plugin manager when the cache is stale)."""

    def ask() -> tuple[list[dict[str, str]], list[str]]:
        from vmctl.cli.common import Session
        from vmctl.plugins import call_flat

        pm = (session if isinstance(session, Session) else Session()).pm
        commands = [{"name": c.name, "help": c.help, "factory": c.factory, "plugin": c.plugin}
                    for c in call_flat(pm, "vmctl_cli_commands")]
        return commands, plugin_files(pm)

    return cached(CACHE_NAME, ask)
