"""Building the plugin manager, and calling hooks one plugin at a time.

No manager exists at import time: :func:`get_plugin_manager` builds one, and callers pass
it on.  Plugins are the entry points of group ``vmctl`` (built-ins included);
``VMCTL_DISABLE_PLUGINS=a,b`` blocks some by name.  A plugin that fails to import, or
raises from a hook, is named in one warning on stderr and left out of the rest of the run.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import traceback
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

import pluggy

from vmctl import hookspecs
from vmctl.errors import VmctlError

GROUP = "vmctl"
BUILTIN = frozenset({"spapr-irq", "vfio", "async-pf", "vfio-ap"})


@dataclass
class PluginInfo:
    """What ``vmctl plugins`` shows about one plugin."""

    name: str
    version: str
    distribution: str
    module: str
    builtin: bool
    status: str = "loaded"  # loaded | disabled | failed
    error: str = ""


@dataclass
class Registry:
    """Attached to the manager as ``pm.vmctl``: load results and the warnings given."""

    infos: dict[str, PluginInfo] = field(default_factory=dict)
    warned: set[str] = field(default_factory=set)


def _warn(pm: pluggy.PluginManager, name: str, what: str) -> None:
    reg: Registry = pm.vmctl  # type: ignore[attr-defined]
    if name in reg.warned:
        return
    reg.warned.add(name)
    from vmctl.textfmt import safe

    print(safe(f"warning: plugin '{name}' {what}; it is left out"), file=sys.stderr)


def get_plugin_manager(entry_points: Iterable[metadata.EntryPoint] | None = None,
                       extra: Iterable[tuple[str, object]] = ()) -> pluggy.PluginManager:
    """Build a plugin manager with every installed plugin registered.

    ``entry_points`` overrides discovery (tests); ``extra`` registers ``(name, module)``
    pairs directly.
    """
    pm = pluggy.PluginManager(GROUP)
    pm.add_hookspecs(hookspecs)
    pm.vmctl = Registry()  # type: ignore[attr-defined]
    disabled = {n.strip() for n in os.environ.get("VMCTL_DISABLE_PLUGINS", "").split(",") if n.strip()}
    eps = metadata.entry_points(group=GROUP) if entry_points is None else entry_points
    for ep in sorted(eps, key=lambda e: e.name):
        if ep.name in pm.vmctl.infos:
            continue
        dist = getattr(ep, "dist", None)
        info = PluginInfo(ep.name, dist.version if dist else "", dist.name if dist else "",
                          ep.value, ep.name in BUILTIN and (dist is None or dist.name == "vmctl"))
        pm.vmctl.infos[ep.name] = info
        if ep.name in disabled:
            info.status = "disabled"
            continue
        try:
            plugin = ep.load()
            pm.register(plugin, name=ep.name)
        except Exception as exc:  # a broken plugin must not break vmctl
            info.status, info.error = "failed", f"{type(exc).__name__}: {exc}"
            _warn(pm, ep.name, f"failed to load ({info.error})")
    for name, plugin in extra:
        pm.vmctl.infos[name] = PluginInfo(name, "", "", getattr(plugin, "__name__", repr(plugin)), False)
        pm.register(plugin, name=name)
    pm.check_pending()
    return pm


def call(pm: pluggy.PluginManager, hook: str, **kwargs: Any) -> list[tuple[str, Any]]:
    """Call ``hook`` on each plugin separately; return ``[(plugin_name, result), …]``.

    ``None`` results are dropped.  Records (dataclasses with a ``plugin`` field), and
    records inside a returned list, are tagged with the plugin's name.  A plugin that
    raises is warned about once, unregistered, and skipped.
    """
    caller = getattr(pm.hook, hook)
    out: list[tuple[str, Any]] = []
    for impl in reversed(caller.get_hookimpls()):  # registration order
        name = impl.plugin_name
        try:
            args = {a: kwargs[a] for a in impl.argnames}
            result = impl.function(**args)
            if result is None:
                continue
            if isinstance(result, (list, tuple)) or (
                    isinstance(result, Iterable) and not isinstance(result, (str, dict, bytes))):
                result = [_tag(r, name) for r in result]
            else:
                result = _tag(result, name)
        except VmctlError:
            raise  # a user-facing refusal (e.g. a host that cannot be prepared), not a broken plugin
        except Exception as exc:  # noqa: BLE001 - isolate the plugin, name it
            if os.environ.get("VMCTL_DEBUG"):
                traceback.print_exc()
            _warn(pm, name, f"raised {type(exc).__name__} in {hook}: {exc}")
            info = pm.vmctl.infos.get(name)  # type: ignore[attr-defined]
            if info:
                info.status, info.error = "failed", f"{hook}: {type(exc).__name__}: {exc}"
            pm.unregister(name=name)
            continue
        out.append((name, result))
    return out


def call_flat(pm: pluggy.PluginManager, hook: str, **kwargs: Any) -> list[Any]:
    """Like :func:`call`, with the plugins' lists concatenated."""
    items: list[Any] = []
    for _, result in call(pm, hook, **kwargs):
        items.extend(result if isinstance(result, list) else [result])
    return items


def _tag(record: Any, name: str) -> Any:
    if dataclasses.is_dataclass(record) and not isinstance(record, type) and hasattr(record, "plugin"):
        if not getattr(record, "plugin"):
            if getattr(type(record), "__dataclass_params__").frozen:
                return dataclasses.replace(record, plugin=name)
            record.plugin = name
    elif hasattr(record, "plugin") and not getattr(record, "plugin", ""):
        try:
            record.plugin = name
        except AttributeError:
            pass
    return record


def hooks_of(pm: pluggy.PluginManager, name: str) -> list[str]:
    """Names of the hooks plugin ``name`` implements."""
    plugin = pm.get_plugin(name)
    if plugin is None:
        return []
    return sorted(c.name for c in pm.get_hookcallers(plugin) or [])
