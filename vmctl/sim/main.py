"""The simulator process: ``python -m vmctl.sim INSTANCE_DIR``.

Reads ``INSTANCE_DIR/instance.json`` (``socket``, ``paused``) and ``machine.json`` (the
resolved machine), binds the QMP socket first (mode 0600, so clients can queue while the
rest starts), loads the plugins' device models, then serves until the machine ends.
stdout/stderr are the instance log: console lines, warnings, and on a fatal start-up error
one line ``vmctl-sim: error: …`` with exit status 1 (2 for bad usage).

The console: right after the QMP socket, ``console.sock`` is served for ``vmctl console``
(:class:`~vmctl.runtime.consoleserver.ConsoleServer`, a daemon thread): each console line
goes to the log and, ending in CRLF as on a serial line, to the replay buffer and the
attached client.  The simulated guest has no shell: what a client types is echoed, and
each line entered is logged as ``vmctl-sim: console input '…' (no shell in the simulated
guest)``.

Start-up speed matters (``vmctl run`` waits for the greeting), so this module imports the
standard library's light parts first and asyncio, the config loader and the plugins only
once the socket is bound.
"""

from __future__ import annotations

import json
import os
import socket
import sys
from typing import Any


def _console(line: str) -> None:
    sys.stdout.write(line.rstrip("\n") + "\n")
    sys.stdout.flush()


class SimConsole:
    """The simulator's console: lines to the log (stdout) and to ``console.sock``."""

    def __init__(self, instance_dir: str, meta: dict[str, Any]) -> None:
        import threading

        from vmctl.runtime.consolemux import ConsoleServer, client_socket

        self._lock = threading.Lock()
        self._typed = bytearray()
        self.server = ConsoleServer(
            client_socket(instance_dir, str(meta.get("socket") or "")),
            name=os.path.basename(os.path.normpath(instance_dir)), backend="sim",
            on_input=self._input)
        if self.server.bind_error:
            _console(f"vmctl-sim: console: {self.server.bind_error}")
        self.server.start()

    def __call__(self, line: str) -> None:
        """One console line (the ``console`` callable of the simulation)."""
        line = line.rstrip("\n")
        with self._lock:
            _console(line)
            self.server.feed((line + "\r\n").encode("utf-8", "replace"))

    def _input(self, data: bytes) -> None:
        """Keystrokes (server thread): echoed; a line entered is logged, never run."""
        echo = bytearray()
        for byte in data:
            if byte in (0x0D, 0x0A):
                echo += b"\r\n"
                typed, self._typed = bytes(self._typed), bytearray()
                self.server.feed(bytes(echo))
                echo.clear()
                text = typed.decode("utf-8", "replace")
                self(f"vmctl-sim: console input {text!r} (no shell in the simulated guest)")
            elif byte in (0x7F, 0x08):
                if self._typed:
                    del self._typed[-1]
                    echo += b"\b \b"
            elif byte >= 0x20 or byte == 0x09:
                self._typed.append(byte)
                echo.append(byte)
        if echo:
            self.server.feed(bytes(echo))

    def close(self) -> None:
        self.server.close("the simulated machine ended")
        self.server.join(1.0)


def _fail(message: str, status: int = 1) -> int:
    sys.stderr.write(f"vmctl-sim: error: {message}\n")
    sys.stderr.flush()
    return status


def bind_socket(path: str) -> socket.socket:
    """A listening Unix socket at ``path``, mode 0600 (a stale file is replaced).

    Bound and listening under a temporary name first, then renamed into place: whoever
    sees ``path`` can connect.
    """
    from vmctl.runtime.sockpath import staging_path

    tmp = str(staging_path(path))
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old = os.umask(0o177)
    try:
        if os.path.lexists(tmp):
            os.unlink(tmp)
        sock.bind(tmp)
    finally:
        os.umask(old)
    sock.listen(128)
    sock.setblocking(False)
    os.replace(tmp, path)
    return sock


def _load(instance_dir: str) -> tuple[Any, Any]:
    """The machine (with the plugins' schema, so defaults apply) and the plugin manager."""
    from vmctl.config.machine import Machine
    from vmctl.config.schema import Schema
    from vmctl.plugins import get_plugin_manager

    pm = get_plugin_manager()
    with open(os.path.join(instance_dir, "machine.json"), encoding="utf-8") as f:
        machine = Machine.from_json(json.load(f), Schema.from_plugins(pm))
    return machine, pm


def serve_instance(instance_dir: str, machine: Any = None, pm: Any = None) -> int:
    """Run the instance in ``instance_dir`` until the machine ends; the exit status.

    ``machine`` and ``pm`` are given when ``vmctl run`` forks the simulator from a process
    that has them already (see :mod:`vmctl.runtime.launch`); otherwise they are loaded
    from ``machine.json`` and the installed plugins.
    """
    try:
        with open(os.path.join(instance_dir, "instance.json"), encoding="utf-8") as f:
            meta = json.load(f)
        sock = bind_socket(meta["socket"])
    except (OSError, ValueError, KeyError) as exc:
        return _fail(f"cannot start instance in {instance_dir}: {exc}")

    import asyncio

    from vmctl.plugins import call
    from vmctl.sim.build import PACKAGE, build_simulation
    from vmctl.sim.server import EventHub, SimServer

    try:
        console = SimConsole(instance_dir, meta)
    except OSError as exc:
        return _fail(f"cannot start the console in {instance_dir}: {exc}")
    try:
        try:
            if machine is None:
                machine, pm = _load(instance_dir)
            contributions = call(pm, "vmctl_sim_devices", machine=machine)
            hub = EventHub()
            sim = build_simulation(machine, contributions=contributions,
                                   paused=bool(meta.get("paused")), sink=hub.emit,
                                   console=console, thread_base=os.getpid())
        except (OSError, ValueError, KeyError) as exc:
            return _fail(str(exc))
        console(f"vmctl-sim: machine {sim.dispatcher.name!r} ({len(sim.vm.cpus)} vCPUs, "
                f"seed {sim.vm.seed}, workload {sim.vm.workload.name}) "
                f"{'paused' if meta.get('paused') else 'running'}; QMP on {meta['socket']}")
        server = SimServer(sim, hub, sock, package=PACKAGE, console=console,
                           path=meta["socket"])
        return asyncio.run(server.serve())
    finally:
        console.close()


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or args[0].startswith("-"):
        return _fail("usage: python -m vmctl.sim INSTANCE_DIR", 2)
    return serve_instance(args[0])
