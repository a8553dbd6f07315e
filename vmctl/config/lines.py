"""Where each key of a TOML document stands: key path → line number.

``tomllib`` gives values but not positions, so this scanner walks the text once and
records the line of every table header and every ``key = value``.  Key paths are tuples;
array-of-tables entries carry their index: ``("device", 1, "adapters")``.  It understands
headers, dotted and quoted keys, multi-line arrays and inline tables, and multi-line
strings (so a ``=`` inside a string is not taken for a key).
"""

from __future__ import annotations

import re

_BARE = re.compile(r"[A-Za-z0-9_-]+")

Path = tuple[str | int, ...]


def _split_key(text: str) -> list[str] | None:
    """``a."b.c".d`` → ``["a", "b.c", "d"]``; None when ``text`` is not a key."""
    parts: list[str] = []
    i, n = 0, len(text)
    while i < n:
        while i < n and text[i] in " \t":
            i += 1
        if i >= n:
            return None
        c = text[i]
        if c in "\"'":
            j = text.find(c, i + 1)
            while c == '"' and j > 0 and text[j - 1] == "\\":
                j = text.find(c, j + 1)
            if j < 0:
                return None
            parts.append(text[i + 1:j])
            i = j + 1
        else:
            m = _BARE.match(text, i)
            if not m:
                return None
            parts.append(m.group())
            i = m.end()
        while i < n and text[i] in " \t":
            i += 1
        if i < n:
            if text[i] != ".":
                return None
            i += 1
    return parts or None


def _scan_value(text: str, state: dict) -> None:
    """Track bracket depth and open multi-line strings across a value's text."""
    i, n = 0, len(text)
    while i < n:
        delim = state.get("string")
        if delim:
            j = text.find(delim, i)
            if j < 0:
                return
            state["string"] = None
            i = j + len(delim)
            continue
        c = text[i]
        if c == "#":
            return
        if text.startswith('"""', i) or text.startswith("'''", i):
            state["string"] = text[i:i + 3]
            i += 3
            continue
        if c in "\"'":
            j = i + 1
            while j < n and text[j] != c:
                j += 2 if (c == '"' and text[j] == "\\") else 1
            i = j + 1
            continue
        if c in "[{":
            state["depth"] += 1
        elif c in "]}":
            state["depth"] -= 1
        i += 1


def key_lines(text: str) -> dict[Path, int]:
    """Map every table and key path in ``text`` to its 1-based line number."""
    out: dict[Path, int] = {}
    counts: dict[tuple[str, ...], int] = {}
    current: Path = ()
    state = {"depth": 0, "string": None}
    for lineno, raw in enumerate(text.splitlines(), start=1):
        if state["string"] or state["depth"] > 0:
            _scan_value(raw, state)
            continue
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("[["):
            end = line.find("]]")
            parts = _split_key(line[2:end]) if end > 0 else None
            if parts:
                key = tuple(parts)
                counts[key] = counts.get(key, -1) + 1
                current = _within_arrays(key, counts) + (counts[key],)
                out.setdefault(current, lineno)
            continue
        if line.startswith("["):
            end = line.find("]")
            parts = _split_key(line[1:end]) if end > 0 else None
            if parts:
                current = _within_arrays(tuple(parts), counts)
                out.setdefault(current, lineno)
            continue
        eq = _find_eq(line)
        if eq < 0:
            continue
        parts = _split_key(line[:eq])
        if not parts:
            continue
        path = current + tuple(parts)
        out.setdefault(path, lineno)
        value = line[eq + 1:]
        if value.lstrip().startswith("{"):
            _inline_keys(value, path, lineno, out)
        _scan_value(value, state)
    return out


def _within_arrays(key: tuple[str, ...], counts: dict[tuple[str, ...], int]) -> Path:
    """``[device.extra]`` after ``[[device]]`` refers to the last device."""
    path: list[str | int] = []
    for i, part in enumerate(key):
        path.append(part)
        prefix = key[: i + 1]
        if i < len(key) - 1 and prefix in counts:
            path.append(counts[prefix])
    return tuple(path)


def _find_eq(line: str) -> int:
    quote = None
    for i, c in enumerate(line):
        if quote:
            if c == quote:
                quote = None
        elif c in "\"'":
            quote = c
        elif c == "=":
            return i
    return -1


def _inline_keys(value: str, path: Path, lineno: int, out: dict[Path, int]) -> None:
    for m in re.finditer(r"[{,]\s*([A-Za-z0-9_-]+)\s*=", value):
        out.setdefault(path + (m.group(1),), lineno)


def keystr(path: Path) -> str:
    """``("device", 1, "adapters")`` → ``"device[1].adapters"``."""
    s = ""
    for part in path:
        if isinstance(part, int):
            s += f"[{part}]"
        else:
            s += ("." if s else "") + part
    return s
