"""The supervisor: the backend's parent, so its exit status is never lost.

Run by path with the standard library only (``python -I -S supervisor.py …``: it starts
in milliseconds and imports nothing from vmctl)::

    supervisor.py [--detach] INSTANCE_DIR LOCK_FD -- BACKEND_ARGV...

1. ``--detach``: fork once and let the parent exit, so the supervisor belongs to no
   ``vmctl`` process (``run`` has already put it in a new session).
2. Start the backend with stdin ``/dev/null`` and stdout/stderr appended to ``log``;
   the instance lock descriptor ``LOCK_FD`` is inherited, so the lock is held while
   either process lives.
3. Record ``pid`` and ``proc.json`` (pids and ``/proc`` start times, to tell a live
   process from a reused pid).
4. Forward SIGTERM, SIGINT and SIGHUP to the backend (SIGINT only when detached: in the
   foreground the terminal's Ctrl-C reaches the backend itself).
5. When the backend ends, write ``exit.json`` (``returncode`` or ``signal``), then exit
   with the backend's status (128 + N for signal N).

A backend that cannot be executed (missing binary) is recorded in ``exit.json`` as
``{"returncode": 127, "error": "cannot execute …"}``.

The simulator supervises itself the same way (``python -m vmctl.sim --supervised``):
it runs :func:`setup`, forks, and the parent runs :func:`watch` — one Python start-up
fewer on the way to the QMP greeting.
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


def setup(folder: str, lock_fd: int, detach: bool) -> tuple:
    """Steps 1-2 up to the spawn: detach, open the log, keep the lock inheritable.

    Returns ``(log_fd, null_fd)``.  With ``detach`` this process's stdio is the log too.
    """
    if detach and os.fork():
        os._exit(0)
    log = os.open(os.path.join(folder, "log"),
                  os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
    null = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
    if detach:
        os.dup2(null, 0)
        os.dup2(log, 1)
        os.dup2(log, 2)
    os.set_inheritable(lock_fd, True)
    os.umask(0o177)  # the backend's QMP socket and files: 0600
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, _forward)
    if not detach:
        # In the foreground, Ctrl-C reaches the backend from the terminal already.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    return log, null


def watch(folder: str, child: int, cmd: list) -> int:
    """Steps 3-5 once the backend runs: record it, wait, record how it ended."""
    global _child
    _child = child
    me = os.getpid()
    with open(os.path.join(folder, ".pid.tmp"), "w", encoding="ascii") as f:
        f.write(f"{child}\n")
    os.replace(os.path.join(folder, ".pid.tmp"), os.path.join(folder, "pid"))
    _write_json(folder, "proc.json", {
        "pid": child, "start": _start_ticks(child), "supervisor_pid": me,
        "supervisor_start": _start_ticks(me), "started": time.time(), "argv": cmd})
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
    detach = bool(argv) and argv[0] == "--detach"
    if detach:
        argv = argv[1:]
    if len(argv) < 4 or argv[2] != "--":
        sys.stderr.write("usage: supervisor.py [--detach] INSTANCE_DIR LOCK_FD -- ARGV...\n")
        return 2
    folder, lock_fd, cmd = argv[0], int(argv[1]), argv[3:]
    log, null = setup(folder, lock_fd, detach)
    actions = [(os.POSIX_SPAWN_DUP2, null, 0), (os.POSIX_SPAWN_DUP2, log, 1),
               (os.POSIX_SPAWN_DUP2, log, 2)]
    try:
        child = os.posix_spawnp(cmd[0], cmd, os.environ, file_actions=actions)
    except OSError as exc:
        message = f"cannot execute {cmd[0]}: {exc.strerror}"
        os.write(log, f"vmctl: {message}\n".encode())
        _write_json(folder, "exit.json", {"returncode": 127, "signal": None,
                                          "error": message, "time": time.time()})
        return 127
    return watch(folder, child, cmd)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
