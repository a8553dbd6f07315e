"""The QMP stream parser on its own: limits, no recursion, fast path == exact path.

What real QEMU 7.2 answers is checked case by case in test_qemu_wire_diff.py; here are
the properties that need no QEMU, and the two limits too slow to reach through QEMU's
one-byte-per-read QMP socket (their expected answers were measured once on QEMU 7.2).
"""

from __future__ import annotations

import inspect
import json
import sys
from contextlib import contextmanager

from hypothesis import given, settings
from hypothesis import strategies as st

from vmctl.sim import qmp, stream
from vmctl.sim.session import QMPSession
from vmctl.sim.stream import MAX_NESTING, JsonStream

from .conftest import simulate


def results(parsed: list[stream.Parsed]) -> list[tuple[str, str]]:
    """Comparable results: errors by text, values by type-exact JSON-ish repr."""
    out = []
    for p in parsed:
        out.append(("error", p.error) if p.error is not None else ("value", _typed(p.value)))
    return out


def _typed(value: object) -> str:
    return repr(_tag(value))


def _tag(value: object) -> object:
    if isinstance(value, dict):
        return ("obj", [(k, _tag(v)) for k, v in value.items()])
    if isinstance(value, list):
        return ("arr", [_tag(v) for v in value])
    return (type(value).__name__, value)


def feed_whole(data: bytes) -> list[stream.Parsed]:
    return JsonStream().feed(data)


def feed_bytewise(data: bytes) -> list[stream.Parsed]:
    s = JsonStream()
    out: list[stream.Parsed] = []
    for i in range(len(data)):
        out += s.feed(data[i:i + 1])
    return out


@contextmanager
def shallow_stack(headroom: int = 60):
    """Python's recursion limit just above the current depth: any recursion would fail."""
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(len(inspect.stack(0)) + headroom)
    try:
        yield
    finally:
        sys.setrecursionlimit(old)


def test_nesting_up_to_qemus_limit_never_recurses():
    deep_array = b"[" * MAX_NESTING + b"]" * MAX_NESTING
    deep_object = b'{"a":' * MAX_NESTING + b"1" + b"}" * MAX_NESTING
    with shallow_stack():
        got_array = feed_whole(deep_array + b"\n")
        got_object = feed_bytewise(deep_object)
        over = feed_whole(b"[" * (MAX_NESTING + 1) + b"]]\n")
    assert len(got_array) == 1 and got_array[0].error is None
    value = got_object[0].value
    for _ in range(MAX_NESTING - 1):
        value = value["a"]
    assert value == {"a": 1}
    assert [p.error for p in over] == ["JSON nesting depth limit exceeded",
                                       "JSON parse error, expecting value",
                                       "JSON parse error, expecting value"]


def test_a_deep_id_is_echoed_without_recursion():
    sim = simulate(paused=True)
    out: list[bytes] = []
    session = QMPSession(sim.dispatcher.execute, out.append, "pkg")
    session.receive(b'{"execute": "qmp_capabilities"}\n')
    out.clear()
    deep_id = b"[" * 1022 + b'{"b": 1, "a": 2.5}' + b"]" * 1022  # 1024 levels in all
    with shallow_stack():
        session.receive(b'{"execute": "query-status", "id": ' + deep_id + b"}")
        session.receive(b'{"execute": "nope", "id": ' + deep_id + b"}")
    assert out[0].endswith(b', "id": ' + b"[" * 1022 + b'{"a": 2.5, "b": 1}' + b"]" * 1022
                           + b"}\r\n")
    assert out[1].startswith(b'{"id": ' + b"[" * 1022)


def test_token_count_limit_as_measured_on_qemu(monkeypatch):
    # QEMU 7.2, b"[" + b"1," * 2**20 + b"1]": "JSON token count limit exceeded" at token
    # 2**21 + 1 (a comma), then the rest is read afresh: "1" is a message of its own, "]"
    # expects a value.  Same input scaled down to a smaller limit (the real one takes 2 s).
    assert stream.MAX_TOKEN_COUNT == 2 << 20
    monkeypatch.setattr(stream, "MAX_TOKEN_COUNT", 2 << 10)
    data = b"[" + b"1," * (1 << 10) + b"1]"
    assert [p.error or p.value for p in feed_bytewise(data)] == [
        "JSON token count limit exceeded", 1, "JSON parse error, expecting value"]
    just_under = b"[" + b"1," * 1022 + b"1]"  # 2047 tokens
    assert [p.error or p.value for p in feed_bytewise(just_under)] == [[1] * 1023]


def test_token_size_limit_as_measured_on_qemu():
    # One string token past 64 MiB: the lexer gives up at 64 MiB + 1 bytes and starts
    # afresh, so the string's tail is a keyword and its closing quote opens a string that
    # the newline breaks.  (Measured on QEMU 7.2 with this very input.)
    data = b'"' + b"a" * (stream.MAX_TOKEN_SIZE + 5) + b'"\n'
    assert [p.error for p in feed_whole(data)] == [
        "JSON token size limit exceeded", "JSON parse error, invalid keyword 'aaaaa'",
        "JSON parse error, stray '\"\n'"]


