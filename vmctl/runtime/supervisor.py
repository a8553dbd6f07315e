"""The supervisor: the backend's parent, so its exit status is never lost.

Run by path with the standard library only (``python -I -S supervisor.py …``: it starts
in milliseconds and imports nothing from vmctl).  Two forms::

    supervisor.py [--detach] INSTANCE_DIR LOCK_FD -- BACKEND_ARGV...
    supervisor.py --adopt PID [--detach] INSTANCE_DIR LOCK_FD -- BACKEND_ARGV...

``vmctl run`` uses ``--adopt``: a forked copy of ``vmctl`` starts the backend at once
and then *becomes* the supervisor with ``execv`` (a process keeps its children across
exec), so the supervisor's own start-up is not on the way to the QMP greeting.  The first
form starts the backend itself.

1. ``--detach``: fork once and let the parent exit, so the supervisor belongs to no
   ``vmctl`` process (the caller has already put it in a new session).  With
   ``--adopt`` the caller has detached already and the flag only says so.
2. The backend runs with stdin ``/dev/null`` and stdout/stderr appended to ``log``; the
   instance lock descriptor ``LOCK_FD`` is inherited, so the lock is held while either
   process lives; the umask is 0177, so QEMU's socket is created 0600.
3. Record ``pid`` and ``proc.json`` (pids and ``/proc`` start times, to tell a live
   process from a reused pid) — with ``--adopt`` the forked ``vmctl`` did it before the
   exec, so both exist before the backend can answer on QMP.
4. Forward SIGTERM and SIGHUP to the backend, and SIGINT when detached (in the
   foreground the terminal's Ctrl-C reaches the backend itself).
   Then the console (:mod:`consolemux`, loaded by path): QEMU's console is logged and
   served on ``console.sock`` by a daemon thread; the simulator serves its own.
   And QMP (:mod:`qmpmux`, loaded by path): the supervisor holds QEMU's one monitor
   connection (``-qmp unix:…/qemu-qmp.sock``) and serves ``qmp.sock`` to any number of
   clients from a daemon thread.
5. When the backend ends, write ``exit.json`` (``returncode`` or ``signal``), then exit
   with the backend's status (128 + N for signal N).

A backend that cannot be executed (missing binary) is recorded in ``exit.json`` as
``{"returncode": 127, "error": "cannot execute …"}`` (see :func:`record_spawn_failure`).
"""

import os
import signal
import sys
import time

_child = 0


def _write_json(folder: str, name: str, data: dict) -> None:
    import json  # not before the backend is spawned: every millisecond is start-up time

    tmp = os.path.join(folder, f".{name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(data, f)
    os.replace(tmp, os.path.join(folder, name))


def _start_ticks(pid: int):
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read().decode("ascii", "replace")
    except OSError:
        return None
    return int(raw[raw.rfind(")") + 2:].split()[19])


def _forward(signum: int, _frame: object) -> None:
    if _child:
        try:
            os.kill(_child, signum)
        except ProcessLookupError:
            pass
    else:
        os._exit(128 + signum)


def _signals(forward_sigint: bool) -> None:
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _forward)
    signal.signal(signal.SIGINT, _forward if forward_sigint else signal.SIG_IGN)


def open_log(folder: str) -> tuple:
    """``(log_fd, null_fd)``: the instance log (append) and ``/dev/null``."""
    log = os.open(os.path.join(folder, "log"),
                  os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
    null = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
    return log, null


def spawn(cmd: list, log: int, null: int, env=None) -> int:
    """Start the backend (``PATH`` searched) with its stdio on ``null``/``log``."""
    actions = [(os.POSIX_SPAWN_DUP2, null, 0), (os.POSIX_SPAWN_DUP2, log, 1),
               (os.POSIX_SPAWN_DUP2, log, 2)]
    return os.posix_spawnp(cmd[0], cmd, os.environ if env is None else env,
                           file_actions=actions)


def record_spawn_failure(folder: str, log: int, cmd: list, exc: OSError) -> None:
    message = f"cannot execute {cmd[0]}: {exc.strerror}"
    os.write(log, f"vmctl: {message}\n".encode())
    _write_json(folder, "exit.json", {"returncode": 127, "signal": None,
                                      "error": message, "time": time.time()})


def record_start(folder: str, child: int, cmd: list) -> None:
    """Step 3: ``pid`` and ``proc.json`` for the backend ``child`` of this process."""
    me = os.getpid()
    with open(os.path.join(folder, ".pid.tmp"), "w", encoding="ascii") as f:
        f.write(f"{child}\n")
    os.replace(os.path.join(folder, ".pid.tmp"), os.path.join(folder, "pid"))
    _write_json(folder, "proc.json", {
        "pid": child, "start": _start_ticks(child), "supervisor_pid": me,
        "supervisor_start": _start_ticks(me), "started": time.time(), "argv": cmd})


def _start_sibling(name: str, *args: object) -> None:
    """``start(*args)`` of the stdlib-only module ``name`` of this folder, loaded by path
    (``-I`` puts no folder on ``sys.path``); its failure is logged, never fatal."""
    try:
        import importlib.util

        path = os.path.join(os.path.dirname(os.path.abspath(__file__)), name + ".py")
        spec = importlib.util.spec_from_file_location(f"_vmctl_{name}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        module.start(*args)
    except Exception as exc:  # noqa: BLE001 - the backend is watched whatever happens
        sys.stderr.write(f"vmctl: {name}: {type(exc).__name__}: {exc}\n")


def watch(folder: str, child: int, cmd: list, record: bool = True) -> int:
    """Steps 3-5 once the backend runs: record it, wait, record how it ended."""
    global _child
    _child = child
    if record:
        record_start(folder, child, cmd)
    _start_sibling("qmpmux", folder, child, cmd)  # first: vmctl run waits for QMP
    _start_sibling("consolemux", folder, child, cmd)
    while True:
        try:
            _pid, status = os.waitpid(child, 0)
            break
        except ChildProcessError:
            status = 0
            break
    code = os.waitstatus_to_exitcode(status)
    record = {"returncode": code if code >= 0 else None, "signal": None,
              "time": time.time(), "pid": child}
    if code < 0:
        try:
            record["signal"] = signal.Signals(-code).name
        except ValueError:
            record["signal"] = f"signal {-code}"
    _write_json(folder, "exit.json", record)
    return code if code >= 0 else 128 - code


def main(argv: list) -> int:
    adopt = 0
    detach = False
    if len(argv) >= 2 and argv[0] == "--adopt":
        adopt, argv = int(argv[1]), argv[2:]
    if argv and argv[0] == "--detach":
        detach, argv = True, argv[1:]
    if len(argv) < 4 or argv[2] != "--":
        sys.stderr.write("usage: supervisor.py [--adopt PID] [--detach] INSTANCE_DIR LOCK_FD "
                         "-- ARGV...\n")
        return 2
    folder, lock_fd, cmd = argv[0], int(argv[1]), argv[3:]
    if adopt:
        global _child
        _child = adopt
        _signals(forward_sigint=detach)
        return watch(folder, adopt, cmd, record=False)  # recorded before the exec
    if detach and os.fork():
        os._exit(0)
    log, null = open_log(folder)
    if detach:
        os.dup2(null, 0)
        os.dup2(log, 1)
        os.dup2(log, 2)
    os.set_inheritable(lock_fd, True)
    os.umask(0o177)
    _signals(forward_sigint=detach)
    try:
        child = spawn(cmd, log, null)
    except OSError as exc:
        record_spawn_failure(folder, log, cmd, exc)
        return 127
    return watch(folder, child, cmd)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
