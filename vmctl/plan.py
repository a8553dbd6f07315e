"""``vmctl plan``: everything vmctl would do for a machine, without doing it."""

from __future__ import annotations

import shlex
from typing import Any

import pluggy

from vmctl.config.machine import Machine
from vmctl.config.show import resolved
from vmctl.errors import VmctlError
from vmctl.plugins import call, call_flat
from vmctl.qemu.argv import build_argv
from vmctl.types import ValidationContext


def make_plan(m: Machine, pm: pluggy.PluginManager, ctx: ValidationContext, sysfs_root: str = "/",
              *, backend: str = "sim", name: str | None = None,
              paused: bool = False) -> dict[str, Any]:
    """The plan as JSON-able data (keys ``machine``, ``predictions``, ``host_steps``, ``argv``).

    With ``backend="qemu"``, ``argv`` is exactly what ``vmctl run --backend qemu`` (with
    ``--name``/``--paused`` as given) executes: the binary's path, the machine's arguments
    and the runtime's (QMP, console, log, panic action), in order, with the real
    per-instance paths; ``argv_sources`` says ``vmctl: runtime`` for the latter.  Else it is
    the machine's command line, as ``export --format argv`` prints it.
    """
    from vmctl.host.sysfs import Sysfs

    sysfs = Sysfs(sysfs_root, call_flat(pm, "vmctl_fake_kernel"))
    if ctx.sysfs is None:
        ctx.sysfs = sysfs  # predictions may look at the host the plan is for
    predictions = {name: pred for name, pred in call(pm, "vmctl_predict", machine=m, ctx=ctx)}
    host_problem = None
    try:
        steps = call_flat(pm, "vmctl_host_steps", machine=m, sysfs=sysfs)
    except VmctlError as exc:
        steps, host_problem = [], {"message": exc.message, "hint": exc.hint}
    if backend == "qemu":
        from vmctl.runtime.command import planned_argv

        argv = planned_argv(m, pm, name=name, paused=paused)
    else:
        argv = build_argv(m, pm)
    return {
        "backend": backend,
        "machine": resolved(m),
        "predictions": predictions,
        "host_steps": [{"description": s.description, "plugin": s.plugin, "key": s.key,
                        "write": {"path": s.write.path, "value": s.write.value},
                        "undo": [{"path": u.path, "value": u.value} for u in s.undo]} for s in steps],
        "host_problem": host_problem,
        "sysfs_root": str(sysfs.root),
        "argv": argv.args,
        "argv_sources": argv.to_json(),
    }


def _fmt(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(_fmt(v) for v in value)
    return str(value)


def render_plan(p: dict[str, Any]) -> str:
    mach = p["machine"]["machine"]["machine"]
    lines = [f"machine {mach['name']}  ({p['machine']['file']})",
             f"  {mach['arch']} {mach['type']}, cpu {mach['cpu']}, {mach['cpus']} vCPU"
             f"{'s' if mach['cpus'] != 1 else ''}"
             + (f" (max {mach['max-cpus']})" if mach.get("max-cpus") else "")
             + f", memory {mach['memory']}, accel {mach['accel']}", ""]
    lines.append("predictions")
    if not p["predictions"]:
        lines.append("  none")
    for plugin, pred in p["predictions"].items():
        lines.append(f"  {plugin}:")
        for key, value in pred.items():
            if key == "reasons":
                continue
            lines.append(f"    {key}: {_fmt(value)}")
        for reason in pred.get("reasons", []):
            lines.append(f"    - {reason}")
    lines += ["", f"host steps (under {p['sysfs_root']}; dry run — `vmctl host apply PATH --apply` performs them)"]
    if p["host_problem"]:
        lines.append(f"  cannot prepare this host: {p['host_problem']['message']}")
        if p["host_problem"]["hint"]:
            lines.append(f"  hint: {p['host_problem']['hint']}")
    elif not p["host_steps"]:
        lines.append("  none needed")
    for i, s in enumerate(p["host_steps"], 1):
        lines.append(f"  {i}. {s['description']}  [{s['plugin']}]")
        lines.append(f"     echo {shlex.quote(s['write']['value'])} > {s['write']['path']}")
    lines += ["", "launch (exactly what run --backend qemu executes)" if p.get("backend") == "qemu"
              else "launch"]
    units = p["argv_sources"]
    words = [" ".join(shlex.quote(a) for a in u["args"]) for u in units]
    width = min(max(len(w) for w in words) + 4, 72)
    for i, (u, w) in enumerate(zip(units, words)):
        src = "; ".join(f"{s['plugin']}: {s['key'] or '-'}"
                        + (f" ({s['file']}:{s['line']})" if s["line"] else f" ({s['file'] or 'default'})")
                        for s in u["sources"])
        cont = " \\" if i < len(units) - 1 else "  "
        lines.append(f"  {(w + cont).ljust(width)}  # {src}")
    return "\n".join(lines)
