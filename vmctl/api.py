"""The plugin API: the one module a vmctl plugin imports (besides ``hookimpl`` from ``vmctl``).

Everything a plugin needs, and nothing else, is named here; vmctl keeps these names and
their behaviour stable and is free to move what stands behind them.  A test
(``tests/test_plugin_api.py``) reads every plugin under ``plugins/`` and fails on any import
of ``vmctl.<something>`` other than ``vmctl.api`` (and ``vmctl.testing`` in tests).

Names are loaded on first use (PEP 562): ``from vmctl.api import Option`` imports the
records only, while ``from vmctl.api import Panel`` imports Textual, which a plugin's
``plugin.py`` therefore names only inside the hook that builds a panel.  The reference,
with each name's signature, is ``docs/reference/api.md`` (generated).

The names, by group:

- records (what hooks contribute): ``Section``, ``Option``, ``DeviceKind``, ``Diagnostic``,
  ``Severity``, ``ValidationContext``, ``ArgFragment``, ``MachineProp``, ``CpuProp``,
  ``KernelArg``, ``QemuFragment``, ``ExportFormat``, ``HostWrite``, ``HostStep``,
  ``HostFact``, ``LiveProbe``, ``LiveState``, ``SimDevice``, ``PanelSpec``, ``CliCommand``, ``Completion``,
  ``FakeHost``, ``ARCHES``;
- the machine: ``Machine`` (read it; never write to it);
- errors: ``VmctlError``, ``UsageError``, ``ModelError``, ``QMPError``;
- the host: ``Sysfs``, ``FakeKernelHandler``, ``mark_fake``, ``tree_snapshot``;
- values: ``parse_size``, ``format_rate``, ``format_duration``;
- the simulator: ``sim_settings``, ``build_simulation``, ``STANDARD_DEVICE_EVENTS``;
- panels (Textual): ``Panel``, ``KeyValue``, ``RateChart``, ``TextLines``;
- plugin commands (typer): ``SYSFS_ROOT``, ``TextJson``, ``echo``, ``emit_json``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

#: name → module that defines it.  The one table behind ``__all__``, ``__getattr__`` and
#: the generated reference.
_WHERE: dict[str, str] = {
    **dict.fromkeys(("Section", "Option", "DeviceKind", "Diagnostic", "Severity", "Completion", "FakeHost",
                     "ValidationContext", "ArgFragment", "MachineProp", "CpuProp", "KernelArg",
                     "QemuFragment", "ExportFormat", "HostWrite", "HostStep", "HostFact",
                     "LiveProbe", "LiveState", "SimDevice", "PanelSpec", "CliCommand", "ARCHES"), "vmctl.types"),
    "Machine": "vmctl.config.machine",
    "VmctlError": "vmctl.errors",
    "UsageError": "vmctl.errors",
    "ModelError": "vmctl.model",
    "QMPError": "vmctl.sim.qmp",
    **dict.fromkeys(("Sysfs", "FakeKernelHandler", "mark_fake", "tree_snapshot"), "vmctl.host.sysfs"),
    "parse_size": "vmctl.config.hostschema",
    "format_rate": "vmctl.tui.snapshot",
    "format_duration": "vmctl.textfmt",
    **dict.fromkeys(("sim_settings", "build_simulation"), "vmctl.sim.build"),
    "STANDARD_DEVICE_EVENTS": "vmctl.sim.vm",
    **dict.fromkeys(("Panel", "KeyValue", "RateChart", "TextLines"), "vmctl.tui.panel"),
    **dict.fromkeys(("SYSFS_ROOT", "TextJson", "echo", "emit_json"), "vmctl.cli.common"),
}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"vmctl.api has no name {name!r}; the plugin API is: "
                             f"{', '.join(__all__)}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return list(__all__)


if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from vmctl.cli.common import SYSFS_ROOT, TextJson, echo, emit_json
    from vmctl.config.hostschema import parse_size
    from vmctl.config.machine import Machine
    from vmctl.errors import UsageError, VmctlError
    from vmctl.host.sysfs import FakeKernelHandler, Sysfs, mark_fake, tree_snapshot
    from vmctl.model import ModelError
    from vmctl.sim.build import build_simulation, sim_settings
    from vmctl.sim.qmp import QMPError
    from vmctl.sim.vm import STANDARD_DEVICE_EVENTS
    from vmctl.textfmt import format_duration
    from vmctl.tui.panel import KeyValue, Panel, RateChart, TextLines
    from vmctl.tui.snapshot import format_rate
    from vmctl.types import (ARCHES, ArgFragment, CliCommand, Completion, CpuProp, FakeHost, DeviceKind, Diagnostic,
                             ExportFormat, HostFact, HostStep, HostWrite, KernelArg, LiveProbe, LiveState,
                             MachineProp, Option, PanelSpec, QemuFragment, Section, Severity,
                             SimDevice, ValidationContext)
