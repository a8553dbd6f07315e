"""One QMP connection's protocol state machine, bytes in and bytes out."""

from __future__ import annotations

import json

from vmctl.sim.session import QMPSession, SessionState

from .conftest import simulate


def session():
    sim = simulate(paused=True)
    out: list[bytes] = []
    s = QMPSession(sim.dispatcher.execute, out.append, "pkg")
    return s, out, sim


def replies(out: list[bytes]) -> list[dict]:
    return [json.loads(line) for line in b"".join(out).splitlines() if line.strip()]


def test_greeting_first_then_negotiation_is_required():
    s, out, _ = session()
    assert replies(out)[0]["QMP"]["capabilities"] == ["oob"]
    out.clear()
    s.receive(b'{"execute": "query-status", "id": 1}\n{"execute": "qmp_capabilities"}\n'
              b'{"execute": "qmp_capabilities", "id": "again"}\n')
    assert replies(out) == [
        {"id": 1, "error": {"class": "CommandNotFound",
                            "desc": "Expecting capabilities negotiation with 'qmp_capabilities'"}},
        {"return": {}},
        {"id": "again", "error": {"class": "CommandNotFound",
                                  "desc": "Capabilities negotiation is already complete, "
                                          "command ignored"}}]
    assert s.state is SessionState.COMMAND


def test_ids_of_any_json_type_are_echoed():
    s, out, _ = session()
    s.receive(b'{"execute": "qmp_capabilities"}\n')
    out.clear()
    s.receive(b'{"execute": "query-name", "id": {"x": [1]}}\n{"execute": "nope", "id": 7}\n')
    assert replies(out) == [
        {"return": {"name": "t1"}, "id": {"x": [1]}},
        {"id": 7, "error": {"class": "CommandNotFound",
                            "desc": "The command nope has not been found"}}]


def test_events_only_after_negotiation():
    s, out, _ = session()
    s.deliver_event(b"EVENT\r\n")
    s.receive(b'{"execute": "qmp_capabilities"}\n')
    s.deliver_event(b"EVENT\r\n")
    assert b"".join(out).count(b"EVENT") == 1


def test_oob_needs_the_capability_and_no_command_supports_it():
    s, out, _ = session()
    s.receive(b'{"execute": "qmp_capabilities", "arguments": {"enable": ["foo"]}}\n')
    assert replies(out)[-1]["error"]["desc"] == "Parameter 'null' does not accept value 'foo'"
    s.receive(b'{"execute": "qmp_capabilities"}\n{"exec-oob": "query-status", "id": 3}\n')
    assert replies(out)[-1] == {"id": 3, "error": {
        "class": "GenericError", "desc": "QMP input member 'exec-oob' is unexpected"}}


def test_oob_enabled_then_refused_per_command():
    s, out, _ = session()
    s.receive(b'{"execute": "qmp_capabilities", "arguments": {"enable": ["oob"]}}\n'
              b'{"exec-oob": "query-status", "id": 3}\n')
    assert replies(out)[-1]["error"]["desc"] == "The command query-status does not support OOB"


def test_closed_session_writes_nothing():
    s, out, _ = session()
    s.close()
    out.clear()
    s.receive(b'{"execute": "qmp_capabilities"}\n')
    assert out == []


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@settings(max_examples=150, deadline=None)
@given(st.lists(st.binary(max_size=40) | st.sampled_from(
    [b'{"execute": "qmp_capabilities"}\n', b'{"execute": "query-status", "id": 1}\n',
     b"}", b"{", b"[", b'"', b"\n", b"\xff", b'{"execute": "stop"}', b"null\n"]),
    max_size=30))
def test_any_byte_stream_gets_well_formed_answers_and_never_breaks_the_session(chunks):
    s, out, _ = session()
    for chunk in chunks:
        s.receive(chunk)
    s.receive(b'\n]]]]]]}}}}}}\n{"execute": "qmp_capabilities", "id": "end"}\n')
    lines = b"".join(out).split(b"\r\n")
    assert lines[-1] == b""
    for line in lines[:-1]:
        msg = json.loads(line)
        assert set(msg) <= {"QMP", "return", "error", "id", "event", "timestamp", "data"}
        if "error" in msg:
            assert set(msg["error"]) == {"class", "desc"}
    last = json.loads(lines[-2])
    assert last.get("id") == "end" or "error" in last or "return" in last
