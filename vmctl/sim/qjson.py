"""QEMU 7.2's JSON lexer table and parser, ported byte for byte (see :mod:`vmctl.sim.stream`).

``qobject/json-lexer.c`` (the state table, QEMU's extensions included) and
``qobject/json-parser.c`` (first-error messages, modified UTF-8, ``\\uXXXX`` rules, 64-bit
integers, duplicate keys).  The parser keeps its own stack: nothing here recurses.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

#: Deepest nesting accepted (QEMU's ``MAX_NESTING``: open braces plus open brackets).
MAX_NESTING = 1 << 10


@dataclass(frozen=True)
class Parsed:
    """One complete message: ``value`` when it parsed, else ``error`` (QEMU's text)."""

    value: Any = None
    error: str | None = None


class _ParseError(Exception):
    pass


# -- lexer states and token types (json-lexer.c / json-parser-int.h) --------------------
JSON_ERROR = 0
(IN_RECOVERY, IN_DQ_STRING_ESCAPE, IN_DQ_STRING, IN_SQ_STRING_ESCAPE, IN_SQ_STRING, IN_ZERO,
 IN_EXP_DIGITS, IN_EXP_SIGN, IN_EXP_E, IN_MANTISSA, IN_MANTISSA_DIGITS, IN_DIGITS, IN_SIGN,
 IN_KEYWORD, IN_START) = range(1, 16)
(JSON_LCURLY, JSON_RCURLY, JSON_LSQUARE, JSON_RSQUARE, JSON_COLON, JSON_COMMA, JSON_INTEGER,
 JSON_FLOAT, JSON_KEYWORD, JSON_STRING) = range(100, 110)
_JSON_MIN = JSON_LCURLY
_LOOKAHEAD = 0x100


def _build_table() -> list[list[int]]:
    t = [[JSON_ERROR] * 256 for _ in range(IN_START + 1)]

    def terminal(state: int, token: int) -> None:
        t[state][:] = [token | _LOOKAHEAD] * 256

    def span(state: int, lo: int, hi: int, to: int) -> None:
        for c in range(lo, hi + 1):
            t[state][c] = to

    def chars(state: int, cs: bytes, to: int) -> None:
        for c in cs:
            t[state][c] = to

    digits = b"0123456789"
    span(IN_RECOVERY, 0, 0x1F, IN_START | _LOOKAHEAD)
    span(IN_RECOVERY, 0x20, 0xFD, IN_RECOVERY)
    span(IN_RECOVERY, 0xFE, 0xFF, IN_START | _LOOKAHEAD)
    chars(IN_RECOVERY, b"\t", IN_RECOVERY)
    chars(IN_RECOVERY, b"[]{}:,", IN_START | _LOOKAHEAD)
    for esc, string, quote in ((IN_DQ_STRING_ESCAPE, IN_DQ_STRING, b'"'),
                               (IN_SQ_STRING_ESCAPE, IN_SQ_STRING, b"'")):
        span(esc, 0x20, 0xFD, string)
        span(string, 0x20, 0xFD, string)
        chars(string, b"\\", esc)
        chars(string, quote, JSON_STRING)
    terminal(IN_ZERO, JSON_INTEGER)
    chars(IN_ZERO, digits, JSON_ERROR)
    chars(IN_ZERO, b".", IN_MANTISSA)
    terminal(IN_EXP_DIGITS, JSON_FLOAT)
    chars(IN_EXP_DIGITS, digits, IN_EXP_DIGITS)
    chars(IN_EXP_SIGN, digits, IN_EXP_DIGITS)
    chars(IN_EXP_E, b"-+", IN_EXP_SIGN)
    chars(IN_EXP_E, digits, IN_EXP_DIGITS)
    terminal(IN_MANTISSA_DIGITS, JSON_FLOAT)
    chars(IN_MANTISSA_DIGITS, digits, IN_MANTISSA_DIGITS)
    chars(IN_MANTISSA_DIGITS, b"eE", IN_EXP_E)
    chars(IN_MANTISSA, digits, IN_MANTISSA_DIGITS)
    terminal(IN_DIGITS, JSON_INTEGER)
    chars(IN_DIGITS, digits, IN_DIGITS)
    chars(IN_DIGITS, b"eE", IN_EXP_E)
    chars(IN_DIGITS, b".", IN_MANTISSA)
    chars(IN_SIGN, b"0", IN_ZERO)
    chars(IN_SIGN, b"123456789", IN_DIGITS)
    terminal(IN_KEYWORD, JSON_KEYWORD)
    span(IN_KEYWORD, ord("a"), ord("z"), IN_KEYWORD)
    chars(IN_START, b'"', IN_DQ_STRING)
    chars(IN_START, b"'", IN_SQ_STRING)
    chars(IN_START, b"0", IN_ZERO)
    chars(IN_START, b"123456789", IN_DIGITS)
    chars(IN_START, b"-", IN_SIGN)
    for ch, tok in zip(b"{}[]:,", (JSON_LCURLY, JSON_RCURLY, JSON_LSQUARE, JSON_RSQUARE,
                                   JSON_COLON, JSON_COMMA)):
        t[IN_START][ch] = tok
    span(IN_START, ord("a"), ord("z"), IN_KEYWORD)
    chars(IN_START, b" \t\r\n", IN_START)
    return t


_TABLE = _build_table()
_PUNCT = {ord("{"): JSON_LCURLY, ord("}"): JSON_RCURLY, ord("["): JSON_LSQUARE,
          ord("]"): JSON_RSQUARE, ord(":"): JSON_COLON, ord(","): JSON_COMMA}

# Whole tokens recognised at once from IN_START (a conservative subset of what the table
# accepts: numbers and keywords only when the byte ending them is already here and is one
# that ends them in every state; anything else goes through the table byte by byte).
_STR_BODY_DQ = rb'[^"\\\x00-\x1f\xfe\xff]*(?:\\[\x20-\xfd][^"\\\x00-\x1f\xfe\xff]*)*'
_STR_BODY_SQ = rb"[^'\\\x00-\x1f\xfe\xff]*(?:\\[\x20-\xfd][^'\\\x00-\x1f\xfe\xff]*)*"
_TOKEN_RE = re.compile(
    rb"([ \t\r\n]+)"                                           # 1 whitespace
    rb"|([{}\[\]:,])"                                          # 2 structural
    rb'|("' + _STR_BODY_DQ + rb'")'                            # 3 string
    rb"|('" + _STR_BODY_SQ + rb"')"                            # 4 string
    rb"|(-?(?:0|[1-9][0-9]*)(?=[^0-9.eE]))"                   # 5 integer
    rb"|(-?(?:0|[1-9][0-9]*)\.[0-9]+(?:[eE][-+]?[0-9]+)?(?=[^0-9.eE])"
    rb"|-?[1-9][0-9]*[eE][-+]?[0-9]+(?=[^0-9.eE]))"          # 6 float
    rb"|([a-z]+)(?=[^a-z])")                                   # 7 keyword
_GROUP_TYPES = (None, None, None, JSON_STRING, JSON_STRING, JSON_INTEGER, JSON_FLOAT,
                JSON_KEYWORD)
# Runs of bytes that keep a state where it is (the token grows; or, recovering, is dropped).
_RUNS = {
    IN_DQ_STRING: re.compile(rb'[^"\\\x00-\x1f\xfe\xff]+'),
    IN_SQ_STRING: re.compile(rb"[^'\\\x00-\x1f\xfe\xff]+"),
    IN_KEYWORD: re.compile(rb"[a-z]+"),
    IN_DIGITS: re.compile(rb"[0-9]+"),
    IN_MANTISSA_DIGITS: re.compile(rb"[0-9]+"),
    IN_EXP_DIGITS: re.compile(rb"[0-9]+"),
}
_RECOVERY_RUN = re.compile(rb"[^\x00-\x08\x0a-\x1f\xfe\xff\[\]{}:,]+")

# -- strings (parse_string, util/unicode.c) ----------------------------------------------
_NONCHAR = re.compile("[\ufdd0-\ufdef\ufffe\uffff" + "".join(
    chr(p * 0x10000 + 0xFFFE) + chr(p * 0x10000 + 0xFFFF) for p in range(1, 17)) + "]")
_MIN_CP = (0x80, 0x800, 0x10000, 0x200000, 0x4000000)
_SIMPLE_ESCAPES = {ord('"'): '"', ord("'"): "'", ord("\\"): "\\", ord("/"): "/",
                   ord("b"): "\b", ord("f"): "\f", ord("n"): "\n", ord("r"): "\r",
                   ord("t"): "\t"}
_HEX = {c: int(chr(c), 16) for c in b"0123456789abcdefABCDEF"}


def _valid_codepoint(cp: int) -> bool:
    return (0 <= cp <= 0x10FFFF and not 0xFDD0 <= cp <= 0xFDEF and (cp & 0xFFFE) != 0xFFFE
            and not 0xD800 <= cp <= 0xDFFF)


def _mod_utf8_codepoint(s: bytes, p: int) -> tuple[int, int]:
    """QEMU's ``mod_utf8_codepoint(s + p, 6, &end)`` on a NUL-padded ``s``: (cp, end)."""
    byte = s[p]
    if byte == 0:
        return -1, p
    p += 1
    if byte < 0x80:
        return byte, p
    if byte >= 0xFE or not byte & 0x40:
        return -1, p
    length, mask = 0, 0x80
    while byte & mask:
        length += 1
        mask >>= 1
    cp = byte & (mask - 1)
    for _ in range(1, length):
        nxt = s[p]
        if nxt & 0xC0 != 0x80:
            return -1, p
        p += 1
        cp = (cp << 6) | (nxt & 0x3F)
    if cp > 0x10FFFF or 0xFDD0 <= cp <= 0xFDEF or (cp & 0xFFFE) == 0xFFFE \
            or 0xD800 <= cp <= 0xDFFF or (cp < _MIN_CP[length - 2] and not (cp == 0 and length == 2)):
        return -1, p
    return cp, p


def c_text(raw: bytes) -> str:
    """What QEMU's JSON writer makes of C string ``raw``: cut at NUL, bad UTF-8 → U+FFFD."""
    raw = raw.split(b"\0", 1)[0]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        pass
    else:
        if not _NONCHAR.search(text):
            return text
    padded = raw + b"\0" * 8
    out: list[str] = []
    p, end = 0, len(raw)
    while p < end:
        cp, p = _mod_utf8_codepoint(padded, p)  # always advances: no NUL before end
        out.append(chr(cp) if cp >= 0 else "\ufffd")
    return "".join(out)


def _cvt4hex(s: bytes, p: int) -> int:
    cp = 0
    for i in range(4):
        digit = _HEX.get(s[p + i])
        if digit is None:
            return -1
        cp = (cp << 4) | digit
    return cp


def _parse_string(token: bytes) -> str:
    body = token[1:-1]
    if 0x5C not in body:  # no backslash: plain (modified) UTF-8
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            pass
        else:
            if not _NONCHAR.search(text):
                return text
    s = token + b"\0" * 16
    quote = s[0]
    p = 1
    out: list[str] = []
    while s[p] != quote:
        if s[p] == 0x5C:
            beg = p
            esc = s[p + 1]
            p += 2
            simple = _SIMPLE_ESCAPES.get(esc)
            if simple is not None:
                out.append(simple)
                continue
            if esc != ord("u"):
                raise _ParseError("invalid escape sequence in string")
            cp = _cvt4hex(s, p)
            p += 4
            if 0xD800 <= cp <= 0xDBFF and s[p] == 0x5C and s[p + 1] == ord("u"):
                cp = 0x10000 + ((cp & 0x3FF) << 10)
                trailing = _cvt4hex(s, p + 2)
                if 0xDC00 <= trailing <= 0xDFFF:
                    cp |= trailing & 0x3FF
                    p += 6
                else:
                    cp = -1
            if not _valid_codepoint(cp):
                raise _ParseError(f"{c_text(s[beg:p])} is not a valid Unicode character")
            out.append(chr(cp))
        else:
            cp, p = _mod_utf8_codepoint(s, p)
            if cp < 0:
                raise _ParseError("invalid UTF-8 sequence in string")
            out.append(chr(cp))
    return "".join(out)


def _parse_integer(token: bytes) -> int | float:
    # int64 when it fits, else uint64, else a double (QNUM_I64 / QNUM_U64 / QNUM_DOUBLE).
    if len(token) <= 20:
        value = int(token)
        if -(1 << 63) <= value < (1 << 64):
            return value
    return float(token)


_KEYWORDS = {b"true": True, b"false": False, b"null": None}
_OBJ_KEY, _OBJ_VALUE, _ARRAY = range(3)


def _parse_tokens(tokens: list[tuple[int, bytes]]) -> Parsed:
    """``json_parser_parse`` without recursion; the first error wins, as in QEMU."""
    try:
        return Parsed(value=_parse_value(tokens))
    except _ParseError as exc:
        return Parsed(error=f"JSON parse error, {str(exc)[:1023]}")


def _parse_value(tokens: list[tuple[int, bytes]]) -> Any:
    n = len(tokens)
    i = 0
    stack: list[list[Any]] = []  # [kind, container, key]
    while True:
        if i >= n:
            raise _ParseError("premature EOI")
        typ, text = tokens[i]
        value: Any
        if typ == JSON_LCURLY:
            i += 1
            if i >= n:
                raise _ParseError("premature EOI")
            if tokens[i][0] != JSON_RCURLY:
                stack.append([_OBJ_KEY, {}, None])
                continue
            i += 1
            value = {}
        elif typ == JSON_LSQUARE:
            i += 1
            if i >= n:
                raise _ParseError("premature EOI")
            if tokens[i][0] != JSON_RSQUARE:
                stack.append([_ARRAY, [], None])
                continue
            i += 1
            value = []
        elif typ == JSON_STRING:
            i += 1
            value = _parse_string(text)
        elif typ == JSON_INTEGER:
            i += 1
            value = _parse_integer(text)
        elif typ == JSON_FLOAT:
            i += 1
            value = float(text)
        elif typ == JSON_KEYWORD:
            i += 1
            if text not in _KEYWORDS:
                raise _ParseError(f"invalid keyword '{c_text(text)}'")
            value = _KEYWORDS[text]
        else:
            raise _ParseError("expecting value")
        # A value is complete: hand it to the enclosing containers.
        while True:
            if not stack:
                return value
            frame = stack[-1]
            kind = frame[0]
            if kind == _OBJ_KEY:
                if not isinstance(value, str):
                    raise _ParseError("key is not a string in object")
                if i >= n:
                    raise _ParseError("premature EOI")
                if tokens[i][0] != JSON_COLON:
                    raise _ParseError("missing : in object pair")
                i += 1
                frame[0], frame[2] = _OBJ_VALUE, value
                break
            if kind == _OBJ_VALUE:
                obj, key = frame[1], frame[2]
                if key in obj:
                    raise _ParseError("duplicate key")
                obj[key] = value
            else:
                frame[1].append(value)
            if i >= n:
                raise _ParseError("premature EOI")
            sep = tokens[i][0]
            i += 1
            if kind == _OBJ_VALUE:
                if sep == JSON_RCURLY:
                    stack.pop()
                    value = obj
                    continue
                if sep != JSON_COMMA:
                    raise _ParseError("expected separator in dict")
                frame[0] = _OBJ_KEY
                break
            if sep == JSON_RSQUARE:
                stack.pop()
                value = frame[1]
                continue
            if sep != JSON_COMMA:
                raise _ParseError("expected separator in list")
            break


