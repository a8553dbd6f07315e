"""``vmctl run``: prepare the instance folder, start the backend detached, wait for QMP.

Order of events, each step refusing with a :class:`~vmctl.errors.VmctlError` that says
what to do:

1. the name is checked and the state dir made usable (0700);
2. the instance lock is taken without waiting — the loser of a race is told who holds
   the name;
3. a leftover folder of a dead instance (crashed, exited, stale) is replaced, a live one
   refused;
4. ``instance.json`` and ``machine.json`` are written, the socket path chosen (≤ 107 bytes);
5. the backend (QEMU, or the simulator) starts in a new session under a supervisor that
   records its exit status; both hold the lock (:mod:`vmctl.runtime.spawn`);
6. ``run`` returns once the socket greets like QMP *and* answers a first command.  A
   backend that exits first is reported with its own error line from the log, and its
   folder removed.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import vmctl
from vmctl.errors import VmctlError
from vmctl.paths import state_dir
from vmctl.runtime.inspect import describe_exit, inspect
from vmctl.runtime.instance import Instance, check_name, ensure_state_dir
from vmctl.runtime import spawn
from vmctl.runtime.lock import InstanceLock
from vmctl.runtime.sockpath import choose_socket

SUPERVISOR = spawn.SUPERVISOR
#: Seconds to wait for the first QMP greeting.
READY_TIMEOUT = {"sim": 10.0, "qemu": 30.0}


@dataclass
class Started:
    """A started instance, as ``run`` reports it."""

    name: str
    backend: str
    socket: str
    dir: str
    pid: int | None
    elapsed: float
    greeting: dict[str, Any]
    to_greeting: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "backend": self.backend, "socket": self.socket,
                "dir": self.dir, "pid": self.pid, "elapsed": round(self.elapsed, 4),
                "qmp": self.greeting.get("QMP", {})}


def sim_command(instance_dir: Path) -> list[str]:
    return [sys.executable, "-m", "vmctl.sim", str(instance_dir)]


def _child_env() -> dict[str, str]:
    """The environment for the backend: vmctl importable even when not installed."""
    env = dict(os.environ)
    root = str(Path(vmctl.__file__).resolve().parent.parent)
    paths = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    if root not in paths:
        env["PYTHONPATH"] = os.pathsep.join([root, *paths])
    return env


_READY_PROBE = (b'{"execute": "qmp_capabilities"}\n'
                b'{"execute": "query-status", "id": "vmctl-ready"}\n')


def try_ready(path: str, timeout: float,
              greeted: list[float] | None = None) -> dict[str, Any] | None:
    """The QMP greeting once the backend answers a command; None if not ready yet.

    The greeting alone is not enough: QEMU's monitor thread greets before the machine
    is built, and a QEMU that then fails (bad memory size, missing firmware) would look
    ready.  A ``query-status`` reply comes from the main loop, after machine set-up.
    On QEMU ``path`` is the supervisor's (:mod:`vmctl.runtime.qmpmux`): it relays QEMU's
    greeting once it holds QEMU's monitor, and the reply still comes from QEMU.
    ``greeted`` (a list) receives the ``time.monotonic()`` of the greeting.
    """
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    greeting: dict[str, Any] | None = None
    try:
        s.connect(path)
        buf = b""
        while True:
            while b"\n" not in buf:
                chunk = s.recv(65536)
                if not chunk:
                    return None
                buf += chunk
            line, buf = buf.split(b"\n", 1)
            try:
                msg = json.loads(line)
            except ValueError:
                return None
            if greeting is None:
                if not (isinstance(msg, dict) and "QMP" in msg):
                    return None
                greeting = msg
                if greeted is not None:
                    greeted.append(time.monotonic())
                s.sendall(_READY_PROBE)
            elif isinstance(msg, dict) and msg.get("id") == "vmctl-ready":
                return greeting if "return" in msg else None
    except (FileNotFoundError, ConnectionRefusedError, ConnectionResetError, BrokenPipeError,
            TimeoutError):
        return None
    finally:
        s.close()


def _holder(inst: Instance) -> str:
    if not inst.exists():
        return "another 'vmctl run' is starting it"
    insp = inspect(inst)
    if insp.pid:
        return f"it is {insp.state.value} ({insp.backend}, pid {insp.pid})"
    return f"it is {insp.state.value}"


def _failure_lines(inst: Instance, backend: str, binary: str) -> str:
    tail = inst.log_tail(20)
    if backend == "qemu":
        from vmctl.qemu.process import startup_error

        line = startup_error(tail, binary)
        if line:
            return line
    errors = [ln for ln in tail if "error" in ln.lower()]
    if errors or tail:
        return (errors or tail)[-1]
    return _disk_problem(inst.state) or "(the log is empty)"


def _disk_problem(state: Path) -> str | None:
    """Why nothing could be written under ``state``, when its file system says so."""
    try:
        st = os.statvfs(state)
    except OSError:
        return None
    if st.f_flag & os.ST_RDONLY:
        return f"the file system of {state} is read-only (EROFS)"
    if st.f_bavail * st.f_frsize < (256 << 10) or st.f_favail == 0 and st.f_files:
        free = st.f_bavail * st.f_frsize
        return (f"the file system of {state} is full: No space left on device (ENOSPC, "
                f"{free >> 10} KiB free)")
    return None


class _Reports:
    """The read end of the report pipe (see :mod:`vmctl.runtime.spawn`)."""

    def __init__(self) -> None:
        self.read_fd, self.write_fd = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
        self.supervisor: int | None = None
        self.backend: int | None = None
        self.errors: list[str] = []
        self._buf = b""

    def close_writer(self) -> None:
        if self.write_fd >= 0:
            os.close(self.write_fd)
            self.write_fd = -1

    def poll(self) -> None:
        while True:
            try:
                chunk = os.read(self.read_fd, 4096)
            except BlockingIOError:
                break
            if not chunk:
                break
            self._buf += chunk
        *lines, self._buf = self._buf.split(b"\n")
        for raw in lines:
            word, _, rest = raw.decode("utf-8", "replace").partition(" ")
            if word == "pid" and rest.isdigit():
                self.supervisor = int(rest)
            elif word == "backend" and rest.isdigit():
                self.backend = int(rest)
            elif word == "error":
                self.errors.append(rest)

    def supervisor_gone(self) -> bool:
        from vmctl.runtime.procinfo import is_alive

        self.poll()
        return self.supervisor is not None and not is_alive(self.supervisor, None)

    def close(self) -> None:
        self.close_writer()
        os.close(self.read_fd)


def _kill_all(inst: Instance) -> None:
    proc = inst.proc() or {}
    for key in ("pid", "supervisor_pid"):
        pid = proc.get(key)
        if pid:
            try:
                os.kill(int(pid), 9)
            except (ProcessLookupError, PermissionError):
                pass


class Launch:
    """One ``run`` in progress (see the module docstring for the steps)."""

    def __init__(self, machine: Any, pm: Any, *, backend: str = "sim",
                 name: str | None = None, paused: bool = False,
                 notify: Callable[[str], None] = lambda msg: None) -> None:
        if backend not in READY_TIMEOUT:
            raise VmctlError(f"unknown backend {backend!r}", hint="use --backend sim or qemu")
        self.machine, self.pm, self.backend, self.paused = machine, pm, backend, paused
        self.name = check_name(machine.name if name is None else name)
        self.notify = notify
        self.state = ensure_state_dir(state_dir())
        self.inst = Instance(self.state, self.name)
        self.lock = InstanceLock(self.state, self.name)
        self.proc: spawn.Child | None = None
        self.reports: _Reports | None = None
        self.command: list[str] = []
        self.greeted: list[float] = []

    def _prepare(self) -> Path:
        if self.inst.exists():
            insp = inspect(self.inst)
            if insp.state.alive:
                raise VmctlError(f"instance {self.name!r} is already {insp.state.value} "
                                 f"({insp.backend}, pid {insp.pid})",
                                 hint=f"vmctl stop {self.name}, or run it under another "
                                      f"name with --name")
            self.notify(f"note: replacing {insp.state.value} instance {self.name!r} "
                        f"({insp.reason or describe_exit(insp.exit)})")
            self.inst.remove()
        if self.backend == "qemu":
            from vmctl.runtime.command import qemu_run_command  # the one plan --backend qemu shows

            self.command, sock = qemu_run_command(self.machine, self.pm, name=self.name,
                                                  paused=self.paused, state=self.state)
        else:
            sock = choose_socket(self.inst.dir, self.state)
            self.command = sim_command(self.inst.dir)
        if os.path.lexists(sock):
            os.unlink(sock)
        meta = {"name": self.name, "backend": self.backend, "socket": str(sock),
                "paused": self.paused, "created": time.time(),
                "machine_file": str(Path(getattr(self.machine, "file", "") or ".").resolve()),
                "argv": self.command, "vmctl": vmctl.__version__}
        self.inst.create(meta, self.machine.to_json())
        return sock

    def _spawn(self, foreground: bool) -> None:
        """Start backend and supervisor (see :mod:`vmctl.runtime.spawn`)."""
        assert self.lock.fd is not None
        self.reports = _Reports()
        try:
            if self.backend == "sim" and not foreground and spawn.can_fork_simulator():
                spawn.fork_simulator(str(self.inst.dir), self.lock.fd, self.machine, self.pm,
                                     self.reports.write_fd)
            else:
                self.proc = spawn.spawn_backend(str(self.inst.dir), self.lock.fd, self.command,
                                                _child_env(), foreground, self.reports.write_fd)
        finally:
            self.reports.close_writer()

    def _ended_early(self) -> str | None:
        """Why the supervisor is gone before the greeting, or None while it lives."""
        if self.reports is None or not self.reports.supervisor_gone():
            return None
        time.sleep(0.05)  # its last words (exit.json, the log) may still be on the way
        self.reports.poll()
        ex = self.inst.exit()
        if self.reports.errors:
            disk = _disk_problem(self.state)
            return self.reports.errors[-1] + (f"; {disk}" if disk else "")
        line = _failure_lines(self.inst, self.backend, self.command[0])
        return f"{describe_exit(ex)}: {line}" if ex else line

    def _wait_ready(self, sock: Path, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        delay = 0.002
        while True:
            ex = self.inst.exit()
            if ex is not None:
                line = _failure_lines(self.inst, self.backend, self.command[0])
                raise VmctlError(f"{self.backend} backend for {self.name!r} exited during "
                                 f"start-up ({describe_exit(ex)}): {line}",
                                 hint=_start_hint(self.backend))
            early = self._ended_early() if self.proc is None else None
            if early is not None:
                raise VmctlError(f"{self.backend} backend for {self.name!r} ended during "
                                 f"start-up: {early}", hint=_start_hint(self.backend, early))
            if self.proc is not None and self.proc.poll() is not None:
                line = _failure_lines(self.inst, self.backend, self.command[0])
                raise VmctlError(f"{self.backend} backend for {self.name!r} ended during "
                                 f"start-up (status {self.proc.returncode}): {line}",
                                 hint=_start_hint(self.backend))
            left = deadline - time.monotonic()
            if left <= 0:
                raise VmctlError(f"{self.backend} backend for {self.name!r} did not answer on "
                                 f"QMP within {timeout:.0f} s",
                                 hint=f"last log line: {_failure_lines(self.inst, self.backend, self.command[0])}")
            greeting = try_ready(str(sock), min(1.0, left), self.greeted)
            if greeting is not None:
                return greeting
            time.sleep(delay)
            delay = min(delay * 1.5, 0.005)

    def start(self, foreground: bool = False, timeout: float | None = None) -> Started:
        """Run steps 2-6; on failure nothing of this run is left behind."""
        if self.backend == "qemu":  # [boot] "guest:ARCH" files are fetched on first use
            from vmctl.guest import ensure_for_machine

            ensure_for_machine(self.machine, self.notify)
        t0 = time.monotonic()
        if not self.lock.acquire(wait=0.2):
            raise VmctlError(f"instance {self.name!r} is already taken: {_holder(self.inst)}",
                             hint=f"vmctl status {self.name}; vmctl stop {self.name} to free "
                                  f"the name, or pick another with --name")
        created = False
        try:
            sock = self._prepare()
            created = True
            self._spawn(foreground)
            greeting = self._wait_ready(sock, timeout or READY_TIMEOUT[self.backend])
        except BaseException:
            if created:
                _kill_all(self.inst)
                self._kill_reported()
                if self.proc is not None and self.proc.poll() is None:
                    self.proc.kill()
                self.inst.remove()
            raise
        finally:
            self.lock.release()
            if self.reports is not None:
                self.reports.close()
                self.reports = None
        pid = self._recorded_pid()
        to_greeting = (self.greeted[-1] - t0) if self.greeted else 0.0
        return Started(self.name, self.backend, str(sock), str(self.inst.dir), pid,
                       time.monotonic() - t0, greeting, to_greeting)

    def _kill_reported(self) -> None:
        """The processes the report pipe named (``proc.json`` may never have been written)."""
        if self.reports is None:
            return
        self.reports.poll()
        for pid in (self.reports.backend, self.reports.supervisor):
            if pid:
                try:
                    os.kill(pid, 9)
                except (ProcessLookupError, PermissionError):
                    pass

    def _recorded_pid(self) -> int | None:
        """The backend's pid (``proc.json`` is written before the backend can answer)."""
        return (self.inst.proc() or {}).get("pid")

    def follow(self, write: Callable[[str], None]) -> int:
        """Foreground mode: copy the log to ``write`` until the backend ends; clean up.

        Ctrl-C reaches the backend directly (same process group), which shuts down; the
        rest of its log is still shown.  A backend still there 10 s later is terminated.
        """
        assert self.proc is not None
        interrupted: float | None = None
        with open(self.inst.log_path, encoding="utf-8", errors="replace") as log:
            while True:
                try:
                    line = log.readline()
                    if line:
                        write(line.rstrip("\n"))
                        continue
                    if self.proc.poll() is not None:
                        for rest in log:
                            write(rest.rstrip("\n"))
                        break
                    if interrupted is not None and time.monotonic() - interrupted > 10:
                        self.proc.terminate()
                    time.sleep(0.05)
                except KeyboardInterrupt:
                    interrupted = interrupted or time.monotonic()
        ex = self.inst.exit() or {}
        self.inst.remove()
        code = ex.get("returncode")
        return int(code) if isinstance(code, int) else 1


def _start_hint(backend: str, cause: str = "") -> str:
    if "file system of" in cause:
        return "free space there, or set VMCTL_STATE_DIR to another file system"
    if backend == "qemu":
        return "check the machine against the installed QEMU: vmctl validate --backend qemu PATH"
    return "vmctl validate PATH checks the machine; VMCTL_DEBUG=1 shows plugin tracebacks"
