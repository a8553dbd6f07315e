"""A QMP byte stream cut into JSON messages exactly as QEMU 7.2 does it.

QMP is not line-based.  QEMU runs every byte through a lexer (``qobject/json-lexer.c``),
hands the tokens to a streamer that counts braces and brackets
(``qobject/json-streamer.c``) and parses a message once the counts balance or go
negative (``qobject/json-parser.c``).  This module ports the three, byte for byte:

* the lexer's state table, QEMU's extensions included: ``'single quoted'`` strings, ``\\'``
  as an escape, ``[a-z]+`` keywords left to the parser to reject;
* error recovery: a bad byte ends the token with ``JSON parse error, stray '…'`` (the
  token so far, bad byte included, cut at a NUL), then input is skipped up to the next
  structural character, ASCII control character other than tab, or ``\\xfe``/``\\xff``;
* the streamer's limits: nesting deeper than :data:`MAX_NESTING`, more than
  :data:`MAX_TOKEN_COUNT` tokens or :data:`MAX_TOKEN_SIZE` bytes in one message each end
  the message with an error, and parsing resumes with the next token;
* the parser's checks and first-error messages: duplicate keys, invalid (modified) UTF-8,
  ``\\uXXXX`` surrogates and noncharacters, integers beyond 64 bits as doubles.

Nothing recurses: the parser keeps its own stack, so a message nested 1024 levels deep
(QEMU's limit) costs no Python stack.  A message that arrives whole in one read and is
plain ASCII JSON goes through :func:`json.loads` first (the fast path for ordinary
clients); anything the C decoder might judge differently from QEMU takes the exact path.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

#: Largest message (sum of its tokens' bytes), as QEMU's ``MAX_TOKEN_SIZE`` (64 MiB).
MAX_TOKEN_SIZE = 64 << 20
#: Most tokens in one message (QEMU's ``MAX_TOKEN_COUNT``).
MAX_TOKEN_COUNT = 2 << 20
#: Deepest nesting accepted (QEMU's ``MAX_NESTING``: open braces plus open brackets).
MAX_NESTING = 1 << 10
#: Kept for callers of the old name: the per-message byte limit.
MAX_MESSAGE = MAX_TOKEN_SIZE


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


# -- the fast path ------------------------------------------------------------------------
def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise ValueError("duplicate key")
    return obj


def _reject_constant(name: str) -> Any:
    raise ValueError(name)


_DECODER = json.JSONDecoder(object_pairs_hook=_pairs, parse_constant=_reject_constant)
_LONG_NUMBER = re.compile(rb"[0-9]{19}")
_FAST_MAX = 1 << 20
_ENDS_A_MESSAGE = frozenset((b"}", b"]", b'"', b"\n", b" ", b"\t", b"\r"))


def _fast(data: bytes) -> Any:
    """``data`` decoded by the C decoder when that provably agrees with QEMU, else raise.

    Only ASCII without ``\\u`` escapes (no surrogates, noncharacters or NULs to judge),
    no number of 19 digits or more (int64/uint64/double), nothing nested deeper than the
    brackets it contains (so never past the limit), duplicate keys refused by the hook.
    """
    if (len(data) > _FAST_MAX or not data.isascii() or b"\\u" in data
            or _LONG_NUMBER.search(data) or data.count(b"[") + data.count(b"{") > MAX_NESTING):
        raise ValueError("not for the fast path")
    return _DECODER.decode(data.decode("ascii"))


class JsonStream:
    """Incremental QMP input: ``feed(bytes)`` returns the messages completed so far."""

    def __init__(self) -> None:
        self._state = IN_START
        self._tok = bytearray()
        self._tokens: list[tuple[int, bytes]] = []
        self._brace = 0
        self._bracket = 0
        self._size = 0
        self._out: list[Parsed] = []

    def feed(self, data: bytes) -> list[Parsed]:
        data = bytes(data)
        if (data[-1:] in _ENDS_A_MESSAGE and self._state == IN_START and not self._tokens
                and not self._tok):
            # Fast path: one whole ordinary message per read, the common case (ending in
            # a byte after which QEMU has the message without waiting for more input).
            try:
                value = _fast(data)
            except (ValueError, RecursionError):
                pass
            else:
                return [Parsed(value=value)]
        self._out = out = []
        self._lex(data)
        self._out = []
        return out

    # -- lexer -------------------------------------------------------------------------
    def _lex(self, data: bytes) -> None:
        pos, n = 0, len(data)
        match = _TOKEN_RE.match
        token = self._token
        while pos < n:
            state = self._state
            if state == IN_START:
                m = match(data, pos)
                if m is not None:
                    end = m.end()
                    group = m.lastindex
                    if group == 1:
                        pos = end
                        continue
                    if end - pos <= MAX_TOKEN_SIZE:
                        token(_PUNCT[data[pos]] if group == 2 else _GROUP_TYPES[group],
                              data[pos:end])
                        pos = end
                        continue
            elif state == IN_RECOVERY:
                m = _RECOVERY_RUN.match(data, pos)
                if m is not None:
                    pos = m.end()
                    continue
            else:
                run = _RUNS.get(state)
                m = run.match(data, pos) if run is not None else None
                if m is not None:
                    length = m.end() - pos
                    room = MAX_TOKEN_SIZE + 1 - len(self._tok)
                    if length >= room:
                        self._tok += data[pos:pos + room]
                        pos += room
                        self._oversize()
                    else:
                        self._tok += data[pos:pos + length]
                        pos += length
                    continue
            self._step(data[pos])
            pos += 1

    def _step(self, ch: int) -> None:
        """``json_lexer_feed_char`` for one byte."""
        tok = self._tok
        while True:
            nxt = _TABLE[self._state][ch]
            consumed = not nxt & _LOOKAHEAD
            nxt &= 0xFF
            if consumed:
                tok.append(ch)
            if nxt >= _JSON_MIN:
                text = bytes(tok)
                tok.clear()
                self._state = IN_START
                self._token(nxt, text)
            elif nxt == IN_START:
                tok.clear()
                self._state = IN_START
            elif nxt == JSON_ERROR:
                text = bytes(tok)
                tok.clear()
                self._state = IN_RECOVERY
                self._error(f"JSON parse error, stray '{c_text(text)}'")
            elif nxt == IN_RECOVERY:
                tok.clear()
                self._state = IN_RECOVERY
            else:
                self._state = nxt
            if consumed:
                break
        if len(tok) > MAX_TOKEN_SIZE:
            self._oversize()

    def _oversize(self) -> None:
        # The lexer hands over a token that grew past MAX_TOKEN_SIZE (its type is the
        # lexer state); the streamer's size check then refuses it.  Lexing restarts.
        self._tok.clear()
        self._state = IN_START
        self._error("JSON token size limit exceeded")

    # -- streamer (json_message_process_token) ----------------------------------------
    def _token(self, typ: int, text: bytes) -> None:
        if typ <= JSON_RSQUARE:
            if typ == JSON_LCURLY:
                self._brace += 1
            elif typ == JSON_RCURLY:
                self._brace -= 1
            elif typ == JSON_LSQUARE:
                self._bracket += 1
            else:
                self._bracket -= 1
        size = self._size + len(text)
        tokens = self._tokens
        if size + 1 > MAX_TOKEN_SIZE:
            self._error("JSON token size limit exceeded")
        elif len(tokens) >= MAX_TOKEN_COUNT:
            self._error("JSON token count limit exceeded")
        else:
            brace, bracket = self._brace, self._bracket
            if brace + bracket > MAX_NESTING:
                self._error("JSON nesting depth limit exceeded")
                return
            tokens.append((typ, text))
            self._size = size
            if (brace > 0 or bracket > 0) and brace >= 0 and bracket >= 0:
                return
            self._reset()
            self._out.append(_parse_tokens(tokens))

    def _error(self, message: str) -> None:
        self._reset()
        self._out.append(Parsed(error=message))

    def _reset(self) -> None:
        self._tokens = []
        self._brace = self._bracket = 0
        self._size = 0
