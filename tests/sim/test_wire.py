"""QMP wire details copied from QEMU 7.2: stream splitting, request checks, shapes."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vmctl.sim import qmp
from vmctl.sim.stream import MAX_NESTING, JsonStream


def feed_all(chunks: list[bytes]) -> list[tuple[str, object]]:
    s = JsonStream()
    out = []
    for c in chunks:
        for p in s.feed(c):
            out.append(("error", p.error) if p.error else ("value", p.value))
    return out


def test_two_objects_on_one_line_and_one_object_over_two_lines():
    got = feed_all([b'{"execute":"a"}{"execute":"b"}\n{"execute":', b'"c", "id": 1\n', b"}\n"])
    assert got == [("value", {"execute": "a"}), ("value", {"execute": "b"}),
                   ("value", {"execute": "c", "id": 1})]


def test_garbage_gets_qemus_messages_and_the_stream_goes_on():
    got = feed_all([b"garbage\n", b"\xff\xfe\n", b"}\n", b'"abc"\n12\n', b'{"execute":"x"}\n'])
    assert got == [
        ("error", "JSON parse error, invalid keyword 'garbage'"),
        ("error", "JSON parse error, stray '\ufffd'"),
        ("error", "JSON parse error, stray '\ufffd'"),
        ("error", "JSON parse error, expecting value"),
        ("value", "abc"), ("value", 12), ("value", {"execute": "x"}),
    ]


def test_open_brackets_wait_for_their_closers():
    s = JsonStream()
    assert s.feed(b"[[[[\n") == []
    assert [p.value for p in s.feed(b"]]]]\n")] == [[[[[]]]]]


def test_nesting_limit():
    got = feed_all([b"[" * (MAX_NESTING + 1)])
    assert got == [("error", "JSON nesting depth limit exceeded")]


def test_utf8_split_across_reads_is_kept():
    data = '{"execute": "x", "arguments": {"s": "é"}}\n'.encode()
    cut = data.index(b"\xc3") + 1
    assert feed_all([data[:cut], data[cut:]]) == [
        ("value", {"execute": "x", "arguments": {"s": "é"}})]


_TEXT = st.text(st.characters(blacklist_categories=("Cs",)).filter(
    lambda c: not (0xFDD0 <= ord(c) <= 0xFDEF or ord(c) & 0xFFFE == 0xFFFE)), max_size=5)


@given(st.lists(st.dictionaries(_TEXT, st.integers(-(1 << 63), (1 << 64) - 1) | _TEXT,
                                max_size=3), min_size=1, max_size=5),
       st.integers(min_value=1, max_value=7))
def test_any_chunking_gives_the_same_messages(objs, size):
    data = "".join(json.dumps(o) + ("\n" if i % 2 else "") for i, o in enumerate(objs)).encode()
    chunks = [data[i:i + size] for i in range(0, len(data), size)] + [b"\n"]
    assert [v for _, v in feed_all(chunks)] == objs


@pytest.mark.parametrize("obj,desc", [
    ([1], "QMP input must be a JSON object"),
    ({"execute": 1}, "QMP input member 'execute' must be a string"),
    ({"execute": "x", "arguments": [1]}, "QMP input member 'arguments' must be an object"),
    ({"execute": "x", "extra": 1}, "QMP input member 'extra' is unexpected"),
    ({"id": 1}, "QMP input lacks member 'execute'"),
    ({"execute": "x", "exec-oob": "y"}, "QMP input member 'exec-oob' is unexpected"),
    ({"foo": 2, "execute": 1}, "QMP input member 'execute' must be a string"),  # QDict order
])
def test_request_checks_match_qemu(obj, desc):
    with pytest.raises(qmp.QMPError) as err:
        qmp.check_request(obj)
    assert (err.value.error_class, err.value.desc) == ("GenericError", desc)


def test_request_checks_with_oob_negotiated():
    with pytest.raises(qmp.QMPError) as err:
        qmp.check_request({"execute": "x", "exec-oob": "y"}, allow_oob=True)
    assert err.value.desc == "QMP input member 'execute' clashes with 'exec-oob'"
    req = qmp.check_request({"exec-oob": "x", "id": 3}, allow_oob=True)
    assert (req.command, req.oob, req.id) == ("x", True, 3)


@pytest.mark.parametrize("args,desc", [
    ({"command-line": "x", "x": 1}, "Parameter 'x' is unexpected"),
    ({"x": 1}, "Parameter 'command-line' is missing"),  # declared members come first
    ({"command-line": "x", "a": 1, "b": 2}, "Parameter 'b' is unexpected"),  # GHashTable
    ({"command-line": "x", "cpu-index": 1 << 63},
     "Invalid parameter type for 'cpu-index', expected: integer"),  # beyond int64
    ({}, "Parameter 'command-line' is missing"),
    ({"command-line": 5}, "Invalid parameter type for 'command-line', expected: string"),
    ({"command-line": "x", "cpu-index": True},
     "Invalid parameter type for 'cpu-index', expected: integer"),
])
def test_argument_checks_match_qemu(args, desc):
    spec = {"command-line": (str, True), "cpu-index": (int, False)}
    with pytest.raises(qmp.QMPError) as err:
        qmp.check_arguments(args, spec)
    assert err.value.desc == desc


def test_reply_and_event_shapes_keep_qemus_key_order():
    req = qmp.Request("query-status", {}, "a", True)
    assert qmp.encode(qmp.success({}, req)) == b'{"return": {}, "id": "a"}\r\n'
    assert qmp.encode(qmp.failure("GenericError", "x", 5, True)) == \
        b'{"id": 5, "error": {"class": "GenericError", "desc": "x"}}\r\n'
    ev = qmp.event("RESET", 1700000000.9999996, {"guest": False})
    assert ev == {"timestamp": {"seconds": 1700000001, "microseconds": 0}, "event": "RESET",
                  "data": {"guest": False}}
    assert list(qmp.greeting("p")["QMP"]["version"]["qemu"]) == ["micro", "minor", "major"]


def test_unknown_error_class_is_a_programming_error():
    with pytest.raises(ValueError, match="GenericError"):
        qmp.QMPError("Oops", "x")
