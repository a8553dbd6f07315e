"""Console benchmark (issue 14, point 4): what ``vmctl console``'s server costs.

    .venv/bin/python bench/bench_console.py [--runs N]

The :class:`~vmctl.runtime.consolemux.ConsoleServer` the supervisor runs for QEMU (the
simulator runs the same one), in process, with a socket pair standing in for QEMU's
console chardev.  Each figure is a median with a reference measured in the same run:

1. keystroke echo round trip: client -> server -> guest socket -> echo -> server -> client,
   vs the same echo directly on a socket pair (target: under 1 ms, interactive);
2. guest output to the log with a client attached, vs copying the socket to a file in a
   plain loop (target: at least 0.3x of that copy, far above any serial console);
3. attaching with a full 64 KiB replay (target: under 20 ms).
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

from common import ROOT, report

sys.path.insert(0, str(ROOT))

from vmctl.runtime import consolemux as cm  # noqa: E402


def echo_forever(sock: socket.socket) -> None:
    try:
        while data := sock.recv(65536):
            sock.sendall(data)
    except OSError:
        pass


def direct_echo(runs: int) -> list[float]:
    a, b = socket.socketpair()
    threading.Thread(target=echo_forever, args=(b,), daemon=True).start()
    out = []
    for _ in range(runs):
        t = time.perf_counter()
        a.sendall(b"k")
        a.recv(16)
        out.append(time.perf_counter() - t)
    a.close()
    return out


def served(folder: Path, guest: socket.socket, log: int) -> cm.ConsoleServer:
    server = cm.ConsoleServer(str(folder / "console.sock"), name="bench", backend="qemu",
                              log_fd=log, guest=guest)
    server.start()
    return server


def read_frames(sock, reader, kind: bytes, size: int) -> None:
    got = 0
    while got < size:
        for k, payload in reader.feed(sock.recv(1 << 20)):
            if k == kind:
                got += len(payload)


def server_echo(folder: Path, runs: int) -> list[float]:
    guest, qemu = socket.socketpair()
    threading.Thread(target=echo_forever, args=(qemu,), daemon=True).start()
    log = os.open(folder / "log-echo", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    server = served(folder, guest, log)
    sock, _hello, reader, _ = cm.attach(str(folder / "console.sock"), replay=False)
    out = []
    for _ in range(runs):
        t = time.perf_counter()
        sock.sendall(cm.frame(b"K", b"k"))
        read_frames(sock, reader, b"D", 1)
        out.append(time.perf_counter() - t)
    sock.close()
    server.close()
    server.join(2)
    qemu.close()
    os.close(log)
    return out


CHUNK = b"[    1.234567] a line of guest console output, like a kernel prints it\r\n" * 64
TOTAL = 32 << 20


def plain_copy(folder: Path) -> float:
    a, b = socket.socketpair()
    log = os.open(folder / "log-plain", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)

    def copy() -> None:
        while data := b.recv(65536):
            os.write(log, data)

    t = time.perf_counter()
    th = threading.Thread(target=copy)
    th.start()
    sent = 0
    while sent < TOTAL:
        a.sendall(CHUNK)
        sent += len(CHUNK)
    a.close()
    th.join()
    took = time.perf_counter() - t
    os.close(log)
    return TOTAL / took


def server_output(folder: Path) -> float:
    guest, qemu = socket.socketpair()
    log = os.open(folder / "log-out", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    server = served(folder, guest, log)
    sock, _hello, reader, _ = cm.attach(str(folder / "console.sock"), replay=False)
    received = threading.Thread(target=read_frames, args=(sock, reader, b"D", TOTAL))
    t = time.perf_counter()
    received.start()
    sent = 0
    while sent < TOTAL:
        qemu.sendall(CHUNK)
        sent += len(CHUNK)
    received.join()
    took = time.perf_counter() - t
    assert os.path.getsize(folder / "log-out") >= TOTAL
    sock.close()
    qemu.close()
    server.join(2)
    os.close(log)
    return TOTAL / took


def attach_with_replay(folder: Path, runs: int) -> list[float]:
    guest, qemu = socket.socketpair()
    log = os.open(folder / "log-replay", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    server = served(folder, guest, log)
    qemu.sendall(CHUNK * 20)
    while server.total < len(CHUNK) * 20:
        time.sleep(0.01)
    size = len(server.buffer)
    out = []
    for _ in range(runs):
        t = time.perf_counter()
        sock, _hello, reader, frames = cm.attach(str(folder / "console.sock"))
        got = sum(len(p) for k, p in frames if k == b"R")
        if got < size:
            read_frames(sock, reader, b"R", size - got)
        out.append(time.perf_counter() - t)
        sock.close()
    qemu.close()
    server.join(2)
    os.close(log)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=2000)
    args = ap.parse_args()
    ms = lambda xs: statistics.median(xs) * 1000  # noqa: E731
    with tempfile.TemporaryDirectory(prefix="vbc-", dir="/tmp") as tmp:
        folder = Path(tmp)
        direct = ms(direct_echo(args.runs))
        through = ms(server_echo(folder, args.runs))
        plain = plain_copy(folder)
        out = server_output(folder)
        replay = ms(attach_with_replay(folder, max(20, args.runs // 20)))
    rows = [("benchmark", "median", "reference (same run)", "ratio / target"),
            ("keystroke echo via the console server", f"{through * 1000:.0f} us",
             f"direct socket echo {direct * 1000:.0f} us",
             f"{through / direct:.1f}x ({'ok' if through < 1 else 'MISSED'}: < 1 ms)"),
            ("guest output to log + attached client", f"{out / 1e6:.0f} MB/s",
             f"plain socket->file copy {plain / 1e6:.0f} MB/s",
             f"{out / plain:.2f}x ({'ok' if out / plain >= 0.3 else 'MISSED'}: >= 0.3x)"),
            ("attach with a 64 KiB replay", f"{replay:.2f} ms", "-",
             f"{'ok' if replay < 20 else 'MISSED'}: < 20 ms")]
    report(rows)


if __name__ == "__main__":
    main()
