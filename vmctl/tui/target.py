"""An instance folder turned into what the TUI polls and shows: a :class:`Target`.

For each instance vmctl reads the resolved machine (``machine.json``) and asks the
plugins once:

* ``vmctl_live_probe(machine, backend)`` — the QMP commands that read each plugin's live
  state and the pure ``parse`` that turns their answers into a dict;
* ``vmctl_tui_panels(machine)`` — the panels ``monitor`` shows and the headlines ``top``
  shows.

A plugin with a panel but no probe still gets state on the simulator: its device answers
``__org.vmctl_query-device {"plugin": NAME}`` (see :func:`default_probe`).  On QEMU such a
panel shows "no live probe".  Nothing here imports Textual or opens a socket.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vmctl.runtime.instance import Instance, read_json
from vmctl.types import LiveProbe, LiveState, PanelSpec

#: Hooks' answers: the plugin manager is passed in, never built here.
PluginManager = Any


@dataclass
class Target:
    """One instance as the TUI sees it before connecting."""

    instance: Instance
    backend: str
    socket: Path
    machine: Any = None
    cpus: int | None = None
    panels: list[PanelSpec] = field(default_factory=list)
    probes: dict[str, LiveProbe] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.instance.name

    def headlines(self, states: Mapping[str, LiveState]) -> dict[str, str]:
        """``{plugin: headline}`` for ``vmctl top`` from ``{plugin: LiveState}``.

        A headline function that raises gives ``"?"``; a plugin whose read failed,
        ``"error"``; one without state, ``"—"``: never the table down.
        """
        out: dict[str, str] = {}
        for spec in self.panels:
            if spec.headline is None:
                continue
            live = states.get(spec.plugin)
            if live is None or live.failed:
                out[spec.plugin] = "—" if live is None else "error"
                continue
            out[spec.plugin] = safe_headline(spec.headline, live)
        return out


def safe_headline(fn: Callable[[LiveState], str], state: LiveState) -> str:
    """``fn(state)`` as text; ``"?"`` when the plugin's function fails."""
    try:
        return str(fn(state))
    except Exception:  # noqa: BLE001 - a plugin bug shows as "?" in one cell
        return "?"


def default_probe(plugin: str) -> LiveProbe:
    """The simulator's generic probe: the plugin's ``SimDevice.state()``."""
    return LiveProbe(commands=(("__org.vmctl_query-device", {"plugin": plugin}),),
                     parse=lambda results: dict(results[0]) if isinstance(results[0], dict)
                     else {"value": results[0]}, plugin=plugin)


def load_target(instance: Instance, pm: PluginManager | None) -> Target:
    """Read ``instance``'s files and ask the plugins for probes and panels.

    Never raises for a damaged folder: what could not be read is left out and noted.
    """
    meta = instance.meta() or {}
    target = Target(instance, backend=str(meta.get("backend") or "sim"),
                    socket=instance.socket())
    data = read_json(instance.machine_path)
    if data is None:
        target.notes.append(f"{instance.machine_path} is missing or unreadable: no plugin panels")
        return target
    try:
        from vmctl.config.machine import Machine

        machine = Machine.from_json(data)
        target.machine = machine
        target.cpus = int(machine.get("machine.cpus") or 0) or None
    except (KeyError, TypeError, ValueError) as exc:
        target.notes.append(f"cannot read {instance.machine_path}: {exc}")
        return target
    if pm is not None:
        attach_plugins(target, pm)
    return target


def attach_plugins(target: Target, pm: PluginManager) -> Target:
    """Ask the plugins for ``target.machine``'s panels and live probes (see the module doc)."""
    from vmctl.plugins import call, call_flat

    for spec in call_flat(pm, "vmctl_tui_panels", machine=target.machine):
        if isinstance(spec, PanelSpec):
            target.panels.append(spec)
    for plugin, probe in call(pm, "vmctl_live_probe", machine=target.machine,
                              backend=target.backend):
        if isinstance(probe, LiveProbe):
            target.probes[plugin] = probe
    if target.backend == "sim":
        for spec in target.panels:
            target.probes.setdefault(spec.plugin, default_probe(spec.plugin))
    return target

