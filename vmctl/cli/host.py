"""``vmctl host check | apply | undo``: host readiness and journaled sysfs changes."""

from __future__ import annotations

from pathlib import Path

import typer

from vmctl.cli.common import SYSFS_ROOT, TextJson, echo, emit_json, plugin_manager

host_app = typer.Typer(help="Check and prepare the host: readiness, journaled sysfs changes, undo.",
                       no_args_is_help=True, rich_markup_mode=None)


def _sysfs(root: str):
    from vmctl.host.sysfs import Sysfs
    from vmctl.plugins import call_flat

    return Sysfs(root, call_flat(plugin_manager(), "vmctl_fake_kernel"))


@host_app.command("check")
def check(sysfs_root: str = SYSFS_ROOT,
          fmt: TextJson = typer.Option(TextJson.text, "--format", help="text or json.")) -> None:
    """Host readiness: what each plugin needs from this host and whether it is there."""
    from vmctl.plugins import call_flat

    sysfs = _sysfs(sysfs_root)
    facts = call_flat(plugin_manager(), "vmctl_host_check", sysfs=sysfs)
    if fmt is TextJson.json:
        emit_json([{"plugin": f.plugin, "name": f.name, "ok": f.ok, "detail": f.detail, "hint": f.hint}
                   for f in facts])
        return
    echo(f"host under {sysfs.root}" + (" (fake tree)" if sysfs.fake else ""))
    for f in facts:
        echo(f"  {'ok  ' if f.ok else 'no  '} {f.plugin}: {f.name} — {f.detail}")
        if f.hint and not f.ok:
            echo(f"        hint: {f.hint}")
    if not facts:
        echo("  no plugin has host checks")


@host_app.command("apply")
def apply(path: Path = typer.Argument(..., help="A machine file.", show_default=False),
          do_it: bool = typer.Option(False, "--apply", help="Perform the writes (default: show them only)."),
          sysfs_root: str = SYSFS_ROOT) -> None:
    """The host changes a machine needs; journaled and undoable with --apply, a dry run without."""
    from vmctl.cli.machines import load_valid
    from vmctl.host.journal import apply_steps
    from vmctl.plugins import call_flat

    m, _ = load_valid(path)
    sysfs = _sysfs(sysfs_root)
    steps = call_flat(plugin_manager(), "vmctl_host_steps", machine=m, sysfs=sysfs)
    if not steps:
        echo(f"{m.name}: the host under {sysfs.root} needs no change")
        return
    for i, s in enumerate(steps, 1):
        echo(f"{i}. {s.description}  [{s.plugin}]\n   echo {s.write.value} > {s.write.path}")
    if not do_it:
        echo(f"dry run: nothing written. Run again with --apply to perform {len(steps)} "
             f"step{'s' if len(steps) != 1 else ''}; `vmctl host undo` reverses them.")
        return
    result = apply_steps(steps, sysfs, m.name)
    echo(f"applied {result.applied} step{'s' if result.applied != 1 else ''} (journal transaction "
         f"{result.transaction}); `vmctl host undo --sysfs-root {sysfs_root}` reverses them")


@host_app.command("undo")
def undo(sysfs_root: str = SYSFS_ROOT) -> None:
    """Reverse the most recent `vmctl host apply --apply` on this root."""
    from vmctl.errors import VmctlError
    from vmctl.host.journal import undo_last

    tx = undo_last(_sysfs(sysfs_root))
    if tx is None:
        raise VmctlError(f"nothing to undo under {sysfs_root}",
                         "the journal has no applied transaction for this sysfs root")
    echo(f"undid transaction {tx['id']} ({tx['machine']}): {len(tx['steps'])} step"
         f"{'s' if len(tx['steps']) != 1 else ''} reversed")


def register(app: typer.Typer) -> None:
    app.add_typer(host_app, name="host")
