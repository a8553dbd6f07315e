"""The ``vmctl`` command line as data: commands, options, arguments and what each completes.

:func:`command_tree` walks the typer application (and the built-in plugins' command groups)
once and returns plain dicts.  Two generated surfaces come from it, so neither can list
something the CLI does not have: the completion table (:mod:`vmctl.complete.table`) and the
CLI reference (``docs/cli.md``).  Only ``python -m vmctl.docsgen`` and tests import this
module; a TAB never does.

What a parameter completes is decided here, from the parameter itself:

* an enum-typed parameter completes its values (``--format text|json``);
* in a plugin's command group, an argument or option with a metavar of its own (not one
  of click's generic ``TEXT``, ``PATH``, … :data:`GENERIC_METAVARS`) completes that host
  resource: ``[APQN]...`` is the kind ``apqn``, ``PCI_ADDRESS`` the kind ``pci-address``,
  answered by the plugins' ``vmctl_complete`` hook.  The kinds are the plugins' own words;
  vmctl knows none of them;
* a ``Path`` argument named ``path``/``paths`` completes machine files (``*.toml``) and
  folders; a ``DIR`` metavar or a ``*_root``/``*_dir`` name completes folders; another
  ``Path``, files;
* an argument named ``name`` completes running instances, ``plugin`` plugin names,
  ``kind`` device kinds;
* :data:`OVERRIDES` names the few parameters no convention covers.

A command module author gets completion by following these names; nothing else to register.
"""

from __future__ import annotations

import enum
import os
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

#: Metavars that name a value's type, not a host resource (click's, and vmctl's ``DIR``).
GENERIC_METAVARS = frozenset({"TEXT", "INTEGER", "FLOAT", "BOOLEAN", "PATH", "FILE", "DIR",
                              "FILENAME", "DIRECTORY", "UUID", "NAME", "COMMAND", "ARGS",
                              "VALUE", "OPTIONS", "INT"})

#: ``"vmctl CMD --option"`` or ``"vmctl CMD ARG"`` → completer, where no convention applies.
OVERRIDES = {"vmctl export --format": "export-format", "vmctl qmp COMMAND": "qmp-command"}


Node = dict[str, Any]


def _unwrap(annotation: Any) -> Any:
    """``list[Path]`` → Path, ``Path | None`` → Path, ``Optional[Enum]`` → Enum."""
    for _ in range(3):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if typing.get_origin(annotation) is None or not args:
            break
        annotation = args[0]
    return annotation


def _choices(annotation: Any) -> list[str]:
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return [str(m.value) for m in annotation]
    if typing.get_origin(annotation) is typing.Literal:
        return [str(a) for a in typing.get_args(annotation)]
    return []


def host_kind(metavar: str | None) -> str:
    """The host-resource kind a plugin parameter's metavar names (``"[APQN]..."`` → ``"apqn"``),
    or ``""`` for none or a generic one."""
    word = (metavar or "").strip("[]. ").split("|")[0].strip("[]. ")
    if not word or word.upper() in GENERIC_METAVARS or not word.replace("_", "").replace("-", "").isalnum():
        return ""
    return word.lower().replace("_", "-")


def completer_of(path: str, param: Any, plugin: str = "") -> tuple[str, list[str]]:
    """What ``param`` of command ``path`` (``"vmctl host apply"``) completes: ``(kind, choices)``.

    ``plugin`` names the plugin whose command group ``path`` belongs to (``""`` for vmctl's
    own commands): only there does a metavar name a host-resource kind."""
    is_option = param.param_type_name == "option"
    label = param.opts[0] if is_option else param.name.upper()
    if f"{path} {label}" in OVERRIDES:
        return OVERRIDES[f"{path} {label}"], []
    if getattr(param, "is_flag", False):
        return "", []
    annotation = _unwrap(param.type_descriptor.annotation)
    choices = _choices(annotation)
    if choices:
        return "choice", choices
    name = param.name or ""
    kind = host_kind(param.metavar) if plugin else ""
    if kind:
        return f"host:{kind}", []
    if param.metavar == "DIR" or name.endswith(("_root", "_dir")):
        return "dir", []
    if isinstance(annotation, type) and issubclass(annotation, Path):
        return ("machine" if name in ("path", "paths") else "file"), []
    if not is_option and name in ("name", "names", "instance"):
        return "instance", []
    if name in ("plugin", "plugins"):
        return "plugin", []
    if name in ("kind", "kinds"):
        return "device-kind", []
    return "", []


def _first_line(text: str | None) -> str:
    text = (text or "").strip()
    return text.split("\n\n")[0].replace("\n", " ").split(". ")[0].rstrip(".")


def _param(path: str, param: Any, ctx: Any, plugin: str = "") -> dict[str, Any]:
    kind, choices = completer_of(path, param, plugin)
    is_option = param.param_type_name == "option"
    out: dict[str, Any] = {
        "name": param.name,
        "help": " ".join((getattr(param, "help", None) or "").split()),
        "display": (param.get_help_record(ctx) or ("",))[0],
        "complete": kind,
        "choices": choices,
        "required": bool(param.required),
    }
    if is_option:
        out.update(opts=list(param.opts), secondary=list(param.secondary_opts),
                   flag=bool(param.is_flag), multiple=bool(param.multiple),
                   hidden=bool(getattr(param, "hidden", False)))
    else:
        out.update(nargs=param.nargs)
    return out


#: typer's own ``--install-completion``/``--show-completion``: not vmctl's completion.
_TYPER_COMPLETION = frozenset({"install_completion", "show_completion"})


