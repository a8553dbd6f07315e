"""Building the plugin manager, and calling hooks one plugin at a time.

No manager exists at import time: :func:`get_plugin_manager` builds a
:class:`VmctlPluginManager`, and callers pass it on.  Plugins are the entry points of group ``vmctl`` (built-ins included);
``VMCTL_DISABLE_PLUGINS=a,b`` blocks some by name.  A plugin that fails to import, or
raises from a hook, is named in one warning on stderr and left out of the rest of the run.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import sys
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from importlib import metadata
from typing import Any

import pluggy

from vmctl import hookspecs
from vmctl.errors import VmctlError

GROUP = "vmctl"
#: The distribution whose entry points are the built-in plugins: "built-in" is derived from
#: who provides a plugin, not from a list of names the host would have to know.
DISTRIBUTION = "vmctl"


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


def _warn(pm: VmctlPluginManager, name: str, what: str) -> None:
    if name in pm.warned:
        return
    pm.warned.add(name)
    from vmctl.textfmt import safe

    print(safe(f"warning: plugin '{name}' {what}; it is left out"), file=sys.stderr)


class _Tagged:
    """A guarded hookimpl's non-None result, with the plugin that returned it."""

    __slots__ = ("plugin", "value")

    def __init__(self, plugin: str, value: Any) -> None:
        self.plugin, self.value = plugin, value


class VmctlPluginManager(pluggy.PluginManager):
    """vmctl's plugin manager: pluggy's, with load results and plugin isolation.

    Hooks are called through pluggy (``pm.hook.NAME(**kwargs)``, or :meth:`call`), so
    ``firstresult``, ``tryfirst``/``trylast`` and hook wrappers mean what pluggy says.
    Isolation is added at registration instead of by a calling loop: every ordinary
    hookimpl is wrapped in a guard that

    * tags the records it returns with the plugin's name (the ``plugin`` field), and
    * turns an exception (other than :class:`~vmctl.errors.VmctlError`, a deliberate
      refusal) into one warning naming the plugin; the plugin is then unregistered and
      its result counts as ``None``, so the other plugins go on.

    Wrappers (``wrapper=True`` / ``hookwrapper=True``) are left as they are.

    Call order: pluggy calls the *last registered* implementation first.  Entry points
    are registered in name order and ``extra`` plugins after them, so the ``extra``
    plugins are called first (the last one given first), then the entry points in reverse
    name order (``vfio-ap``, ``vfio``, ``spapr-irq``, ``async-pf``); ``tryfirst`` and
    ``trylast`` move an implementation as pluggy documents.  Results come in call order.
    """

    def __init__(self) -> None:
        super().__init__(GROUP)
        self.add_hookspecs(hookspecs)
        self.infos: dict[str, PluginInfo] = {}
        self.warned: set[str] = set()
        self.schema: Any = None  # the machine schema, built once (vmctl.config.schema)

    def register(self, plugin: object, name: str | None = None) -> str | None:
        registered = super().register(plugin, name)
        if registered is not None:
            for caller in self.get_hookcallers(plugin) or []:
                for impl in caller.get_hookimpls():
                    if impl.plugin is plugin and not (impl.hookwrapper or impl.wrapper):
                        impl.function = self._guard(caller.name, registered, impl.function)
        return registered

    def _guard(self, hook: str, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            try:
                result = fn(*args, **kwargs)
            except VmctlError:
                raise  # a user-facing refusal (a host that cannot be prepared), not a bug
            except Exception as exc:  # noqa: BLE001 - isolate the plugin, name it
                self._failed(name, hook, exc)
                return None
            return None if result is None else _Tagged(name, _tag_all(result, name))

        return guarded

    def _failed(self, name: str, hook: str, exc: Exception) -> None:
        if os.environ.get("VMCTL_DEBUG"):
            traceback.print_exception(exc)
        _warn(self, name, f"raised {type(exc).__name__} in {hook}: {exc}")
        info = self.infos.get(name)
        if info:
            info.status, info.error = "failed", f"{hook}: {type(exc).__name__}: {exc}"
        if self.get_plugin(name) is not None:
            self.unregister(name=name)

    def call(self, hook: str, **kwargs: Any) -> list[tuple[str, Any]]:
        """``pm.hook.<hook>(**kwargs)`` as ``[(plugin_name, result), …]``, None dropped.

        For a ``firstresult`` hook the list has at most one pair.  Records (dataclasses
        with a ``plugin`` field), and records inside a returned list, carry the plugin's
        name.
        """
        result = getattr(self.hook, hook)(**kwargs)
        items = result if isinstance(result, list) else [] if result is None else [result]
        return [(r.plugin, r.value) if isinstance(r, _Tagged) else ("", r) for r in items]

    def call_flat(self, hook: str, **kwargs: Any) -> list[Any]:
        """Like :meth:`call`, with the plugins' lists concatenated."""
        out: list[Any] = []
        for _, result in self.call(hook, **kwargs):
            out.extend(result if isinstance(result, list) else [result])
        return out


def get_plugin_manager(entry_points: Iterable[metadata.EntryPoint] | None = None,
                       extra: Iterable[tuple[str, object]] = ()) -> VmctlPluginManager:
    """Build a plugin manager with every installed plugin registered.

    ``entry_points`` overrides discovery (tests); ``extra`` registers ``(name, module)``
    pairs directly.  See :class:`VmctlPluginManager` for the call order.
    """
    pm = VmctlPluginManager()
    disabled = {n.strip() for n in os.environ.get("VMCTL_DISABLE_PLUGINS", "").split(",") if n.strip()}
    eps = metadata.entry_points(group=GROUP) if entry_points is None else entry_points
    loaded: list[tuple[str, object]] = []
    for ep in sorted(eps, key=lambda e: e.name):
        if ep.name in pm.infos:
            continue
        dist = getattr(ep, "dist", None)
        info = PluginInfo(ep.name, dist.version if dist else "", dist.name if dist else "",
                          ep.value, dist is not None and dist.name == DISTRIBUTION)
        pm.infos[ep.name] = info
        if ep.name in disabled:
            info.status = "disabled"
            continue
        try:
            loaded.append((ep.name, ep.load()))
        except Exception as exc:  # a broken plugin must not break vmctl
            info.status, info.error = "failed", f"{type(exc).__name__}: {exc}"
            _warn(pm, ep.name, f"failed to load ({info.error})")
    for name, plugin in loaded:
        try:
            pm.register(plugin, name=name)
        except Exception as exc:  # noqa: BLE001 - e.g. a hookimpl no hookspec knows
            info = pm.infos[name]
            info.status, info.error = "failed", f"{type(exc).__name__}: {exc}"
            _warn(pm, name, f"failed to load ({info.error})")
    for name, plugin in extra:
        pm.infos[name] = PluginInfo(name, "", "", getattr(plugin, "__name__", repr(plugin)), False)
        pm.register(plugin, name=name)
    pm.check_pending()
    return pm


def call(pm: VmctlPluginManager, hook: str, **kwargs: Any) -> list[tuple[str, Any]]:
    """``pm.call(hook, **kwargs)`` (kept for callers that pass the manager around)."""
    return pm.call(hook, **kwargs)


def call_flat(pm: VmctlPluginManager, hook: str, **kwargs: Any) -> list[Any]:
    """``pm.call_flat(hook, **kwargs)``."""
    return pm.call_flat(hook, **kwargs)


def _tag_all(result: Any, name: str) -> Any:
    if isinstance(result, (list, tuple)) or (
            isinstance(result, Iterable) and not isinstance(result, (str, dict, bytes))):
        return [_tag(r, name) for r in result]
    return _tag(result, name)


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
