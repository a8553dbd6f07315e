"""``vmctl monitor NAME`` and ``vmctl top``: the terminal UI.

Top-level imports stay to typer and the standard library: Textual and ``qemu.qmp`` are
imported inside the commands, so ``vmctl --help`` and every other command stay light.
"""

from __future__ import annotations

import sys

import typer

from vmctl.cli.common import plugin_manager
from vmctl.errors import UsageError


def _need_terminal(command: str) -> None:
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise UsageError(f"vmctl {command} needs an interactive terminal",
                         hint="for scripts use: vmctl ps --format json, "
                              "vmctl status NAME --format json")


def _check_rate(value: float, option: str) -> float:
    if not 0.05 <= value <= 60:
        raise UsageError(f"{option} {value} is out of range", hint="use 0.05 to 60 seconds")
    return value


def monitor(
    name: str = typer.Argument(..., help="Instance name (see vmctl ps).", show_default=False),
    interval: float = typer.Option(0.25, "--interval", metavar="SECONDS",
                                   help="Seconds between polls (default 4 Hz)."),
) -> None:
    """Watch one machine live: run state, vCPUs, plugin panels, QMP events and a console.

    Keys: p pause/resume, r reset, d powerdown, x stop, f next panel, c console, ? help,
    q quit.  Works the same on the simulator and on QEMU.
    """
    _check_rate(interval, "--interval")
    from vmctl.paths import state_dir
    from vmctl.runtime.instance import find_instance
    from vmctl.tui.target import load_target

    instance = find_instance(state_dir(), name)
    target = load_target(instance, plugin_manager())
    _need_terminal("monitor")
    from vmctl.tui.feed import InstanceFeed
    from vmctl.tui.monitor import MonitorApp

    MonitorApp(InstanceFeed(target, interval=interval, full=True)).run()


def top(
    interval: float = typer.Option(0.5, "--interval", metavar="SECONDS",
                                   help="Seconds between refreshes (default 2 Hz)."),
    sort: str = typer.Option("name", "--sort", metavar="COLUMN",
                             help="First sort column: name, backend, state, uptime, vcpus, "
                                  "or a plugin name."),
) -> None:
    """Every instance in one table, refreshing; Enter opens the monitor for a row.

    Keys: s next sort column, R reverse, enter monitor, ? help, q quit.  Crashed
    instances stay listed (with the reason) until 'vmctl stop NAME' cleans them.
    """
    _check_rate(interval, "--interval")
    _need_terminal("top")
    from vmctl.paths import state_dir
    from vmctl.tui.top import TopApp

    TopApp(state_dir(), plugin_manager(), interval=interval, sort=sort).run()


def register(app: typer.Typer) -> None:
    app.command()(monitor)
    app.command()(top)