def test_size_limit_counts_every_token_of_a_message(monkeypatch):
    monkeypatch.setattr(stream, "MAX_TOKEN_SIZE", 39)
    got = feed_bytewise(b'["0123456789", "0123456789", "0123456789"]\n')
    # tokens so far: [ + 12 + , + 12 + , = 27 bytes; the third string makes 27 + 12 + 1 > 39
    assert [p.error or p.value for p in got] == [
        "JSON token size limit exceeded", "JSON parse error, expecting value"]


def test_keyword_message_is_cut_like_qemus_1024_byte_buffer():
    got = feed_whole(b"x" * 5000 + b"\n")
    assert got[0].error == "JSON parse error, " + ("invalid keyword '" + "x" * 5000)[:1023]


def test_strings_decode_as_qemu_does():
    cases = {
        b'"\\u0000"': "\x00", b'"\xc0\x80"': "\x00", b'"\\uD83D\\uDE00"': "\U0001F600",
        b"'it\\'s \"q\"'": "it's \"q\"", b'"\\/"': "/", b'"\x7f"': "\x7f",
    }
    for raw, want in cases.items():
        assert feed_whole(raw + b"\n") == [stream.Parsed(value=want)], raw
    errors = {
        b'"\\uD800x"': "\\uD800 is not a valid Unicode character",
        b'"\\u12"': '\\u12" is not a valid Unicode character',
        b'"\xed\xa0\x80"': "invalid UTF-8 sequence in string",
        b'"\xef\xbf\xbe"': "invalid UTF-8 sequence in string",
        b'"\\a"': "invalid escape sequence in string",
    }
    for raw, want in errors.items():
        assert feed_whole(raw + b"\n") == [stream.Parsed(error="JSON parse error, " + want)], raw


def test_integers_beyond_64_bits_become_doubles():
    got = [p.value for p in feed_whole(b"[9223372036854775807, 18446744073709551615, "
                                       b"18446744073709551616, -9223372036854775809, -0, "
                                       b"1" + b"0" * 400 + b"]\n")]
    assert got == [[2**63 - 1, 2**64 - 1, 1.8446744073709552e19, -9.223372036854776e18, 0,
                    1e400]]
    assert [type(v) for v in got[0]] == [int, int, float, float, int, float]


def test_reply_encoding_is_qemus():
    assert qmp.encode({"return": {}, "id": [0.1, 1e2, -0.0, 1e400, "é\x7f\U0001F600"]}) == (
        b'{"return": {}, "id": [0.10000000000000001, 100, -0, inf, '
        b'"\\u00E9\\u007F\\uD83D\\uDE00"]}\r\n')
    assert qmp.encode({"return": "a\\u00e9"}) == b'{"return": "a\\\\u00e9"}\r\n'


# -- properties ------------------------------------------------------------------------
_KEYS = st.sampled_from(["a", "b", "execute", "id", "\\u00e9", "\\uD800", "x\\u0000"])
_SCALARS = st.one_of(
    st.sampled_from([b"true", b"false", b"null", b"nul", b"0", b"-0", b"1.5e3", b"1E400",
                     b"9223372036854775808", b"18446744073709551616", b"-9223372036854775809",
                     b"01", b"1.", b'"\\q"', b'"\\uDBFF\\uDFFF"', b"'sq'", b'"\\uFFFF"',
                     b'"a\\"b"']),
    st.integers(-(1 << 70), 1 << 70).map(lambda i: str(i).encode()),
    st.text(max_size=4).map(lambda t: json.dumps(t).encode()),
)


def _json(depth: int = 3) -> st.SearchStrategy[bytes]:
    if depth == 0:
        return _SCALARS
    inner = _json(depth - 1)
    obj = st.lists(st.tuples(_KEYS, inner), max_size=3).map(
        lambda kv: b"{" + b", ".join(b'"' + k.encode() + b'": ' + v for k, v in kv) + b"}")
    arr = st.lists(inner, max_size=3).map(lambda vs: b"[" + b",".join(vs) + b"]")
    return st.one_of(_SCALARS, obj, arr)


@settings(max_examples=300, deadline=None)
@given(_json(), st.sampled_from([b"\n", b"", b" ", b"\r\n"]))
def test_fast_path_agrees_with_the_exact_path(message, end):
    data = message + end
    assert results(feed_whole(data)) == results(feed_bytewise(data))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.binary(max_size=12), _json(2)), max_size=6),
       st.lists(st.integers(1, 40), min_size=1, max_size=8))
def test_any_bytes_any_chunking_same_answers_never_an_exception(pieces, cuts):
    data = b"".join(pieces) + b"\n"
    s = JsonStream()
    split: list[stream.Parsed] = []
    pos = 0
    for cut in cuts * (len(data) // sum(cuts) + 1):
        split += s.feed(data[pos:pos + cut])
        pos += cut
        if pos >= len(data):
            break
    assert results(split) == results(feed_whole(data))
