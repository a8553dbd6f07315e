"""Validation as a service: what ``validate``, ``plan``, ``export``, ``run`` and ``host apply``
share, with no command line in it.

For each machine file the steps are: load it once (includes merged, every value's line
kept) → the schema → every plugin's checks → with ``--backend qemu``, the command line
against the installed QEMU for the machine's arch (probed once per arch, on first need,
before the plugins run so they can read ``ctx.qemu_caps``) → and, for a set of files, the
fleet rules across them.

This is the one module that imports both :mod:`vmctl.config` (machines, schema, plugin
checks) and :mod:`vmctl.qemu` (argv, capabilities), so neither package imports the other.
The CLI parses options, calls these functions and prints.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pluggy

from vmctl.config.loader import Loader, MachineError, display_path
from vmctl.config.machine import Machine
from vmctl.config.schema import Schema
from vmctl.config.validate import Report, check_plugins, check_schema, fleet, machine_files, machines_of
from vmctl.diagnostics import has_errors
from vmctl.types import Diagnostic, Severity, ValidationContext

__all__ = ["Report", "check", "context", "load_valid", "validate_paths"]


def context(pm: pluggy.PluginManager, *, backend: str = "sim", host: bool = False,
            sysfs_root: str = "/") -> ValidationContext:
    """The :class:`~vmctl.types.ValidationContext` for a run: ``host`` reads the host under
    ``sysfs_root`` (with the plugins' fake-kernel handlers, for fake trees); ``backend``
    ``"qemu"`` asks for the installed QEMU, probed when a machine's arch is known."""
    ctx = ValidationContext(backend=backend)
    if host:
        from vmctl.host.sysfs import Sysfs
        from vmctl.plugins import call_flat

        ctx.sysfs = Sysfs(sysfs_root, call_flat(pm, "vmctl_fake_kernel"))
    ctx.qemu_wanted = backend == "qemu"
    return ctx


def _probe_qemu(ctx: ValidationContext, arch: Any) -> None:
    """Probe the QEMU for ``arch`` once, when ``--backend qemu`` asked for it."""
    if not ctx.qemu_wanted or not isinstance(arch, str) or not arch:
        return
    if ctx.qemu is None:
        ctx.qemu = {}
    if arch not in ctx.qemu:
        from vmctl.qemu.caps import probe_for_arch

        ctx.qemu[arch] = probe_for_arch(arch)


def check(machine: Machine, pm: pluggy.PluginManager,
          ctx: ValidationContext | None = None) -> list[Diagnostic]:
    """Every check of one machine: schema, plugins, and the installed QEMU when wanted."""
    ctx = ctx or ValidationContext()
    diags = check_schema(machine, pm)
    if has_errors(diags):
        return diags
    _probe_qemu(ctx, machine.arch)
    diags += check_plugins(machine, pm, ctx)
    caps = ctx.qemu_caps(machine.arch)
    if caps is not None:
        from vmctl.qemu.argv import build_argv
        from vmctl.qemu.check import check_argv

        # a plugin that already explained a key (iommufd on QEMU 7.2) beats the generic finding
        explained = {d.key for d in diags if d.severity is Severity.ERROR and d.plugin != "vmctl"}
        diags += [d for d in check_argv(machine, build_argv(machine, pm), caps)
                  if d.key not in explained]
    return diags


def load_valid(path: str | Path, pm: pluggy.PluginManager,
               ctx: ValidationContext | None = None) -> tuple[Machine, list[Diagnostic]]:
    """Load one machine and check it: ``(machine, warnings and notes)``.

    Raises :class:`~vmctl.config.loader.MachineError` with every diagnostic, errors first,
    when the machine cannot be loaded or is invalid.
    """
    from vmctl.config import load_machine

    machine = load_machine(path, pm)
    diags = check(machine, pm, ctx)
    if has_errors(diags):
        raise MachineError([d for d in diags if d.severity is Severity.ERROR]
                           + [d for d in diags if d.severity is not Severity.ERROR])
    return machine, diags


def validate_paths(paths: Iterable[str | Path], pm: pluggy.PluginManager,
                   ctx: ValidationContext | None = None) -> Report:
    """Validate every machine under ``paths`` alone, then together (fleet rules).

    Each file is read once; a file that cannot be loaded is reported and skipped.
    """
    ctx = ctx or ValidationContext()
    files = machine_files(paths)
    schema = Schema.from_plugins(pm)
    loader = Loader()
    report = Report(files=len(files))
    for f in files:
        try:
            data, prov = loader.load(f)
        except MachineError as exc:
            report.diagnostics += exc.diagnostics
            report.invalid.add(display_path(f))
            continue
        m = Machine(data, prov, f, schema)
        diags = check(m, pm, ctx)
        report.diagnostics += diags
        if has_errors(diags):
            report.invalid.add(display_path(f))
        if not any(d.severity is Severity.ERROR and d.plugin == "vmctl" for d in diags):
            report.machines.append(m)
    found = fleet(report.machines, pm, ctx)
    report.diagnostics += found
    report.invalid |= machines_of([d for d in found if d.severity is Severity.ERROR],
                                  report.machines)
    return report
