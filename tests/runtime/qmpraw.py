"""A raw QMP client for the multiplexer's tests: bytes in, the server's lines out, as socat
would see them (no library between the test and the wire)."""

from __future__ import annotations

import json
import socket


class RawQmp:
    """Connect, read the greeting, and (``negotiate``) send ``qmp_capabilities``, with
    ``oob`` enabled when asked; QEMU's exact reply bytes are checked."""

    def __init__(self, path: str, negotiate: bool = True, oob: bool = False,
                 timeout: float = 10.0) -> None:
        self.timeout = timeout
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(path)
        self.buf = b""
        self.greeting = self.line()
        if negotiate:
            args = ', "arguments": {"enable": ["oob"]}' if oob else ""
            self.send('{"execute": "qmp_capabilities"%s}' % args)
            assert self.line() == b'{"return": {}}\r\n'

    def send(self, data: str | bytes) -> None:
        self.sock.sendall(data.encode() if isinstance(data, str) else data)

    def line(self, timeout: float | None = None) -> bytes:
        self.sock.settimeout(self.timeout if timeout is None else timeout)
        while b"\n" not in self.buf:
            data = self.sock.recv(1 << 20)
            if not data:
                raise EOFError(self.buf[-200:])
            self.buf += data
        line, self.buf = self.buf.split(b"\n", 1)
        return line + b"\n"

    def msg(self, timeout: float | None = None) -> dict:
        return json.loads(self.line(timeout))

    def call(self, text: str) -> dict:
        self.send(text)
        return self.msg()

    def reply(self) -> dict:
        """The next message that is not an event."""
        while True:
            msg = self.msg()
            if "event" not in msg:
                return msg

    def quiet(self, wait: float = 0.3) -> bool:
        """Nothing arrives within ``wait`` seconds."""
        try:
            self.line(wait)
        except (TimeoutError, socket.timeout):
            return True
        return False

    def close(self) -> None:
        self.sock.close()
