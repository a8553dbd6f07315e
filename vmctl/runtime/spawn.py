"""Starting a backend and its supervisor without putting either start-up in the way.

``vmctl run`` forks.  The child starts the backend at once and then *becomes* the
supervisor with ``execv`` (a process keeps its children across exec), so the supervisor's
own Python start-up overlaps the backend's instead of preceding it.  Detached, the child
first makes a new session and forks again, so it is nobody's child.

Two ways to start the backend:

* :func:`spawn_backend` — ``posix_spawn`` of an argv: QEMU, or ``python -m vmctl.sim DIR``.
* :func:`fork_simulator` — the simulator forked from ``vmctl run`` itself, which has
  already imported vmctl, loaded the plugins and built the machine: the child goes
  straight to binding the socket.  It is used only when the calling process has a single
  thread (forking a threaded process is not safe), i.e. from the CLI; callers with threads
  get the ``python -m vmctl.sim`` path, which behaves the same.

Between ``fork`` and ``exec`` the children run only system calls and small file writes.

The report pipe
---------------
``vmctl run`` also passes the write end of a pipe (close-on-exec).  The process that will
become the supervisor writes ``pid N`` to it at once, and ``error TEXT`` if it fails before
the exec.  This needs no disk space: on a full state file system, where neither ``proc.json``
nor the log can be written, ``vmctl run`` still learns at once that the supervisor died and
why, instead of waiting for a greeting that never comes.
"""

from __future__ import annotations

import gc
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

from vmctl.errors import describe_oserror
from vmctl.runtime import consolemux, qmpwire, supervisor

SUPERVISOR = Path(supervisor.__file__)
#: Seconds the forked child waits before exec'ing the supervisor.
SUPERVISOR_DELAY = 0.15


