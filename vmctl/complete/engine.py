"""From the words typed so far to what the word under the cursor is.

:func:`parse` walks ``words`` (``["vmctl", "host", "apply", "--sysfs-root", "/tmp/x", ""]``)
through the command table the way the CLI's parser would: command names descend into
groups, options that take a value swallow the next word (or carry it after ``=``), ``--``
ends the options, and the remaining words fill the command's arguments in order (the last
one may be variadic).  The result is a :class:`Request` saying which completer answers the
current word, and with what prefix.

Bash splits words at ``COMP_WORDBREAKS`` characters, so ``--format=js`` arrives as
``--format``, ``=``, ``js`` and a PCI address as ``0000``, ``:``, ``03``…; :func:`join_breaks`
glues them back and remembers how much of the word bash will replace.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

Node = dict[str, Any]
Option = dict[str, Any]

#: Characters bash splits words at that can appear inside a vmctl word.
BREAKS = frozenset("=:")


class Request:
    """What to complete.

    ``complete`` is the completer: ``"command"``, ``"option"``, ``"choice"``, or one of the
    dynamic kinds (``"machine"``, ``"instance"``, ``"host:apqn"``, …); empty for a word
    nothing completes.  ``incomplete`` is the text typed so far for the value, ``prefix``
    what precedes it in the same word (``"--format="``); candidates are ``prefix+value``.
    ``used`` holds the options already on the line, ``options`` their values, ``args`` the
    command's arguments typed before this word (``vmctl qmp NAME`` → ``("NAME",)``).

    (A plain class, not a dataclass: ``dataclasses`` would cost a TAB 15 ms of imports.)
    """

    __slots__ = ("complete", "incomplete", "node", "path", "prefix", "choices", "used", "options",
                 "args")

    def __init__(self, complete: str, incomplete: str, node: Node, path: tuple[str, ...] = (),
                 prefix: str = "", choices: tuple[str, ...] = (),
                 used: frozenset[str] = frozenset(), options: dict[str, str] | None = None,
                 args: tuple[str, ...] = ()) -> None:
        self.complete = complete
        self.incomplete = incomplete
        self.node = node
        self.path = path
        self.prefix = prefix
        self.choices = choices
        self.used = used
        self.options = options or {}
        self.args = args

    def __repr__(self) -> str:
        return (f"Request({self.complete!r}, {self.incomplete!r}, path={self.path!r}, "
                f"prefix={self.prefix!r})")

    @property
    def sysfs_root(self) -> str:
        """``--sysfs-root`` as typed earlier on the line, else ``/``."""
        return self.options.get("--sysfs-root") or "/"


def join_breaks(words: Sequence[str], cword: int) -> tuple[list[str], int, str]:
    """Undo bash's word splitting at ``=`` and ``:``.

    Returns ``(words, cword, replaced)`` where ``replaced`` is the tail of the current word
    that bash's readline will replace (the text after the last break character).
    """
    out: list[str] = []
    index = 0
    glue = False
    for i, word in enumerate(words[: cword + 1]):
        breaker = bool(word) and set(word) <= BREAKS
        if out and (glue or breaker):
            out[-1] += word
        else:
            out.append(word)
        glue = breaker
        if i == cword:
            index = len(out) - 1
    current = words[cword] if cword < len(words) else ""
    replaced = "" if current and set(current) <= BREAKS else current
    return out[: index + 1], index, replaced


def _options(node: Node) -> dict[str, Option]:
    return {name: opt for opt in node["options"] for name in opt["names"]}


def parse(table: Node, words: Sequence[str], cword: int) -> Request:
    """The :class:`Request` for ``words[cword]`` (``words[0]`` is the program name)."""
    incomplete = words[cword] if cword < len(words) else ""
    node, path = table, ["vmctl"]
    options = _options(node)
    used: set[str] = set()
    values: dict[str, str] = {}
    pending: str | None = None
    args: list[str] = []
    no_more_options = False
    for word in words[1:cword]:
        if pending is not None:
            values[pending] = word
            pending = None
        elif word == "--" and not no_more_options:
            no_more_options = True
        elif word.startswith("-") and len(word) > 1 and not no_more_options:
            name, eq, value = word.partition("=")
            opt = options.get(name)
            if opt is not None:
                used.update(opt["names"])
                if opt["value"] and not eq:
                    pending = name
                elif eq:
                    values[name] = value
        elif not args and word in node["commands"]:
            node = node["commands"][word]
            path.append(word)
            options = _options(node)
            used.clear()
        else:
            args.append(word)
    positional = len(args)
    common = {"node": node, "path": tuple(path), "used": frozenset(used), "options": values,
              "args": tuple(args)}
    if pending is not None:
        opt = options[pending]
        return Request(opt["complete"], incomplete, choices=tuple(opt["choices"]), **common)
    if incomplete.startswith("-") and not no_more_options:
        name, eq, value = incomplete.partition("=")
        opt = options.get(name)
        if eq and opt is not None and opt["value"]:
            return Request(opt["complete"], value, prefix=name + "=",
                           choices=tuple(opt["choices"]), **common)
        return Request("option", incomplete, **common)
    if positional == 0 and node["commands"]:
        return Request("command", incomplete, **common)
    specs = node["arguments"]
    if not specs:
        return Request("", incomplete, **common)
    spec = specs[positional] if positional < len(specs) else specs[-1]
    if positional >= len(specs) and spec["nargs"] != -1:
        return Request("", incomplete, **common)
    return Request(spec["complete"], incomplete, choices=tuple(spec["choices"]), **common)
