"""Differential test: the same QMP byte streams to the simulator and to real QEMU 7.2.

One ``qemu-system-ppc64 -M pseries -S`` and one simulator (same name, two vCPUs) serve the
whole module.  Each case opens a fresh connection to each, optionally negotiates, writes
its chunks, then a sentinel command; everything answered before the sentinel's reply (and
that reply) must be the same bytes from both, once what legitimately differs is
normalised: event timestamps, thread ids, the version and package.

Only wire- and parser-level behaviour and commands the simulator implements are compared.
Two of QEMU's limits are not exercised here because QEMU reads its QMP socket one byte
per ``read()`` (about 5 µs a byte): the 2 Mi-token count limit (10 s) and the 64 MiB size
limit (minutes); tests/sim/test_stream.py covers them with QEMU's measured answers.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

import vmctl

from .conftest import make_machine

pytestmark = pytest.mark.qemu

SENTINEL = b'{"execute": "x-vmctl-sentinel", "id": "sentinel"}'
NEGOTIATE = b'{"execute": "qmp_capabilities"}'
NEGOTIATE_OOB = b'{"execute": "qmp_capabilities", "arguments": {"enable": ["oob"]}}'
HMP = b'{"execute": "human-monitor-command", "arguments": {"command-line": "%s"%s}}'


@dataclass
class Case:
    name: str
    chunks: list[bytes]
    negotiate: bytes | None = NEGOTIATE
    reset: bool = False            # leaves a structure open: end it with a \xff byte
    pause: float = 0.0             # seconds between chunks (separate reads)


def hmp(line: str, cpu: str = "") -> bytes:
    return HMP % (line.encode(), (b', "cpu-index": ' + cpu.encode()) if cpu else b"")


def qs_id(raw: bytes) -> bytes:
    return b'{"execute": "query-status", "id": ' + raw + b"}"


def c(name: str, *chunks: bytes, **kw) -> Case:
    return Case(name, list(chunks), **kw)


DEEP = 990
CASES = [
    # -- commands the simulator implements ------------------------------------------------
    c("query-status", b'{"execute": "query-status"}'),
    c("query-status-id", b'{"execute": "query-status", "id": "a"}'),
    c("two-queries-one-write", b'{"execute":"query-name"}{"execute":"query-kvm","id":2}'),
    c("query-version", b'{"execute": "query-version"}'),
    c("query-cpus-fast", b'{"execute": "query-cpus-fast"}'),
    c("stop-in-prelaunch", b'{"execute": "stop"}\n{"execute": "query-status"}'),
    c("unknown-command", b'{"execute": "no-such-command", "id": 7}'),
    c("arguments-empty", b'{"execute": "query-status", "arguments": {}}'),
    c("hmp-info-status", hmp("info status")),
    c("hmp-info-name-kvm", hmp("info name"), hmp("info kvm")),
    c("hmp-info-cpus", hmp("info cpus"), hmp("info cpus", "1")),
    c("hmp-unknown", hmp("foo bar"), hmp("info foo"), hmp(""), hmp("   ")),
    # -- arguments ------------------------------------------------------------------------
    c("hmp-cpu-index-out-of-range", hmp("info status", "2"), hmp("info status", "5")),
    c("hmp-cpu-index-negative", hmp("info status", "-1")),
    c("hmp-cpu-index-wraps-to-int", hmp("info status", "4294967296"),
      hmp("info status", "-4294967295"), hmp("info status", "9223372036854775807")),
    c("hmp-cpu-index-wrong-type", hmp("info status", "18446744073709551615"),
      hmp("info status", "1.0"), hmp("info status", "true"), hmp("info status", '"0"')),
    c("hmp-missing-argument", b'{"execute": "human-monitor-command", "arguments": {"x": 1}}'),
    c("hmp-wrong-type-before-unexpected",
      b'{"execute": "human-monitor-command", "arguments": {"command-line": 5, "x": 1}}'),
    c("hmp-unexpected-after-members", b'{"execute": "human-monitor-command", "arguments": '
      b'{"x": 1, "command-line": "info status", "y": 2, "cpu-index": 0, "z": 3}}'),
    c("unexpected-argument-order", b'{"execute": "query-status", "arguments": {"a": 1, "b": 2}}',
      b'{"execute": "query-status", "arguments": {"zz": 1, "foo": 2, "bar": 3}}'),
    c("unexpected-argument-many", b'{"execute": "query-status", "arguments": {"alpha": 1, '
      b'"beta": 2, "gamma": 3, "delta": 4, "epsilon": 5, "zeta": 6, "eta": 7, "theta": 8, '
      b'"iota": 9, "kappa": 10, "lambda": 11, "mu": 12, "nu": 13, "xi": 14}}'),
    # -- request shape ----------------------------------------------------------------------
    c("execute-not-string", b'{"execute": 1}', b'{"execute": null, "id": 1}',
      b'{"execute": {"a": 1}}'),
    c("member-order", b'{"execute": 1, "foo": 2}', b'{"foo": 2, "execute": 1}',
      b'{"execute": "query-status", "arguments": 1, "foo": 2}', b'{"arguments": [], "execute": 1}'),
    c("arguments-not-object", b'{"execute": "query-status", "arguments": [1]}',
      b'{"execute": "query-status", "arguments": null, "id": "n"}'),
    c("lacks-execute", b'{"id": 1}', b"{}", b'{"arguments": {}}'),
    c("unexpected-member", b'{"id": 1, "foo": 2}', b'{"execute": "query-status", "\\u0000": 1}'),
    c("exec-oob-not-negotiated", b'{"exec-oob": "query-status"}',
      b'{"execute": "query-status", "exec-oob": "query-status", "id": 4}'),
    # QEMU answers out-of-band requests at once and queues in-band ones (a request with
    # both members is in-band): only in-band requests after out-of-band ones keep order.
    c("exec-oob-negotiated", b'{"exec-oob": "query-status", "id": 3}',
      b'{"exec-oob": "no-such-command"}', b'{"exec-oob": "query-status", "arguments": {"x": 1}}',
      b'{"exec-oob": 5}', b'{"exec-oob": "qmp_capabilities"}',
      b'{"execute": "query-status", "exec-oob": "stop"}', negotiate=NEGOTIATE_OOB),
    c("command-name-with-nul", b'{"execute": "query-status\\u0000"}'),
    # -- ids ------------------------------------------------------------------------------
    c("id-types", qs_id(b"1"), qs_id(b"-5"), qs_id(b'"s"'), qs_id(b"null"), qs_id(b"true"),
      qs_id(b"[]"), qs_id(b'{"a": [1, 2.5, "x", true, null, {}], "b": []}')),
    c("id-floats", qs_id(b"0.1"), qs_id(b"1e2"), qs_id(b"1.5E+300"), qs_id(b"-0.0"),
      qs_id(b"1e-7"), qs_id(b"1e400"), qs_id(b"-1e400")),
    c("id-integer-limits", qs_id(b"9223372036854775807"), qs_id(b"9223372036854775808"),
      qs_id(b"-9223372036854775808"), qs_id(b"-9223372036854775809"),
      qs_id(b"18446744073709551615"), qs_id(b"18446744073709551616"), qs_id(b"-0"),
      qs_id(b"123456789012345678901234567890")),
    c("id-unicode", qs_id(b'"\\u00e9\\u007f\x7f/\\/"'), qs_id(b'"\xc3\xa9\xf0\x9f\x98\x80"'),
      qs_id(b'"\\uD83D\\uDE00"'), qs_id(b'"\\u0000"'), qs_id(b'"\xc0\x80"')),
    c("id-nested-1023", qs_id(b"[" * 1023 + b"]" * 1023)),
    c("id-error-echo", b'{"execute": "no-such", "id": {"deep": [[["x"]]], "f": 2.5}}'),
    # -- negotiation ----------------------------------------------------------------------
    c("before-negotiation", b'{"execute": "query-status"}',
      b'{"execute": "no-such", "id": [1, {"a": null}]}', b'{"execute": "query-status", "foo": 1}',
      b'{"exec-oob": "qmp_capabilities"}', b"garbage", negotiate=None),
    c("capabilities-bad-enable", b'{"execute": "qmp_capabilities", "arguments": {"enable": ["foo"]}}',
      b'{"execute": "qmp_capabilities", "arguments": {"enable": [1]}}',
      b'{"execute": "qmp_capabilities", "arguments": {"enable": "oob", "x": 1}}',
      b'{"execute": "qmp_capabilities", "arguments": {"x": 1, "enable": [1]}}',
      b'{"execute": "qmp_capabilities", "arguments": {"enable": null}}',
      b'{"execute": "qmp_capabilities", "arguments": {"enable": ["oob", "foo"]}}',
      b'{"execute": "qmp_capabilities", "arguments": {"x": 1}}',
      b'{"execute": "qmp_capabilities", "id": "ok"}', b'{"execute": "query-status"}',
      negotiate=None),
    c("capabilities-twice", b'{"execute": "qmp_capabilities", "id": 2}',
      b'{"execute": "qmp_capabilities", "arguments": {"enable": ["oob"]}}',
      b'{"execute": "qmp_capabilities", "arguments": {"x": 1}}',
      b'{"execute": "qmp_capabilities", "arguments": {"enable": ["bad"]}}'),
    # -- lexer: garbage, stray bytes, recovery ------------------------------------------
    c("garbage-keyword", b"garbage"),
    c("stray-bytes", b"\xff\xfe"),
    c("lone-closers-and-separators", b"}", b"]", b":", b","),
    c("recovery-skips-to-newline", b"True 1 {\"execute\": \"query-status\"}\n"),
    c("recovery-stops-at-structural", b'@@@{"execute": "query-status"}'),
    c("recovery-skips-tab-not-cr", b"@\t1\r2"),
    c("numbers", b"0e5 01 1.e 1.5.3 -x - 00 1E2 -0 0.5e-3"),
    c("interpolation-is-stray", b"%d"),
    c("nul-byte", b"\x00"),
    c("non-ascii-outside-string", b"\xc3\xa9"),
    c("long-keyword", b"abcdefghij" * 200),
    # -- parser ---------------------------------------------------------------------------
    c("object-syntax", b'{"a" 1}', b"{1:2}", b'{{"a":1}:2}', b'{"a":1,}', b'{,}',
      b'{"a":1]', b"{\"a\":}"),
    c("array-syntax", b"[1,]", b"[1 2]", b"[}", b"[,1]"),
    c("non-object-top-level", b'[1,2,3]{"id":"x"}["a"]"s"1.5 true null false'),
    c("duplicate-key", b'{"execute": "query-status", "execute": "query-name"}'),
    c("duplicate-key-nested", b'{"execute": "query-status", "arguments": {"a": 1, "a": 2}}'),
    c("duplicate-key-after-error-wins", b'{"a": 1, "a": 2, "b" 3}'),
    # -- nesting --------------------------------------------------------------------------
    c("nesting-990", b"[" * DEEP + b"]" * DEEP),
    c("nesting-990-objects", b'{"a":' * DEEP + b"1" + b"}" * DEEP),
    c("nesting-1024", b"[" * 1024 + b"]" * 1024),
    c("nesting-1025", b"[" * 1025 + b"]" * 3),
    c("nesting-1025-objects", b'{"a":' * 1025),
    c("nesting-mixed", b"[{" * 513 + b"}]" * 2),
    c("nesting-990-as-arguments", b'{"execute": "query-status", "arguments": {"x": '
      + b"[" * DEEP + b"]" * DEEP + b"}}"),
    # -- strings --------------------------------------------------------------------------
    c("invalid-utf8", qs_id(b'"\xc3\x28"'), qs_id(b'"\xc0\xaf"'), qs_id(b'"\xed\xa0\x80"'),
      qs_id(b'"\xef\xbf\xbf"'), qs_id(b'"\xf4\x90\x80\x80"'), qs_id(b'"\xf8\x88\x80\x80\x80"'),
      qs_id(b'"\x80"'), qs_id(b'"\xef\xb7\x90"')),
    c("invalid-utf8-in-arguments",
      b'{"execute": "query-status", "arguments": {"a": "\xc3\x28"}}'),
    c("raw-newline-in-string", b'{"execute": "query-status\n"}'),
    c("raw-controls-in-string", qs_id(b'"a\tb"'), qs_id(b'"a\x00b"'), qs_id(b'"a\x1fb"'),
      qs_id(b'"a\x7fb"')),
    c("escapes-valid", qs_id(b'"\\"\\\\\\/\\b\\f\\n\\r\\t\\\'"')),
    c("escapes-invalid", qs_id(b'"\\q"'), qs_id(b'"\\u00"'), qs_id(b'"\\u12G4"'),
      qs_id(b'"\\x41"')),
    c("escapes-surrogates", qs_id(b'"\\uD800"'), qs_id(b'"\\uDC00"'), qs_id(b'"\\uD800\\u0041"'),
      qs_id(b'"\\uDBFF\\uDFFF"'), qs_id(b'"a\\uD800\\u"')),
    c("escapes-noncharacters", qs_id(b'"\\uFFFF"'), qs_id(b'"\\uFDD0"'), qs_id(b'"\\ufffe"')),
    c("first-error-in-string-wins", qs_id(b'"\\q\xc3\x28"'), qs_id(b'"\xc3\x28\\q"')),
    c("single-quotes", b"{'execute':'query-status'}", qs_id(b"'a\"b'"), qs_id(b"'it\\'s'")),
    c("unterminated-string", b'{"execute": "query-status", "id": "' + b"x" * 300, reset=True),
    c("unterminated-single-quote", b"{'execute", reset=True),
    c("long-string-id", qs_id(b'"' + b"y" * 20000 + b'"')),
    # -- whitespace and framing -------------------------------------------------------------
    c("whitespace-variants", b'\t\r\n {  "execute" :\t"query-status" ,"id":1 } \r\n',
      b'\r\n\r\n{"execute":"query-status","id":2}\r\n'),
    c("several-messages-one-write", b'{"execute":"query-status","id":1} garbage '
      b'{"execute":"query-name","id":2}\n[]{"execute":"query-kvm","id":3}'),
    c("one-message-many-writes", *[bytes([b]) for b in
                                   b'{"execute": "query-status", "id": "split"}'], pause=0.001),
    c("split-inside-tokens", b'{"exec', b'ute": "query-st', b'atus", "id": 12', b'34, "x": "\\',
      b'u00', b'e9"}', b'\n{"execute": "query-status", "id": "\xc3', b'\xa9"}', pause=0.005),
    c("open-object-then-garbage-resets", b'{"execute": "query-status", ', b"\xff",
      b'{"execute": "query-status", "id": "after"}'),
]


# -- the two servers ---------------------------------------------------------------------
def _wait_for(path: Path, proc: subprocess.Popen, what: str) -> None:
    deadline = time.monotonic() + 20
    while not path.exists():
        if proc.poll() is not None:
            pytest.fail(f"{what} exited with {proc.returncode} before creating {path}")
        if time.monotonic() > deadline:
            pytest.fail(f"{what} did not create {path}")
        time.sleep(0.01)


@pytest.fixture(scope="module")
def sockets(tmp_path_factory: pytest.TempPathFactory):
    if shutil.which("qemu-system-ppc64") is None:
        pytest.fail("qemu-system-ppc64 is not installed: apt-get install -y "
                    "--no-install-recommends qemu-system-ppc (.ci/run installs it)")
    base = Path("/tmp") / f"vmctl-diff-{os.getpid()}"
    base.mkdir(exist_ok=True)
    qemu_sock, sim_sock = base / "qemu.sock", base / "sim.sock"
    folder = tmp_path_factory.mktemp("sim")
    (folder / "instance.json").write_text(json.dumps({"socket": str(sim_sock), "paused": True}))
    (folder / "machine.json").write_text(json.dumps(make_machine(name="box").to_json()))
    env = {**os.environ, "PYTHONPATH": str(Path(vmctl.__file__).parent.parent),
           "VMCTL_DISABLE_PLUGINS": "spapr-irq,vfio,async-pf,vfio-ap"}
    log = open(folder / "log", "wb")
    procs = [subprocess.Popen(
        ["qemu-system-ppc64", "-M", "pseries", "-S", "-nodefaults", "-display", "none",
         "-accel", "tcg", "-name", "box", "-smp", "2", "-qmp", f"unix:{qemu_sock},server=on,wait=off"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    try:
        procs.append(subprocess.Popen([sys.executable, "-m", "vmctl.sim", str(folder)],
                                      stdout=log, stderr=subprocess.STDOUT, env=env))
        _wait_for(qemu_sock, procs[0], "qemu-system-ppc64")
        _wait_for(sim_sock, procs[1], "the simulator")
        yield {"qemu": qemu_sock, "sim": sim_sock}
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
        log.close()
        shutil.rmtree(base, ignore_errors=True)


class Client:
    def __init__(self, path: Path) -> None:
        self.s = socket.socket(socket.AF_UNIX)
        self.s.settimeout(10)
        self.s.connect(str(path))
        self.buf = b""

    def line(self) -> bytes:
        while b"\r\n" not in self.buf:
            chunk = self.s.recv(1 << 20)
            if not chunk:
                raise EOFError(f"connection closed after {self.buf[-200:]!r}")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def close(self) -> None:
        self.s.close()


_NORMALISE = [
    (re.compile(rb'"timestamp": \{"seconds": \d+, "microseconds": \d+\}'), rb'"timestamp": {}'),
    (re.compile(rb'"thread-id": \d+'), rb'"thread-id": N'),
    (re.compile(rb"thread_id=\d+"), rb"thread_id=N"),
    (re.compile(rb'"qemu": \{"micro": \d+, "minor": \d+, "major": \d+\}, "package": "[^"]*"'),
     rb'"qemu": {VERSION}, "package": "P"'),
]


def normalise(line: bytes) -> bytes:
    for pattern, repl in _NORMALISE:
        line = pattern.sub(repl, line)
    return line


def exchange(path: Path, case: Case) -> list[bytes]:
    """Replies to ``case`` on a fresh connection, up to and including the sentinel's."""
    client = Client(path)
    try:
        out = [normalise(client.line())]  # the greeting
        if case.negotiate is not None:
            client.s.sendall(case.negotiate + b"\n")
            out.append(client.line())
        for i, chunk in enumerate(case.chunks):
            if i and case.pause:
                time.sleep(case.pause)
            client.s.sendall(chunk)
        client.s.sendall((b"\xff" if case.reset else b"") + b"\n" + SENTINEL + b"\n")
        while True:
            line = client.line()
            out.append(normalise(line))
            if b'"id": "sentinel"' in line:
                return out
    finally:
        client.close()


def _show(lines: list[bytes]) -> str:
    return "\n".join(repr(x[:300]) for x in lines)


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_simulator_answers_like_qemu(sockets, case: Case):
    qemu = exchange(sockets["qemu"], case)
    sim = exchange(sockets["sim"], case)
    assert sim == qemu, f"\n-- QEMU --\n{_show(qemu)}\n-- simulator --\n{_show(sim)}"


def test_the_cases_are_many_and_distinct():
    names = [case.name for case in CASES]
    assert len(names) == len(set(names)) and sum(len(c.chunks) for c in CASES) >= 150
