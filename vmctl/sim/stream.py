"""Splitting a QMP byte stream into JSON messages, as QEMU's json-streamer does.

QMP is not line-based: QEMU tracks brace and bracket depth across reads, so an object may
span lines and two objects may share one.  A message is complete when depth returns to
zero (or a top-level scalar ends).  Garbage gets one error per bad token and the stream
carries on: ``garbage`` → ``JSON parse error, invalid keyword 'garbage'``, a stray byte
→ ``JSON parse error, stray '…'``, a lone ``}`` → ``JSON parse error, expecting value``.
"""

from __future__ import annotations

import codecs
import json
from dataclasses import dataclass
from typing import Any

#: Largest message accepted (QEMU allows 64 MiB; a simulator needs far less).
MAX_MESSAGE = 1 << 20
#: Deepest nesting accepted (QEMU's limit).
MAX_NESTING = 1024

_TOKEN_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+-.")
_SPACE = frozenset(" \t\r\n")


@dataclass(frozen=True)
class Parsed:
    """One complete message: ``value`` when it parsed, else ``error`` (QEMU's text)."""

    value: Any = None
    error: str | None = None


def _reject_constant(name: str) -> Any:
    raise ValueError(f"invalid keyword '{name}'")


def _parse(text: str) -> Parsed:
    stripped = text.strip()
    if stripped and stripped[0] in _TOKEN_CHARS and not stripped[0].isdigit() \
            and stripped[0] != "-" and stripped not in ("true", "false", "null"):
        return Parsed(error=f"JSON parse error, invalid keyword '{stripped}'")
    try:
        return Parsed(value=json.loads(stripped, parse_constant=_reject_constant))
    except ValueError as exc:
        msg = exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc)
        return Parsed(error=f"JSON parse error, {msg[:1].lower()}{msg[1:]}")


class JsonStream:
    """Incremental splitter: ``feed(bytes)`` returns the messages completed so far."""

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._buf: list[str] = []
        self._depth = 0
        self._in_string = False
        self._escape = False
        self._in_token = False

    def _reset(self) -> None:
        self._buf.clear()
        self._depth = 0
        self._in_string = self._escape = self._in_token = False

    def _complete(self, out: list[Parsed]) -> None:
        out.append(_parse("".join(self._buf)))
        self._reset()

    def feed(self, data: bytes) -> list[Parsed]:
        text = self._decoder.decode(data)
        if not self._buf and text.endswith("\n") and not self._in_token:
            # Fast path: one whole message per read, the common case.
            try:
                value = json.loads(text, parse_constant=_reject_constant)
            except ValueError:
                pass
            else:
                return [Parsed(value=value)]
        out: list[Parsed] = []
        for ch in text:
            self._step(ch, out)
        if self._buf and sum(len(s) for s in self._buf) > MAX_MESSAGE:
            out.append(Parsed(error="JSON token size limit exceeded"))
            self._reset()
        return out

    def _step(self, ch: str, out: list[Parsed]) -> None:
        if self._in_string:
            self._buf.append(ch)
            if self._escape:
                self._escape = False
            elif ch == "\\":
                self._escape = True
            elif ch == '"':
                self._in_string = False
                if self._depth == 0:
                    self._complete(out)
            return
        if self._in_token and ch not in _TOKEN_CHARS:
            self._in_token = False
            if self._depth == 0:
                self._complete(out)
        if ch in _SPACE:
            if self._depth:
                self._buf.append(ch)
            return
        if ch == '"':
            self._in_string = True
            self._buf.append(ch)
        elif ch in "{[":
            self._depth += 1
            if self._depth > MAX_NESTING:
                out.append(Parsed(error="JSON nesting depth limit exceeded"))
                self._reset()
                return
            self._buf.append(ch)
        elif ch in "}]":
            if self._depth == 0:
                out.append(Parsed(error="JSON parse error, expecting value"))
                return
            self._depth -= 1
            self._buf.append(ch)
            if self._depth == 0:
                self._complete(out)
        elif ch in _TOKEN_CHARS:
            self._in_token = True
            self._buf.append(ch)
        elif ch in ",:" and self._depth:
            self._buf.append(ch)
        elif ch in ",:":
            out.append(Parsed(error="JSON parse error, expecting value"))
        else:
            out.append(Parsed(error=f"JSON parse error, stray '{ch}'"))
            self._reset()
