"""``vmctl plugins``: what is loaded, from where, and what it contributes."""

from __future__ import annotations

import typer

from vmctl.cli.common import TextJson, echo, emit_json, plugin_manager


def plugins(plugin: list[str] = typer.Argument(None, metavar="[PLUGIN]...",
                                               help="Only these plugins (default: all)."),
            fmt: TextJson = typer.Option(TextJson.text, "--format", help="text or json.")) -> None:
    """Loaded plugins: version, built-in or not, sections, device kinds, hooks."""
    from vmctl.config.schema import Schema
    from vmctl.export import formats
    from vmctl.plugins import hooks_of

    pm = plugin_manager()
    schema = Schema.from_plugins(pm)
    fmts = formats(pm)
    rows = []
    for name, info in sorted(pm.infos.items()):
        rows.append({
            "name": name, "version": info.version, "distribution": info.distribution, "module": info.module,
            "builtin": info.builtin, "status": info.status, "error": info.error,
            "sections": sorted(s.name for s in schema.sections.values() if s.plugin == name),
            "device_kinds": sorted(k.name for k in schema.kinds.values() if k.plugin == name),
            "hooks": hooks_of(pm, name),
        })
    if plugin:
        from vmctl.config.schema import did_you_mean
        from vmctl.errors import VmctlError

        known = [r["name"] for r in rows]
        for name in plugin:
            if name not in known:
                raise VmctlError(f"no plugin named {name!r}", did_you_mean(name, known, "plugins"))
        rows = [r for r in rows if r["name"] in plugin]
    if fmt is TextJson.json:
        emit_json({"plugins": rows, "export_formats": fmts, "conflicts": schema.conflicts})
        return
    for r in rows:
        origin = "built-in" if r["builtin"] else f"from {r['distribution'] or r['module']}"
        echo(f"{r['name']} {r['version']} ({origin}){'' if r['status'] == 'loaded' else ' — ' + r['status']}")
        if r["error"]:
            echo(f"  error: {r['error']}")
        if r["sections"]:
            echo(f"  sections: {', '.join('[' + s + ']' for s in r['sections'])}")
        if r["device_kinds"]:
            echo(f"  device kinds: {', '.join(r['device_kinds'])}")
        if r["hooks"]:
            echo(f"  hooks: {', '.join(h.removeprefix('vmctl_') for h in r['hooks'])}")
    for c in schema.conflicts:
        echo(f"warning: {c}")


def register(app: typer.Typer) -> None:
    app.command()(plugins)
