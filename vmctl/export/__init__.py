"""Export formats: argv (JSON), sh, libvirt XML; plugins add more (mdevctl-json)."""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable

import pluggy

from vmctl.config.machine import Machine
from vmctl.errors import UsageError
from vmctl.plugins import call_flat

BUILTIN_FORMATS = {
    "argv": "the QEMU command line as a JSON array",
    "sh": "a runnable /bin/sh script; each option carries a comment naming its plugin and TOML line",
    "libvirt-xml": "a libvirt domain definition (virsh define)",
}


def formats(pm: pluggy.PluginManager) -> dict[str, str]:
    """Every format name → help, built-ins first."""
    out = dict(BUILTIN_FORMATS)
    for f in call_flat(pm, "vmctl_export_formats"):
        out.setdefault(f.name, f"{f.help} (plugin {f.plugin})")
    return out


def renderer(name: str, pm: pluggy.PluginManager) -> Callable[[Machine], str]:
    if name == "argv":
        from vmctl.qemu.argv import build_argv

        return lambda m: json.dumps(build_argv(m, pm).args, indent=2) + "\n"
    if name == "sh":
        from vmctl.export.sh import render_sh

        return lambda m: render_sh(m, pm)
    if name == "libvirt-xml":
        from vmctl.export.libvirt import render_libvirt

        return lambda m: render_libvirt(m, pm)
    for f in call_flat(pm, "vmctl_export_formats"):
        if f.name == name:
            mod, _, func = f.render.partition(":")
            return getattr(importlib.import_module(mod), func)
    known = formats(pm)
    from vmctl.config.schema import did_you_mean

    raise UsageError(f"unknown export format {name!r}", did_you_mean(name, list(known), "formats"))
