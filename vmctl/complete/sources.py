"""Candidates for each completer kind.

An :class:`Answer` is either a list of ``(value, description)`` pairs or a directive asking
the shell to complete file names itself (``files .toml``, ``dirs``, ``files``), which keeps
the shell's own quoting, ``~`` expansion and folder descent.

Dynamic kinds:

==================  =====================================================================
``machine``         ``*.toml`` files and folders (the shell lists them)
``instance``        instance folders in the state dir, with backend and state
``plugin``          installed plugins (from :mod:`vmctl.complete.cache`)
``device-kind``     every plugin's ``[[device]] kind`` values
``export-format``   ``argv``, ``sh``, ``libvirt-xml`` and the plugins' formats
``qmp-command``     the commands the instance named earlier on the line answers
                    (``query-commands`` over its QMP socket, half a second at most)
``host:KIND``       the plugins' ``vmctl_complete(kind, incomplete, sysfs)`` answers, read
                    under ``--sysfs-root`` when the line has one (PCI addresses with their
                    IOMMU group, free APQNs, …)
==================  =====================================================================
"""

from __future__ import annotations

import importlib
import json
import os
import sys
from collections import namedtuple
from collections.abc import Callable, Iterable
from typing import Any

from vmctl.complete.engine import Request

Item = tuple[str, str]

#: ``directive`` is ``values`` (use ``items``) or a file directive for the shell.
Answer = namedtuple("Answer", ["directive", "items"], defaults=[()])


def _debug(what: str, exc: BaseException) -> None:
    """Completion never prints into the user's prompt unless ``VMCTL_DEBUG`` is set."""
    if os.environ.get("VMCTL_DEBUG"):
        print(f"vmctl completion: {what}: {type(exc).__name__}: {exc}", file=sys.stderr)


def _facts(key: str) -> Any:
    from vmctl.complete.cache import plugin_facts

    try:
        return plugin_facts()[key]
    except Exception as exc:  # noqa: BLE001 - a broken install must not break the prompt
        _debug(f"plugin facts ({key})", exc)
        return {} if key == "groups" else []


def with_plugin_groups(table: dict[str, Any]) -> dict[str, Any]:
    """``table`` plus the plugins' command groups (from the cache)."""
    groups = {k: v for k, v in _facts("groups").items() if k not in table["commands"]}
    return {**table, "commands": {**table["commands"], **groups}} if groups else table


def instances() -> list[Item]:
    """Instances in the state dir: ``(name, "sim, running")`` (``vmctl ps``'s view, no QMP)."""
    from vmctl.paths import state_dir
    from vmctl.runtime.inspect import inspect
    from vmctl.runtime.instance import list_instances

    out = []
    for inst in list_instances(state_dir()):
        seen = inspect(inst, tail=1)
        out.append((inst.name, f"{seen.backend or '?'}, {seen.state.value}"))
    return out


def qmp_commands(name: str, timeout: float = 0.5) -> list[Item]:
    """Ask instance ``name`` for ``query-commands`` over a raw QMP socket (no QMP library)."""
    import socket

    from vmctl.paths import state_dir
    from vmctl.runtime.instance import Instance

    from vmctl.runtime.instance import valid_name

    if not valid_name(name):
        return []
    inst = Instance(state_dir(), name)
    if not inst.exists():
        return []
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(str(inst.socket()))
        reader = sock.makefile("rb")
        reader.readline()  # the greeting
        for request in (b'{"execute": "qmp_capabilities"}\n', b'{"execute": "query-commands"}\n'):
            sock.sendall(request)
            while "event" in (reply := json.loads(reader.readline())):
                pass
    return sorted((c["name"], "") for c in reply.get("return", []))


def _call_completer(ref: str, kind: str, incomplete: str, sysfs: object) -> Iterable[Item]:
    mod_name, _, attr = ref.partition(":")
    obj: object = importlib.import_module(mod_name)
    for part in filter(None, attr.split(".")):
        obj = getattr(obj, part)
    fn: Callable[..., Iterable[Item] | None] = getattr(obj, "vmctl_complete")
    code = fn.__code__
    argnames = code.co_varnames[int(hasattr(fn, "__self__")):code.co_argcount]
    given = {"kind": kind, "incomplete": incomplete, "sysfs": sysfs}
    return fn(**{a: given[a] for a in argnames if a in given}) or ()


def _item(candidate: Any) -> Item:
    """A ``Completion`` record (or, for one release, a ``(value, help)`` tuple) as an item."""
    if hasattr(candidate, "value"):
        return str(candidate.value), str(getattr(candidate, "help", ""))
    value, help_text = candidate
    return str(value), str(help_text)


def host_resources(kind: str, incomplete: str, sysfs_root: str) -> list[Item]:
    """Ask every plugin that implements ``vmctl_complete`` (imported directly, no pluggy)."""
    from vmctl.host.sysfs import Sysfs

    sysfs = Sysfs(sysfs_root)
    out: list[Item] = []
    for plugin, ref in _facts("completers"):
        try:
            out.extend(_item(c) for c in _call_completer(ref, kind, incomplete, sysfs))
        except Exception as exc:  # noqa: BLE001 - one plugin's bug must not break the prompt
            _debug(f"plugin {plugin!r} vmctl_complete({kind!r})", exc)
    return out


def answer(req: Request) -> Answer:
    """The candidates for ``req``, filtered by what was typed."""
    kind = req.complete
    if kind == "machine":
        return Answer("files .toml")
    if kind in ("file", "dir"):
        return Answer(kind + "s")
    items: Iterable[Item]
    if kind == "command":
        items = [(name, node["help"]) for name, node in req.node["commands"].items()]
    elif kind == "option":
        # a lone "-" lists each option once, by its long name; "-f" still finds the short one
        items = [(name, opt["help"]) for opt in req.node["options"] for name in opt["names"]
                 if (opt["multiple"] or name not in req.used)
                 and (req.incomplete != "-" or name.startswith("--") or len(opt["names"]) == 1)]
    elif kind == "choice":
        items = [(c, "") for c in req.choices]
    elif kind == "instance":
        try:
            items = instances()
        except Exception as exc:  # noqa: BLE001 - an unreadable state dir gives no names
            _debug("instances", exc)
            items = []
    elif kind == "plugin":
        items = _facts("plugins")
    elif kind == "device-kind":
        items = _facts("kinds")
    elif kind == "export-format":
        items = _facts("formats")
    elif kind == "qmp-command":
        try:
            items = qmp_commands(req.args[0]) if req.args else []
        except (OSError, ValueError, KeyError) as exc:  # not running, not answering: nothing
            _debug("qmp-command", exc)
            items = []
    elif kind.startswith("host:"):
        items = host_resources(kind[5:], req.incomplete, req.sysfs_root)
    else:
        items = []
    seen: set[str] = set()
    out = []
    for value, desc in items:
        if value.startswith(req.incomplete) and value not in seen:
            seen.add(value)
            out.append((req.prefix + value, desc))
    return Answer("values", tuple(out))