def _node(name: str, path: str, cmd: Any, ctx: Any, plugin: str = "") -> Node:
    if getattr(cmd, "rich_markup_mode", None) is not None:
        cmd.rich_markup_mode = None  # plain help text: rich mode prints instead of returning
    params = [p for p in cmd.params
              if not getattr(p, "hidden", False) and p.name not in _TYPER_COMPLETION]
    node: Node = {
        "name": name,
        "path": path,
        "help": (cmd.help or "").strip(),
        "short": _first_line(cmd.short_help or cmd.help),
        "plugin": plugin,
        "options": [_param(path, p, ctx, plugin) for p in params if p.param_type_name == "option"],
        "arguments": [_param(path, p, ctx, plugin) for p in params
                      if p.param_type_name == "argument"],
        "commands": [],
        "help_options": list(ctx.help_option_names) if cmd.add_help_option else [],
        "usage": cmd.get_help(ctx),
    }
    for sub_name, sub in getattr(cmd, "commands", {}).items():
        if not getattr(sub, "hidden", False):
            node["commands"].append(_node(sub_name, f"{path} {sub_name}", sub,
                                          _context(sub, sub_name, ctx), plugin))
    return node


def _context(cmd: Any, name: str, parent: Any = None) -> Any:
    """A context as the CLI makes it (help options inherited), 88 columns wide for docs."""
    from typer import _click as click

    settings = {"terminal_width": 88, "max_content_width": 88, **(cmd.context_settings or {})}
    return click.Context(cmd, info_name=name, parent=parent, **settings)


def command_tree(plugins: bool = True) -> Node:
    """The whole CLI: vmctl's own commands, then (``plugins``) the command groups of the
    plugins shipped in vmctl's distribution, for the CLI reference.

    Third-party groups are left out so the generated files do not depend on what happens
    to be installed.  The completion table holds vmctl's own commands only
    (:func:`own_commands`): every plugin's group, built-in or not, completes through
    :mod:`vmctl.complete.cache`.
    """
    import typer

    from vmctl.cli.main import build_app
    from vmctl.plugins import get_plugin_manager

    saved = os.environ.get("_VMCTL_NO_PLUGIN_COMMANDS")
    os.environ["_VMCTL_NO_PLUGIN_COMMANDS"] = "1"
    try:
        root_cmd = typer.main.get_command(build_app())
    finally:
        if saved is None:
            del os.environ["_VMCTL_NO_PLUGIN_COMMANDS"]
        else:
            os.environ["_VMCTL_NO_PLUGIN_COMMANDS"] = saved
    root = _node("vmctl", "vmctl", root_cmd, _context(root_cmd, "vmctl"))
    if plugins:
        taken = {c["name"] for c in root["commands"]}
        root["commands"] += plugin_groups(get_plugin_manager(), builtin=True, taken=taken,
                                          strict=True)
    return root


def own_commands(tree: Node) -> Node:
    """``tree`` without the plugins' command groups: what vmctl itself provides."""
    return {**tree, "commands": [c for c in tree["commands"] if not c["plugin"]]}


def plugin_groups(pm: Any, *, builtin: bool | None, taken: set[str],
                  strict: bool = False) -> list[Node]:
    """Nodes for the plugins' ``vmctl_cli_commands`` groups: the built-in plugins' ones
    (``builtin=True``), the others (``False``) or all (``None``).

    A group whose name is ``taken`` is skipped, as the CLI does.  Importing a group's
    factory may fail: that group is left out (and named on stderr), unless ``strict``
    (the docs must not silently lose a command), when the error propagates.
    """
    import importlib
    import sys

    import typer

    from vmctl.plugins import call_flat

    nodes = []
    for spec in call_flat(pm, "vmctl_cli_commands"):
        info = pm.infos.get(spec.plugin)
        if (builtin is not None and bool(info and info.builtin) != builtin) or spec.name in taken:
            continue
        try:
            mod, _, attr = spec.factory.partition(":")
            sub = typer.main.get_command(getattr(importlib.import_module(mod), attr))
        except Exception as exc:
            if strict:
                raise
            print(f"warning: plugin '{spec.plugin}' command '{spec.name}': cannot load "
                  f"{spec.factory} ({type(exc).__name__}: {exc})", file=sys.stderr)
            continue
        node = _node(spec.name, f"vmctl {spec.name}", sub,
                     _context(sub, f"vmctl {spec.name}"), spec.plugin)
        node["short"] = node["short"] or spec.help
        nodes.append(node)
        taken.add(spec.name)
    return nodes


def walk(node: Node) -> Iterator[Node]:
    """``node`` and every command below it, depth first."""
    yield node
    for child in node["commands"]:
        yield from walk(child)


def completion_table(tree: Node) -> Node:
    """The compact form :mod:`vmctl.complete.engine` reads (no usage text, no long help)."""
    def compact(node: Node) -> Node:
        options = []
        for o in node["options"]:
            options.append({"names": o["opts"] + o["secondary"], "value": not o["flag"],
                            "multiple": o["multiple"], "complete": o["complete"],
                            "choices": o["choices"], "help": _first_line(o["help"])})
        if node["help_options"]:
            options.append({"names": sorted(node["help_options"], key=len, reverse=True),
                            "value": False, "multiple": False, "complete": "", "choices": [],
                            "help": "Show the help and exit"})
        return {
            "help": node["short"],
            "options": options,
            "arguments": [{"name": a["name"], "nargs": a["nargs"], "complete": a["complete"],
                           "choices": a["choices"]} for a in node["arguments"]],
            "commands": {c["name"]: compact(c) for c in node["commands"]},
        }
    return compact(tree)
