"""Limits on what one machine resolution may read, checked before any parser sees the text.

A machine file is a few hundred bytes.  These bounds keep a hostile or broken one from
hanging or crashing vmctl (which runs as root) and each one fails with a message that names
the file, the line and the limit:

==========================  =====  ===========================================================
``MAX_FILE_BYTES``          1 MiB  one file
``MAX_TOTAL_BYTES``         4 MiB  every file read for one machine, includes counted each time
``MAX_FILES``               256    files read for one machine (an "include bomb" of 30
                                   includes × 5 levels would read 24 million)
``MAX_INCLUDE_DEPTH``       16     include chain length
``MAX_NESTING``             32     arrays and tables inside each other (``[[[…]]]``, ``{a={…}}``);
                                   far below Python's recursion limit, which tomllib and
                                   vmctl's own tree walks would otherwise hit
``MAX_KEY_PARTS``           64     parts of one dotted key or table header (``a.b.c…``); tomllib
                                   takes quadratic time in them
==========================  =====  ===========================================================

:func:`check_shape` scans the text once for the last two; it skips strings and comments, so
``"[[["`` in a value is not nesting.  Texts with few brackets and dots are passed without a
scan (``str.count`` runs in C), which is every real machine file.
"""

from __future__ import annotations

MAX_FILE_BYTES = 1 << 20
MAX_TOTAL_BYTES = 4 << 20
MAX_FILES = 256
MAX_INCLUDE_DEPTH = 16
MAX_NESTING = 32
MAX_KEY_PARTS = 64

_OPEN = "[{"
_CLOSE = "]}"
#: Characters that end a dotted-key run: a value, an element or a header starts or ends.
_RUN_BREAK = frozenset("=,[]{}\n")


def check_shape(text: str) -> tuple[int, str] | None:
    """``(line, problem)`` for the first limit ``text`` breaks, else None."""
    if (text.count("[") + text.count("{") <= MAX_NESTING
            and text.count(".") < MAX_KEY_PARTS):
        return None
    return _scan(text)


def _scan(text: str) -> tuple[int, str] | None:
    depth = 0
    dots = 0
    line = 1
    i = 0
    n = len(text)
    while i < n:
        c = text[i]
        if c == "\n":
            line += 1
        if c in _RUN_BREAK:
            dots = 0
        if c in _OPEN:
            depth += 1
            if depth > MAX_NESTING:
                return line, (f"arrays and tables are nested more than {MAX_NESTING} deep")
        elif c in _CLOSE:
            depth = max(0, depth - 1)
        elif c == ".":
            dots += 1
            if dots >= MAX_KEY_PARTS:
                return line, f"a dotted key or table header has more than {MAX_KEY_PARTS} parts"
        elif c == "#":
            end = text.find("\n", i)
            i = n if end < 0 else end
            continue
        elif c == '"' or c == "'":
            i, line = _skip_string(text, i, line)
            continue
        i += 1
    return None


def _skip_string(text: str, i: int, line: int) -> tuple[int, int]:
    """Index just past the string that starts at ``i`` (and the line it ends on)."""
    q = text[i]
    if text.startswith(q * 3, i):
        end = text.find(q * 3, i + 3)
        while end >= 0 and q == '"' and _escaped(text, end):
            end = text.find(q * 3, end + 1)
        if end < 0:
            return len(text), line + text.count("\n", i)
        extra = 0  # up to two quotes may end the content itself: """a"""" is 'a"'
        while extra < 2 and end + 3 < len(text) and text[end + 3] == q:
            end += 1
            extra += 1
        end += 3
        return end, line + text.count("\n", i, end)
    j = i + 1
    while j < len(text):
        c = text[j]
        if c == "\n":
            return j, line  # an unterminated string: let tomllib report it
        if c == "\\" and q == '"':
            j += 2
            continue
        if c == q:
            return j + 1, line
        j += 1
    return j, line


def _escaped(text: str, at: int) -> bool:
    """Whether the quote at ``at`` is preceded by an odd number of backslashes."""
    k = at - 1
    while k >= 0 and text[k] == "\\":
        k -= 1
    return (at - 1 - k) % 2 == 1
