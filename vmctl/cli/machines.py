"""``vmctl validate``, ``show``, ``plan``, ``export``: machine files in, findings and artefacts out."""

from __future__ import annotations

import enum
from pathlib import Path

import typer

from vmctl.cli.common import SYSFS_ROOT, TextJson, echo, emit_json, plugin_manager


class Backend(str, enum.Enum):
    sim = "sim"
    qemu = "qemu"


class ShowFormat(str, enum.Enum):
    toml = "toml"
    json = "json"


def load_valid(path: Path, backend: Backend = Backend.sim, host: bool = False, sysfs_root: str = "/"):
    """Load one machine and refuse it, with its diagnostics, when it is invalid; warnings
    and notes go to stderr.  (The work is :func:`vmctl.validation.load_valid`'s.)"""
    from vmctl.diagnostics import render
    from vmctl.validation import context
    from vmctl.validation import load_valid as load

    pm = plugin_manager()
    ctx = context(pm, backend=backend.value, host=host, sysfs_root=sysfs_root)
    m, notes = load(path, pm, ctx)
    if notes:
        echo(render(notes), err=True)
    return m, ctx


def validate(
    paths: list[Path] = typer.Argument(..., help="Machine files or folders of them.", show_default=False),
    host: bool = typer.Option(False, "--host", help="Also check the host (sysfs) the machines would run on."),
    backend: Backend = typer.Option(Backend.sim, "--backend", help="sim, or qemu to check against the "
                                    "installed QEMU's machine types, CPUs, devices and properties."),
    sysfs_root: str = SYSFS_ROOT,
    fmt: TextJson = typer.Option(TextJson.text, "--format", help="text for people, json for programs."),
) -> None:
    """Check machines alone and together (fleet rules such as APQN exclusivity).

    Exit 0 when every machine is valid, 1 when any is not, 2 on a usage error.
    """
    from vmctl.diagnostics import counts, render
    from vmctl.errors import ExitCode
    from vmctl.validation import context, validate_paths

    pm = plugin_manager()
    report = validate_paths(paths, pm, context(pm, backend=backend.value, host=host,
                                                sysfs_root=sysfs_root))
    c = counts(report.diagnostics)
    if fmt is TextJson.json:
        emit_json({"ok": report.ok, "files": report.files, "invalid": sorted(report.invalid),
                   "counts": c, "diagnostics": [d.to_json() for d in report.diagnostics]})
    else:
        if report.diagnostics:
            echo(render(report.diagnostics))
        n = report.files
        summary = f"{n} machine{'s' if n != 1 else ''} checked"
        if report.ok:
            summary += ": all valid"
        else:
            summary += f": {len(report.invalid)} invalid"
        extra = [f"{c[k]} {k}{'s' if c[k] != 1 else ''}" for k in ("error", "warning", "note") if c[k]]
        echo(summary + (f" ({', '.join(extra)})" if extra else ""))
    raise typer.Exit(ExitCode.OK if report.ok else ExitCode.FAILURE)


def show(
    path: Path = typer.Argument(..., help="A machine file.", show_default=False),
    fmt: ShowFormat = typer.Option(ShowFormat.toml, "--format", help="toml (with source comments) or json."),
) -> None:
    """The resolved machine: includes merged, defaults filled in, each value's source."""
    from vmctl.config import load_machine
    from vmctl.config.show import resolved, render_toml

    pm = plugin_manager()
    m = load_machine(path, pm)
    from vmctl.config.validate import check_machine
    from vmctl.config.loader import MachineError
    from vmctl.diagnostics import has_errors

    diags = check_machine(m, pm, schema_only=True)
    if has_errors(diags):
        raise MachineError(diags)
    if fmt is ShowFormat.json:
        emit_json(resolved(m))
    else:
        echo(render_toml(m), )


def plan(
    path: Path = typer.Argument(..., help="A machine file.", show_default=False),
    fmt: TextJson = typer.Option(TextJson.text, "--format", help="text for people, json for programs."),
    sysfs_root: str = SYSFS_ROOT,
    backend: Backend = typer.Option(Backend.sim, "--backend", help="qemu: the exact command "
                                    "run --backend qemu executes, paths and all."),
    name: str | None = typer.Option(None, "--name", help="Instance name run would use "
                                    "(default: the machine's name)."),
    paused: bool = typer.Option(False, "--paused", help="As run --paused (QEMU's -S)."),
) -> None:
    """What would happen: predictions, host steps and the launch command line, with provenance."""
    from vmctl.plan import make_plan, render_plan

    if backend is not Backend.qemu and (name is not None or paused):
        from vmctl.errors import UsageError

        raise UsageError("--name and --paused describe a QEMU run; the simulator's plan has no "
                         "command line of its own", "add --backend qemu")
    m, ctx = load_valid(path, backend)
    p = make_plan(m, plugin_manager(), ctx, sysfs_root, backend=backend.value, name=name,
                  paused=paused)
    if fmt is TextJson.json:
        emit_json(p)
    else:
        echo(render_plan(p))


def export(
    path: Path = typer.Argument(..., help="A machine file.", show_default=False),
    fmt: str = typer.Option(..., "--format", "-f", help="argv, sh, libvirt-xml, or a plugin's format "
                            "(mdevctl-json); vmctl plugins lists them.", show_default=False),
    output: Path | None = typer.Option(None, "--output", "-o", help="Write to this file (atomically) instead "
                                       "of standard output."),
) -> None:
    """The machine as a QEMU argv, a shell script, libvirt XML, or a plugin's format."""
    from vmctl.export import renderer

    render = renderer(fmt, plugin_manager())
    m, _ = load_valid(path)
    text = render(m)
    if output is None:
        typer.echo(text, nl=False)
        return
    from vmctl.fsutil import atomic_write

    atomic_write(output, text, mode=0o755 if fmt == "sh" else 0o644)


def register(app: typer.Typer) -> None:
    app.command()(validate)
    app.command()(show)
    app.command()(plan)
    app.command()(export)
