"""The exact command ``vmctl run --backend qemu`` executes, for ``run`` and for ``plan``.

``run`` and ``plan --backend qemu`` both call :func:`qemu_run_command`, so the plan is the
command line, not a description of it: the same options in the same order, with the real
per-instance paths (the QMP socket, the console, the log) that a ``run`` under that name
would use.  :func:`with_runtime_sources` lines the command up with the machine's own
:class:`~vmctl.qemu.argv.Argv` so every argument keeps its provenance, and the ones vmctl
adds for a managed instance read ``vmctl: runtime``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from vmctl.paths import state_dir
from vmctl.qemu.argv import Argv, Origin, Unit, build_argv
from vmctl.runtime.instance import Instance, check_name
from vmctl.runtime.sockpath import choose_socket

#: Where the arguments ``run`` adds come from, in ``plan`` and ``export --format sh``.
RUNTIME = Origin("vmctl", "runtime", "run --backend qemu", 0)


def qemu_run_command(machine: Any, pm: Any, *, name: str | None = None, paused: bool = False,
                     state: Path | None = None, create: bool = True) -> tuple[list[str], Path]:
    """``(argv, qmp socket)`` for running ``machine`` on QEMU as instance ``name`` (default:
    the machine's name).  ``create=False`` (``plan``) makes no folder on the way."""
    from vmctl.qemu.process import qemu_command

    state = state if state is not None else state_dir()
    inst = Instance(state, check_name(machine.name if name is None else name))
    sock = choose_socket(inst.dir, state, create=create)
    return qemu_command(machine, pm, socket=sock, log=inst.log_path, paused=paused), sock


def with_runtime_sources(base: Argv, command: list[str]) -> Argv:
    """``command`` (what runs) as units with sources: the machine's own units where the
    command carries them unchanged (the binary by its resolved path), then the runtime's,
    one unit per option, sourced :data:`RUNTIME`."""
    units: list[Unit] = []
    i = 0
    for n, unit in enumerate(base.units):
        if n == 0:  # the binary: the same program, found on PATH
            units.append(Unit((command[0],), unit.origins))
            i = 1
            continue
        width = len(unit.args)
        if tuple(command[i:i + width]) == unit.args:
            units.append(unit)
            i += width
        # else: the runtime dropped it (``-append`` without ``-kernel``)
    rest = command[i:]
    while rest:
        j = 1
        while j < len(rest) and not rest[j].startswith("-"):
            j += 1
        units.append(Unit(tuple(rest[:j]), [RUNTIME]))
        rest = rest[j:]
    return Argv(units)


def planned_argv(machine: Any, pm: Any, *, name: str | None = None,
                 paused: bool = False) -> Argv:
    """The :class:`Argv` ``run --backend qemu`` would execute, with sources (for ``plan``)."""
    command, _ = qemu_run_command(machine, pm, name=name, paused=paused, create=False)
    return with_runtime_sources(build_argv(machine, pm), command)
