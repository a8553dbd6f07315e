"""The simulator process: ``python -m vmctl.sim INSTANCE_DIR``.

Reads ``INSTANCE_DIR/instance.json`` (``socket``, ``paused``) and ``machine.json`` (the
resolved machine), binds the QMP socket first (mode 0600, so clients can queue while the
rest starts), loads the plugins' device models, then serves until the machine ends.
stdout/stderr are the instance log: console lines, warnings, and on a fatal start-up error
one line ``vmctl-sim: error: …`` with exit status 1 (2 for bad usage).

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


def _fail(message: str, status: int = 1) -> int:
    sys.stderr.write(f"vmctl-sim: error: {message}\n")
    sys.stderr.flush()
    return status


def bind_socket(path: str) -> socket.socket:
    """A listening Unix socket at ``path``, mode 0600 (a stale file is replaced).

    Bound and listening under a temporary name first, then renamed into place: whoever
    sees ``path`` can connect.
    """
    tmp = os.path.join(os.path.dirname(path), f".{os.getpid()}.sock")
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


def _load(instance_dir: str) -> tuple[Any, list[tuple[str, Any]]]:
    """The machine (with the plugins' schema, so defaults apply) and its sim devices."""
    from vmctl.config.machine import Machine
    from vmctl.config.schema import Schema
    from vmctl.plugins import call, get_plugin_manager

    pm = get_plugin_manager()
    with open(os.path.join(instance_dir, "machine.json"), encoding="utf-8") as f:
        machine = Machine.from_json(json.load(f), Schema.from_plugins(pm))
    return machine, call(pm, "vmctl_sim_devices", machine=machine)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or args[0].startswith("-"):
        return _fail("usage: python -m vmctl.sim INSTANCE_DIR", 2)
    instance_dir = args[0]
    try:
        with open(os.path.join(instance_dir, "instance.json"), encoding="utf-8") as f:
            meta = json.load(f)
        sock = bind_socket(meta["socket"])
    except (OSError, ValueError, KeyError) as exc:
        return _fail(f"cannot start instance in {instance_dir}: {exc}")

    import asyncio

    from vmctl.sim.build import PACKAGE, build_simulation
    from vmctl.sim.server import EventHub, SimServer

    try:
        machine, contributions = _load(instance_dir)
        hub = EventHub()
        sim = build_simulation(machine, contributions=contributions,
                               paused=bool(meta.get("paused")), sink=hub.emit,
                               console=_console, thread_base=os.getpid())
    except (OSError, ValueError, KeyError) as exc:
        return _fail(str(exc))
    _console(f"vmctl-sim: machine {sim.dispatcher.name!r} ({len(sim.vm.cpus)} vCPUs, "
             f"seed {sim.vm.seed}, workload {sim.vm.workload.name}) "
             f"{'paused' if meta.get('paused') else 'running'}; QMP on {meta['socket']}")
    server = SimServer(sim, hub, sock, package=PACKAGE, console=_console, path=meta["socket"])
    return asyncio.run(server.serve())
