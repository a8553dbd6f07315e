"""``human-monitor-command``: the HMP subset the simulator understands.

Output matches QEMU 7.2's text, ``\\r\\n`` line ends included:

* ``info status`` → ``VM status: running`` / ``VM status: paused`` /
  ``VM status: paused (prelaunch)`` (the run state is shown when it is not plain paused)
* ``info cpus`` → ``* CPU #0: thread_id=N`` (``*`` marks the monitor's current CPU)
* ``info name``, ``info version``, ``info kvm``; ``info`` alone lists what is available
* plugin subcommands (``info pic`` from spapr-irq) from ``SimDevice.hmp_info``
* ``stop``, ``cont``/``c``, ``system_reset``, ``system_powerdown``, ``quit``/``q``
* anything else → ``unknown command: 'WORD'``
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from vmctl.sim.qmp import QMPError

if TYPE_CHECKING:  # pragma: no cover
    from vmctl.sim.commands import Dispatcher

BUILTIN_INFO = {
    "cpus": "show infos for each CPU",
    "kvm": "show KVM information",
    "name": "show the current VM name",
    "status": "show the current VM status (running|paused)",
    "version": "show the version of QEMU",
}


def crlf(text: str) -> str:
    """Normalise line ends to QEMU's ``\\r\\n``."""
    return text.replace("\r\n", "\n").replace("\n", "\r\n")


def run_hmp(dispatcher: Dispatcher, command_line: str, cpu_index: int = 0) -> str:
    """Execute one HMP command line and return its output text."""
    words = command_line.split()
    if not words:
        return ""
    head, rest = words[0], words[1:]
    if head in ("info", "i"):
        return _info(dispatcher, rest, cpu_index)
    actions: dict[str, Callable[[], object]] = {
        "stop": dispatcher.cmd_stop, "cont": dispatcher.cmd_cont, "c": dispatcher.cmd_cont,
        "system_reset": dispatcher.cmd_system_reset,
        "system_powerdown": dispatcher.cmd_system_powerdown,
        "quit": dispatcher.cmd_quit, "q": dispatcher.cmd_quit,
    }
    if head in actions:
        try:
            actions[head]()
        except QMPError as exc:
            return crlf(f"Error: {exc.desc}\n")
        return ""
    return crlf(f"unknown command: '{head}'\n")


def _info(dispatcher: Dispatcher, args: list[str], cpu_index: int) -> str:
    plugin_info = dispatcher.devices.info
    if not args:
        names = dict(BUILTIN_INFO)
        for name, (record, _fn) in plugin_info.items():
            names[name] = f"show {name} state (plugin {record.plugin})"
        return crlf("".join(f"info {n}  -- {h}\n" for n, h in sorted(names.items())))
    sub = args[0]
    vm = dispatcher.vm
    if sub == "status":
        running = vm.run_state == "running"
        text = "VM status: " + ("running" if running else "paused")
        if not running and vm.run_state != "paused":
            text += f" ({vm.run_state})"
        return crlf(text + "\n")
    if sub == "cpus":
        return crlf("".join(f"{'*' if cpu.index == cpu_index else ' '} CPU #{cpu.index}: "
                            f"thread_id={cpu.thread_id}\n" for cpu in vm.cpus))
    if sub == "name":
        return crlf(f"{dispatcher.name}\n")
    if sub == "version":
        v = dispatcher.version
        return crlf(f"{v['major']}.{v['minor']}.{v['micro']}{dispatcher.package}\n")
    if sub == "kvm":
        # As hmp_info_kvm with query-kvm's "present": false (a QEMU built without KVM).
        return crlf("kvm support: not compiled\n")
    if sub in plugin_info:
        return crlf(dispatcher.devices.run_info(sub))
    return crlf(f"unknown command: 'info {sub}'\n")