class Child:
    """A child process known by pid (the foreground supervisor): poll, kill, terminate."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def terminate(self) -> None:
        self._signal(signal.SIGTERM)

    def kill(self) -> None:
        self._signal(signal.SIGKILL)
        os.waitpid(self.pid, 0)
        self.returncode = -signal.SIGKILL

    def _signal(self, signum: int) -> None:
        if self.returncode is None:
            try:
                os.kill(self.pid, signum)
            except ProcessLookupError:
                pass


def _become_supervisor(folder: str, lock_fd: int, cmd: list[str], child: int,
                       log: int, null: int, env: dict[str, str], detach: bool) -> None:
    """Record ``child``, then exec the supervisor adopting it.  Never returns."""
    supervisor.record_start(folder, child, cmd)  # same pid after the exec
    # The supervisor's Python start-up must not compete with the backend's on a busy
    # machine: start it a little later, and at a lower priority.  Nothing is lost
    # meanwhile: a backend that ends early stays a zombie until the supervisor reaps it.
    # Not for QEMU: there the supervisor serves QMP (vmctl.runtime.qmpmux), which `run`
    # waits for and every client goes through.
    if qmpwire.qemu_monitor_path(cmd) is None:
        os.nice(10)
        time.sleep(SUPERVISOR_DELAY)
    if detach:
        os.dup2(null, 0)
        os.dup2(log, 1)
        os.dup2(log, 2)
    flags = ["--detach"] if detach else []
    os.execve(sys.executable, [sys.executable, "-I", "-S", str(SUPERVISOR), "--adopt",
                               str(child), *flags, folder, str(lock_fd), "--", *cmd], env)


def _fork_detached() -> int:
    """Fork; in the child, a new session and a second fork.  Returns the first pid."""
    pid = os.fork()
    if pid == 0:
        os.setsid()
        if os.fork():
            os._exit(0)
    return pid


def report(fd: int, line: str) -> None:
    """One line to ``vmctl run`` over the report pipe (see the module docstring)."""
    if fd >= 0:
        try:
            os.write(fd, (line.replace("\n", " ") + "\n").encode("utf-8", "replace"))
        except OSError:
            pass


def spawn_backend(folder: str, lock_fd: int, cmd: list[str], env: dict[str, str],
                  foreground: bool, report_fd: int = -1) -> Child | None:
    """Start ``cmd`` under a supervisor; the supervisor as a :class:`Child` in the
    foreground, None when detached (the supervisor then belongs to nobody)."""
    log, null = supervisor.open_log(folder)
    try:
        pid = os.fork() if foreground else _fork_detached()
        if pid == 0:
            report(report_fd, f"pid {os.getpid()}")
            child = 0
            try:
                os.umask(0o177)  # QEMU's socket and files: 0600
                os.set_inheritable(lock_fd, True)
                try:
                    child = supervisor.spawn(cmd, log, null, env)
                    report(report_fd, f"backend {child}")
                except OSError as exc:
                    report(report_fd, f"error cannot execute {cmd[0]}: {exc.strerror}")
                    supervisor.record_spawn_failure(folder, log, cmd, exc)
                    os._exit(127)
                consolemux.connect_early(cmd, child)  # QEMU's console, kept across the exec
                _become_supervisor(folder, lock_fd, cmd, child, log, null, env,
                                   detach=not foreground)
            except BaseException as exc:  # noqa: BLE001 - a forked child never returns
                _die(log, f"cannot start the supervisor: {describe_oserror(exc)}", report_fd, child)
    finally:
        os.close(log)
        os.close(null)
    if foreground:
        return Child(pid)
    os.waitpid(pid, 0)  # the first child exits at once
    return None


def can_fork_simulator() -> bool:
    """Forking the simulator out of this process is safe: one thread only."""
    return threading.active_count() == 1


def fork_simulator(folder: str, lock_fd: int, machine: Any, pm: Any,
                   report_fd: int = -1) -> None:
    """Detached: the simulator forked from this process (see the module docstring)."""
    log, null = supervisor.open_log(folder)
    cmd = [sys.executable, "-m", "vmctl.sim", folder]
    try:
        pid = _fork_detached()
        if pid == 0:
            report(report_fd, f"pid {os.getpid()}")
            child = 0
            try:
                os.umask(0o177)
                os.set_inheritable(lock_fd, True)
                child = os.fork()
                if child == 0:
                    _run_simulator(folder, lock_fd, machine, pm, log, null)
                report(report_fd, f"backend {child}")
                _become_supervisor(folder, lock_fd, cmd, child, log, null, dict(os.environ),
                                   detach=True)
            except BaseException as exc:  # noqa: BLE001 - a forked child never returns
                _die(log, f"cannot start the simulator: {describe_oserror(exc)}", report_fd, child)
    finally:
        os.close(log)
        os.close(null)
    os.waitpid(pid, 0)


def _run_simulator(folder: str, lock_fd: int, machine: Any, pm: Any, log: int,
                   null: int) -> None:
    """The forked simulator: fresh stdio on the log, nothing else open.  Never returns."""
    code = 1
    try:
        # Objects inherited from the caller, garbage included, are never collected here:
        # a finalizer must not close a descriptor number the simulator reuses.
        gc.freeze()
        os.dup2(null, 0)
        os.dup2(log, 1)
        os.dup2(log, 2)
        keep = sorted({0, 1, 2, lock_fd})
        for lo, hi in zip(keep, [*keep[1:], 1 << 20]):
            os.closerange(lo + 1, hi)  # the caller's pipes must not stay open in here
        try:
            with open("/proc/self/comm", "w") as comm:  # what ps -o comm and top show
                comm.write("vmctl-sim")
        except OSError:
            pass
        sys.stdin = open(0, closefd=False)
        sys.stdout = open(1, "w", buffering=1, closefd=False)
        sys.stderr = open(2, "w", buffering=1, closefd=False)
        for signum in (signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        if "asyncio" in sys.modules:
            sys.modules["asyncio"]._set_running_loop(None)
        from vmctl.sim.main import serve_instance

        code = serve_instance(folder, machine=machine, pm=pm)
    except BaseException:  # noqa: BLE001 - report, then leave without the caller's atexit
        import traceback

        traceback.print_exc()
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


def _die(log: int, message: str, report_fd: int = -1, child: int = 0) -> None:
    """The would-be supervisor failed: take its backend along (it holds the instance
    lock), tell ``vmctl run`` why, and leave."""
    try:
        if child > 0:
            try:
                os.kill(child, signal.SIGKILL)
                os.waitpid(child, 0)
            except OSError:
                pass
        report(report_fd, f"error {message}")
        os.write(log, f"vmctl: {message}\n".encode())
    finally:
        os._exit(126)
