"""The qemu backend's command line and start-up diagnosis (pure, no process started here).

``vmctl run --backend qemu`` runs the machine's argv from :func:`vmctl.qemu.argv.build_argv`
plus what a managed instance needs::

    -qmp unix:INSTANCE/qemu-qmp.sock,server=on,wait=off
                                          QEMU's private monitor: the supervisor holds its
                                          one connection and serves the instance's qmp.sock
                                          to any number of clients (vmctl.runtime.qmpmux)
    -display none                         no window
    -action panic=pause                   a guest panic stops the vCPUs (guest-panicked)
    -chardev socket,id=vmctl-console,path=INSTANCE/console-qemu.sock,server=on,wait=off
    -serial chardev:vmctl-console         the guest console (pseries: the spapr-vty of hvc0);
                                          the supervisor logs it and serves vmctl console
                                          (see vmctl.runtime.consolemux)
    -S                                    with --paused

The process is started (detached, by the supervisor) from an argv list — never a shell.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from vmctl.errors import VmctlError

CONSOLE_ID = "vmctl-console"  # the same as vmctl.runtime.consolemux.CONSOLE_ID


def debian_package(arch: str) -> str:
    from vmctl.config.hostschema import DEBIAN_PACKAGE

    return DEBIAN_PACKAGE.get(arch, "qemu-system")


def resolve_binary(binary: str, arch: str) -> str:
    """The absolute path of ``binary`` on ``PATH``; a hint naming the package otherwise."""
    found = shutil.which(binary)
    if found is None:
        pkg = debian_package(arch)
        raise VmctlError(f"{binary} not found on PATH (needed for --backend qemu, arch {arch})",
                         hint=f"install it: sudo apt-get install --no-install-recommends {pkg}")
    return found


def managed_args(argv: Sequence[str], *, socket: str | os.PathLike[str],
                 log: str | os.PathLike[str], paused: bool) -> list[str]:
    """``argv`` (binary first) plus the options a managed instance needs (module doc).

    ``socket`` is the instance's public QMP socket; QEMU's own monitor socket is made in
    the log's folder (:func:`vmctl.runtime.qmpwire.qemu_socket`; next to ``socket`` when
    that path would be too long).
    ``log`` is the instance log: the console socket is made in its folder
    (:func:`vmctl.runtime.consolemux.qemu_socket`; next to ``socket`` when that path
    would be too long).

    ``-append`` without ``-kernel`` is dropped: QEMU refuses the combination
    ("-append only allowed with -kernel option") although there is nothing to append to.
    """
    args = list(argv)
    if "-append" in args and "-kernel" not in args:
        i = args.index("-append")
        del args[i:i + 2]
    for opt in ("-qmp", "-display", "-serial", "-daemonize", "-S"):
        if opt in args:
            raise VmctlError(f"the machine's QEMU arguments already contain {opt}",
                             hint="vmctl sets it for managed instances; remove it from the plugin "
                                  "or run the exported argv yourself (vmctl export --format sh)")
    from vmctl.runtime.consolemux import chardev_args, qemu_socket
    from vmctl.runtime.qmpwire import qemu_socket as monitor_socket

    console = qemu_socket(os.path.dirname(os.fspath(log)), os.fspath(socket))
    monitor = monitor_socket(os.path.dirname(os.fspath(log)), os.fspath(socket))
    _check_commas(str(socket), "QMP socket")
    _check_commas(monitor, "QEMU monitor socket")
    _check_commas(console, "console socket")
    args += ["-qmp", f"unix:{monitor},server=on,wait=off", "-display", "none",
             "-action", "panic=pause", *chardev_args(console)]
    if paused:
        args.append("-S")
    return args


def _check_commas(path: str, what: str) -> None:
    if "," in path:
        raise VmctlError(f"the {what} path {path} contains ',' which QEMU options cannot carry",
                         hint="set VMCTL_STATE_DIR to a path without commas")


def qemu_command(machine: Any, pm: Any, *, socket: Path, log: Path,
                 paused: bool) -> list[str]:
    """The full command for ``machine`` with the binary resolved on ``PATH``."""
    from vmctl.qemu.argv import build_argv

    args = build_argv(machine, pm).args
    args[0] = resolve_binary(args[0], machine.arch)
    return managed_args(args, socket=socket, log=log, paused=paused)


def startup_error(log_lines: Sequence[str], binary: str) -> str | None:
    """QEMU's own error line from the log (``qemu-system-ppc64: …``), warnings skipped."""
    prefix = os.path.basename(binary) + ":"
    errors = [ln for ln in log_lines if ln.startswith(prefix) and ": warning:" not in ln]
    if errors:
        return errors[-1]
    return None
