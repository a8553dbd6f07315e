"""The qemu backend's command line and start-up diagnosis (pure, no process started here).

``vmctl run --backend qemu`` runs the machine's argv from :func:`vmctl.qemu.argv.build_argv`
plus what a managed instance needs::

    -qmp unix:SOCK,server=on,wait=off     QMP for vmctl (ready when it greets)
    -display none                         no window
    -action panic=pause                   a guest panic stops the vCPUs (guest-panicked)
    -chardev file,id=vmctl-console,path=LOG,append=on -serial chardev:vmctl-console
                                          the guest console goes to the instance log
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

CONSOLE_ID = "vmctl-console"


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
    _check_commas(str(socket), "QMP socket")
    _check_commas(str(log), "log")
    args += ["-qmp", f"unix:{socket},server=on,wait=off", "-display", "none",
             "-action", "panic=pause",
             "-chardev", f"file,id={CONSOLE_ID},path={log},append=on",
             "-serial", f"chardev:{CONSOLE_ID}"]
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
