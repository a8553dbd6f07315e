"""The QMP console's input language: a JSON request or ``name arg=value …``.

Accepted forms, all giving ``(command, arguments)``::

    query-status
    {"execute": "query-status"}
    {"execute": "human-monitor-command", "arguments": {"command-line": "info pic"}}
    human-monitor-command command-line="info pic"
    __org.vmctl_query-device plugin=spapr-irq
    device_del id=dev0 force=true

In the ``name arg=value`` form a value is read as JSON when it parses as JSON
(``true``, ``3``, ``[5, 6]``, ``{"a": 1}``; ``s='"7"'`` for the string ``"7"``) and as a plain string
otherwise; shell-style quotes group words (``command-line='info pic'``).  A ``hmp``
shortcut sends a human monitor command: ``hmp info pic``.  Errors are
:class:`ConsoleSyntaxError` with a message meant for the user.
"""

from __future__ import annotations

import json
import re
import shlex
from typing import Any

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")


class ConsoleSyntaxError(ValueError):
    """The line is not a QMP request; the message says what is wrong."""


def parse_line(line: str) -> tuple[str, dict[str, Any]]:
    """Parse one console line into ``(command, arguments)``."""
    text = line.strip()
    if not text:
        raise ConsoleSyntaxError("empty command; try: query-status")
    if text[0] in "{[":
        return _parse_json(text)
    try:
        words = shlex.split(text)
    except ValueError as exc:
        raise ConsoleSyntaxError(f"cannot split the line: {exc}") from exc
    head, rest = words[0], words[1:]
    if head == "hmp":
        if not rest:
            raise ConsoleSyntaxError("hmp needs a command line, e.g.: hmp info pic")
        return "human-monitor-command", {"command-line": " ".join(rest)}
    if not _NAME.match(head):
        raise ConsoleSyntaxError(f"{head!r} is not a command name")
    arguments: dict[str, Any] = {}
    for word in rest:
        key, eq, raw = word.partition("=")
        if not eq or not key:
            raise ConsoleSyntaxError(f"argument {word!r} is not name=value")
        if key in arguments:
            raise ConsoleSyntaxError(f"argument {key!r} given twice")
        arguments[key] = _value(raw)
    return head, arguments


def _value(raw: str) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def _parse_json(text: str) -> tuple[str, dict[str, Any]]:
    try:
        obj = json.loads(text)
    except ValueError as exc:
        raise ConsoleSyntaxError(f"invalid JSON: {exc}") from exc
    if not isinstance(obj, dict):
        raise ConsoleSyntaxError("a JSON request must be an object")
    unknown = sorted(set(obj) - {"execute", "arguments", "id"})
    if unknown:
        raise ConsoleSyntaxError(f"unexpected member {unknown[0]!r} (use execute and arguments)")
    command = obj.get("execute")
    if not isinstance(command, str) or not command:
        raise ConsoleSyntaxError("the request lacks a string member 'execute'")
    arguments = obj.get("arguments", {})
    if not isinstance(arguments, dict):
        raise ConsoleSyntaxError("'arguments' must be an object")
    return command, arguments


def format_reply(value: Any) -> str:
    """A reply for the console: HMP text as is, anything else as indented JSON."""
    if isinstance(value, str):
        return value.replace("\r\n", "\n").rstrip("\n") or "(empty)"
    return json.dumps(value, indent=2)
