"""Validating machines: schema, plugin semantics, then fleet rules across machines."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

import pluggy

from vmctl.config.loader import display_path
from vmctl.config.machine import Machine
from vmctl.config.schema import Schema
from vmctl.diagnostics import has_errors
from vmctl.errors import UsageError
from vmctl.plugins import call, call_flat
from vmctl.types import Diagnostic, Severity, ValidationContext


def machine_files(paths: Iterable[str | Path]) -> list[Path]:
    """Expand files and folders (a folder: its ``*.toml`` files, not its subfolders)."""
    files: list[Path] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            found = sorted(x for x in p.glob("*.toml") if x.is_file())
            if not found:
                raise UsageError(f"no machine files (*.toml) in folder {display_path(p)}",
                                 "give a machine file or a folder that holds some (sub-folders such as "
                                 "base/ are not scanned)")
            files += found
        elif p.exists() or p.is_symlink():
            files.append(p)
        else:
            raise UsageError(f"no such file or folder: {raw}", "vmctl validate takes machine files and folders")
    return files


def _tag(diags: list[Diagnostic], plugin: str) -> list[Diagnostic]:
    return [d if d.plugin else replace(d, plugin=plugin) for d in diags]


def check_schema(machine: Machine, pm: pluggy.PluginManager) -> list[Diagnostic]:
    """The host's checks from the schema: types, choices, ranges, unknown keys, arches."""
    schema = machine.schema or Schema.from_plugins(pm)
    machine.schema = schema
    return schema.check(machine)


def check_plugins(machine: Machine, pm: pluggy.PluginManager,
                  ctx: ValidationContext) -> list[Diagnostic]:
    """Every plugin's semantic checks (``vmctl_validate_machine``), tagged by plugin."""
    diags: list[Diagnostic] = []
    for name, found in call(pm, "vmctl_validate_machine", machine=machine, ctx=ctx):
        diags += _tag(list(found), name)
    return diags


def check_machine(machine: Machine, pm: pluggy.PluginManager, ctx: ValidationContext | None = None,
                  schema_only: bool = False) -> list[Diagnostic]:
    """Schema checks, then (when the schema is clean) every plugin's semantic checks.

    The checks against the installed QEMU (``--backend qemu``) are the validation
    service's (:func:`vmctl.validation.check`), which also probes QEMU when asked.
    """
    diags = check_schema(machine, pm)
    if has_errors(diags) or schema_only:
        return diags
    return diags + check_plugins(machine, pm, ctx or ValidationContext())


@dataclass
class Report:
    """The outcome of validating a set of files."""

    machines: list[Machine] = field(default_factory=list)
    diagnostics: list[Diagnostic] = field(default_factory=list)
    files: int = 0
    invalid: set[str] = field(default_factory=set)

    @property
    def ok(self) -> bool:
        return not has_errors(self.diagnostics)


def machines_of(diags: list[Diagnostic], machines: list[Machine]) -> set[str]:
    """The machine files fleet errors are about (a key may be written in an included file)."""
    if not diags:
        return set()
    wanted = {(d.file, d.line, d.key) for d in diags}
    out = set()
    for m in machines:
        for file, line, key in wanted:
            src = m.source(key) if key else None
            if file == display_path(m.path) or (src is not None and (src.file, src.line) == (file, line)):
                out.add(display_path(m.path))
    return out


def fleet(machines: list[Machine], pm: pluggy.PluginManager, ctx: ValidationContext) -> list[Diagnostic]:
    """Rules across machines: unique names (host), then each plugin's fleet hook."""
    out: list[Diagnostic] = []
    first: dict[str, Machine] = {}
    for m in machines:
        other = first.setdefault(m.name, m)
        if other is not m:
            src = other.source("machine.name")
            d = m.error("duplicate-name", "machine.name", f'machine name "{m.name}" is also used by '
                        f"{src.file}:{src.line}", "names identify instances; give each machine its own")
            out.append(replace(d, plugin="vmctl"))
    out += call_flat(pm, "vmctl_validate_fleet", machines=machines, ctx=ctx)
    return out
