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
from typing import Any

from vmctl.sim.qjson import (_GROUP_TYPES, _JSON_MIN, _LOOKAHEAD, _PUNCT, _RECOVERY_RUN, _RUNS,
                             _TABLE, _TOKEN_RE, IN_RECOVERY, IN_START, JSON_ERROR, JSON_LCURLY,
                             JSON_LSQUARE, JSON_RCURLY, JSON_RSQUARE, MAX_NESTING, Parsed,
                             _parse_tokens, c_text)

#: Largest message (sum of its tokens' bytes), as QEMU's ``MAX_TOKEN_SIZE`` (64 MiB).
MAX_TOKEN_SIZE = 64 << 20
#: Most tokens in one message (QEMU's ``MAX_TOKEN_COUNT``).
MAX_TOKEN_COUNT = 2 << 20
#: Kept for callers of the old name: the per-message byte limit.
MAX_MESSAGE = MAX_TOKEN_SIZE


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
