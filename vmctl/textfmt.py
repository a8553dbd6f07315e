"""Small text formats shared by the CLI and the TUI (no heavy imports)."""

from __future__ import annotations

import re as _re


def format_duration(seconds: float | None, missing: str = "—") -> str:
    """``"42s"``, ``"3m05s"``, ``"2h03m"``, ``"4d02h"`` — short and sortable by eye."""
    if seconds is None:
        return missing
    s = int(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600:02d}h"


#: Characters that never reach a terminal, a shell script, XML or argv unescaped: C0 controls
#: (tab and newline are handled by the caller), DEL, C1 controls, U+2028/U+2029, lone
#: surrogates and the non-characters U+FFFE/U+FFFF.
UNSAFE_CHARS = "\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff\ufffe\uffff"
_UNSAFE = _re.compile(f"[{UNSAFE_CHARS}]")
_UNSAFE_OR_TAB = _re.compile(f"[\t{UNSAFE_CHARS}]")


def _escape_char(m: _re.Match[str]) -> str:
    c = m.group()
    o = ord(c)
    return {"\n": "\\n", "\r": "\\r", "\t": "\\t"}.get(c) or (f"\\x{o:02x}" if o < 0x100 else f"\\u{o:04x}")


def safe(text: str, keep_tab: bool = True) -> str:
    """``text`` with every control character shown as an escape (``\\x1b``, ``\\n``, ``\\u2028``).

    For anything a machine file, a file name or a guest can put on a terminal: a value in a
    diagnostic, a comment in a generated script, a line in the TUI.
    """
    rx = _UNSAFE if keep_tab else _UNSAFE_OR_TAB
    return rx.sub(_escape_char, text) if rx.search(text) else text


def safe_lines(text: str) -> str:
    """:func:`safe` for multi-line text: newlines and tabs kept, everything else escaped."""
    if not _UNSAFE.search(text.replace("\n", "")):
        return text
    return "\n".join(safe(line) for line in text.split("\n"))


def first_unsafe(text: str) -> int:
    """Index of the first character :func:`safe` would escape (tab allowed), or -1."""
    m = _UNSAFE.search(text)
    return m.start() if m else -1
