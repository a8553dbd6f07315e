"""``vmctl host check | apply | undo``: host readiness and journaled sysfs changes."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from vmctl.cli.common import SYSFS_ROOT, TextJson, echo, emit_json, plugin_manager

if TYPE_CHECKING:  # pragma: no cover
    from vmctl.types import HostStep

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


def _waiting(sysfs_root: str) -> Callable[[int | None], None]:
    """What to say while another vmctl holds the journal lock of this root."""

    def say(pid: int | None) -> None:
        who = f" (pid {pid})" if pid else ""
        echo(f"waiting for another vmctl host apply/undo on {sysfs_root}{who} to finish…", err=True)
    return say


def _show(steps: list[HostStep]) -> None:
    for i, s in enumerate(steps, 1):
        echo(f"{i}. {s.description}  [{s.plugin}]\n   echo {s.write.value} > {s.write.path}")


@host_app.command("apply")
def apply(path: Path = typer.Argument(..., help="A machine file.", show_default=False),
          do_it: bool = typer.Option(False, "--apply", help="Perform the writes (default: show them only)."),
          sysfs_root: str = SYSFS_ROOT) -> None:
    """The host changes a machine needs; journaled and undoable with --apply, a dry run without."""
    from vmctl.cli.machines import load_valid
    from vmctl.host.journal import locked
    from vmctl.plugins import call_flat

    m, _ = load_valid(path)
    sysfs = _sysfs(sysfs_root)
    if not do_it:
        steps = call_flat(plugin_manager(), "vmctl_host_steps", machine=m, sysfs=sysfs)
        if not steps:
            echo(f"{m.name}: the host under {sysfs.root} needs no change")
            return
        _show(steps)
        echo(f"dry run: nothing written. Run again with --apply to perform {len(steps)} "
             f"step{'s' if len(steps) != 1 else ''}; `vmctl host undo` reverses them.")
        return
    # Plan under the lock: a concurrent apply finishes first, and we plan against its result.
    with locked(sysfs, on_wait=_waiting(sysfs_root)) as journal:
        for tx in journal.unfinished():
            echo(f"note: transaction {tx['id']} ({tx['machine']}) is {tx['state']}; "
                 "`vmctl host undo` reverses what it left once this one is undone", err=True)
        steps = call_flat(plugin_manager(), "vmctl_host_steps", machine=m, sysfs=sysfs)
        if not steps:
            echo(f"{m.name}: the host under {sysfs.root} needs no change")
            return
        _show(steps)
        result = journal.apply(steps, m.name)
    echo(f"applied {result.applied} step{'s' if result.applied != 1 else ''} (journal transaction "
         f"{result.transaction}); `vmctl host undo --sysfs-root {sysfs_root}` reverses them")


_WAS = {"applying": "interrupted while applying", "rolling-back": "interrupted while rolling back",
        "rollback-failed": "its rollback had failed", "undoing": "an earlier undo was interrupted",
        "undo-failed": "an earlier undo had failed"}


@host_app.command("undo")
def undo(sysfs_root: str = SYSFS_ROOT,
         force: bool = typer.Option(False, "--force", help="Undo even where someone else changed a "
                                    "file since apply (their change is overwritten).")) -> None:
    """Reverse the most recent `vmctl host apply --apply` on this root.

    Also after a crash, a failed rollback or a failed undo: run it again until it finishes.
    """
    from vmctl.errors import VmctlError
    from vmctl.host.journal import locked

    with locked(_sysfs(sysfs_root), on_wait=_waiting(sysfs_root)) as journal:
        done = journal.undo(force=force)
    if done is None:
        raise VmctlError(f"nothing to undo under {sysfs_root}",
                         "every transaction journaled for this sysfs root is undone or rolled back")
    for d in done.forced:
        echo(f"warning: {d}; reversed anyway (--force)", err=True)
    tx, n = done.transaction, len(done.reversed)
    why = f", {_WAS[done.was]}" if done.was in _WAS else ""
    earlier = f" ({done.earlier} more had been settled before)" if done.earlier else ""
    echo(f"undid transaction {tx['id']} ({tx['machine']}{why}): {n} step{'s' if n != 1 else ''} "
         f"reversed{earlier}")
    for step, note in sorted(done.uncertain + done.not_performed, reverse=True):
        echo(f"  step {step} {note}")


def register(app: typer.Typer) -> None:
    app.add_typer(host_app, name="host")
