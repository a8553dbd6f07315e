"""``vmctl run``, ``ps``, ``status``, ``stop``, ``qmp``: running machines.

Top-level imports stay to typer and the standard library so ``vmctl --help`` does not
load asyncio or ``qemu.qmp``; each command imports what it needs.
"""

from __future__ import annotations

import enum
import json
from pathlib import Path
from typing import Any

import typer

from vmctl.cli.common import TextJson, echo, emit_json, plugin_manager


class Backend(str, enum.Enum):
    sim = "sim"
    qemu = "qemu"


def run(
    path: Path = typer.Argument(..., help="A machine file.", show_default=False),
    backend: Backend = typer.Option(Backend.sim, "--backend", help="sim (the embedded simulator) "
                                    "or qemu (the installed QEMU)."),
    name: str | None = typer.Option(None, "--name", help="Instance name (default: the machine's "
                                    "name)."),
    paused: bool = typer.Option(False, "--paused", help="Start with the vCPUs stopped (QEMU -S); "
                                "resume with: vmctl qmp NAME cont."),
    foreground: bool = typer.Option(False, "--foreground", help="Stay attached: show the console "
                                    "and stop the machine on Ctrl-C."),
    fmt: TextJson = typer.Option(TextJson.text, "--format", help="text for people, json for "
                                 "programs."),
) -> None:
    """Validate a machine, start it detached, and return once it answers on QMP."""
    from vmctl.cli.machines import Backend as VBackend
    from vmctl.cli.machines import load_valid
    from vmctl.runtime.launch import Launch

    machine, _ctx = load_valid(path, VBackend(backend.value))
    launch = Launch(machine, plugin_manager(), backend=backend.value, name=name, paused=paused,
                    notify=lambda msg: echo(msg, err=True))
    started = launch.start(foreground=foreground)
    if fmt is TextJson.json:
        emit_json(started.to_json())
    else:
        state = "paused" if paused else "running"
        echo(f"{started.name}: {state} on {started.backend} (pid {started.pid})")
        echo(f"qmp: {started.socket}")
    if foreground:
        raise typer.Exit(launch.follow(echo))


def _format_age(seconds: float | None) -> str:
    from vmctl.textfmt import format_duration

    return format_duration(seconds, missing="-")


def _table(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows)


def ps(
    fmt: TextJson = typer.Option(TextJson.text, "--format", help="text for people, json for "
                                 "programs."),
) -> None:
    """Instances: running, and crashed or exited ones until 'vmctl stop' cleans them."""
    from vmctl.runtime.control import ps as list_ps

    rows = list_ps()
    if fmt is TextJson.json:
        emit_json(rows)
        return
    if not rows:
        echo("no instances")
        return
    table = [["NAME", "STATE", "BACKEND", "PID", "UPTIME", "RUN-STATE", "QMP"]]
    for r in rows:
        detail = r["run_state"] or r["reason"] or "-"
        table.append([r["name"], r["state"], r["backend"] or "?", str(r["pid"] or "-"),
                      _format_age(r["uptime"]), detail, r["socket"] or "-"])
    echo(_table(table))


def _render_status(s: dict[str, Any]) -> str:
    detail = s.get("reason") or (s.get("run_state") if s.get("run_state") != s["state"] else "")
    lines = [f"{s['name']}: {s['state']}" + (f" ({detail})" if detail else "")]
    if s.get("run_reason"):
        lines.append(f"  {'why:':<12} {s['run_reason']}")
    fields = [("backend", s.get("backend")), ("run state", s.get("run_state")),
              ("pid", s.get("pid")), ("uptime", _format_age(s.get("uptime")) if s.get("uptime")
                                      is not None else None),
              ("qmp socket", s.get("socket")), ("folder", s.get("dir"))]
    version = s.get("qmp")
    if version:
        q = version.get("qemu", {})
        fields.append(("qmp server", f"{q.get('major')}.{q.get('minor')}.{q.get('micro')} "
                                     f"({version.get('package', '')})"))
    sim = s.get("sim")
    if sim:
        loads = ", ".join(f"{c['load']:.0%}" for c in sim.get("cpus", []))
        fields.append(("guest", f"{sim['phase']} at {sim['clock']:.1f} s, workload "
                                f"{sim['workload']}, seed {sim['seed']}, vCPU load {loads}"))
    lines += [f"  {k + ':':<12} {v}" for k, v in fields if v not in (None, "")]
    for plugin, state in sorted(s.get("plugins", {}).items()):
        lines.append(f"  [{plugin}]")
        items = state.items() if isinstance(state, dict) else [("value", state)]
        lines += [f"    {k}: {json.dumps(v) if not isinstance(v, str) else v}" for k, v in items]
    if s.get("log_tail"):
        lines.append("  last log lines:")
        lines += [f"    {ln}" for ln in s["log_tail"]]
    return "\n".join(lines)


def status(
    name: str = typer.Argument(..., help="Instance name (vmctl ps lists them).",
                               show_default=False),
    fmt: TextJson = typer.Option(TextJson.text, "--format", help="text for people, json for "
                                 "programs."),
) -> None:
    """One instance: run state, backend, pid, uptime, QMP socket, and each plugin's live state."""
    from vmctl.runtime.control import status as get_status

    s = get_status(name, plugin_manager())
    if fmt is TextJson.json:
        emit_json(s)
    else:
        echo(_render_status(s))


def stop(
    name: str = typer.Argument(..., help="Instance name (vmctl ps lists them).",
                               show_default=False),
    force: bool = typer.Option(False, "--force", help="SIGKILL at once instead of QMP quit, "
                               "then SIGTERM, then SIGKILL."),
) -> None:
    """Stop an instance (QMP quit, SIGTERM, SIGKILL, each with a timeout) and clean its state."""
    from vmctl.runtime.control import stop as do_stop

    report = do_stop(name, force=force)
    if report["was"] in ("running", "starting", "stopping"):
        how = ", ".join(report["steps"]) or "already ending"
        echo(f"{name}: stopped ({how}; {report['exit']})")
    else:
        echo(f"{name}: cleaned up {report['was']} instance ({report['reason'] or report['exit']})")


def qmp(
    name: str = typer.Argument(..., help="Instance name.", show_default=False),
    command: str = typer.Argument(..., help="QMP command, e.g. query-status.", show_default=False),
    arguments: str | None = typer.Argument(None, help="Arguments as a JSON object, e.g. "
                                           "'{\"command-line\": \"info pic\"}'."),
    fmt: TextJson = typer.Option(TextJson.text, "--format", help="text prints a text reply "
                                 "(human-monitor-command) as is; json always prints JSON."),
) -> None:
    """Send one QMP command and print the reply (JSON; HMP text as text)."""
    from vmctl.errors import UsageError
    from vmctl.runtime.control import qmp as send

    args = None
    if arguments is not None:
        try:
            args = json.loads(arguments)
        except ValueError as exc:
            raise UsageError(f"JSON-ARGS is not valid JSON: {exc}",
                             hint="quote it for the shell: '{\"command-line\": \"info status\"}'"
                             ) from exc
        if not isinstance(args, dict):
            raise UsageError(f"JSON-ARGS must be a JSON object, not {type(args).__name__}",
                             hint="e.g. '{\"plugin\": \"spapr-irq\"}'")
    result = send(name, command, args)
    if isinstance(result, str) and fmt is TextJson.text:
        echo(result.replace("\r\n", "\n").rstrip("\n"))
    else:
        emit_json(result)


def register(app: typer.Typer) -> None:
    app.command()(run)
    app.command()(ps)
    app.command()(status)
    app.command()(stop)
    app.command()(qmp)
