"""Real shells driving the generated completion scripts, as a user's shell would.

``vmctl`` is "installed" as a console script in ``tmp_path/bin`` whose ``#!`` line is this
interpreter (what pip writes), so the scripts find Python the way they do on a user's
machine.  State and cache dirs live in ``tmp_path``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT

COMPLETIONS = ROOT / "completions"
FIXTURES = Path(__file__).resolve().parent / "fixtures"

CONSOLE_SCRIPT = """#!{python}
import sys
from vmctl.cli.main import main
sys.exit(main())
"""


class Shells:
    """Runs completion requests through bash, fish and zsh in one prepared environment."""

    def __init__(self, tmp: Path, python: str = sys.executable) -> None:
        self.tmp = tmp
        self.bin = tmp / "bin"
        self.bin.mkdir()
        exe = self.bin / "vmctl"
        exe.write_text(CONSOLE_SCRIPT.format(python=python))
        exe.chmod(0o755)
        self.cwd = tmp / "work"
        self.cwd.mkdir()
        self.state = tmp / "state"
        self.env = {k: v for k, v in os.environ.items()
                    if k not in ("VMCTL_COMPLETE_PYTHON", "PYTHONPATH", "VMCTL_DEBUG")}
        self.env.update(PATH=f"{self.bin}:{os.environ['PATH']}", HOME=str(tmp / "home"),
                        VMCTL_STATE_DIR=str(self.state), VMCTL_CACHE_DIR=str(tmp / "cache"),
                        XDG_CONFIG_HOME=str(tmp / "config"), XDG_DATA_HOME=str(tmp / "data"),
                        XDG_RUNTIME_DIR=str(tmp / "run"))
        (tmp / "home").mkdir()

    def with_plugin(self, folder: Path = FIXTURES) -> None:
        """Put a fake ``.dist-info`` plugin folder on the shells' Python path."""
        self.env["PYTHONPATH"] = str(folder)

    def instance(self, name: str, backend: str = "sim", exit_code: int | None = None) -> None:
        """An instance folder as ``vmctl run`` leaves it (``exit_code``: it has ended)."""
        d = self.state / name
        d.mkdir(parents=True)
        (d / "instance.json").write_text(json.dumps({"name": name, "backend": backend}))
        (d / "proc.json").write_text(json.dumps({"pid": os.getpid(), "start": None}))
        if exit_code is not None:
            (d / "proc.json").write_text(json.dumps({"pid": 2 ** 22 + 1, "start": 1}))
            (d / "exit.json").write_text(json.dumps({"returncode": exit_code, "signal": None}))

    # -- bash: the function driven by COMP_WORDS / COMP_CWORD ---------------------------
    def bash(self, *words: str, script: Path = COMPLETIONS / "vmctl.bash") -> list[str]:
        """COMPREPLY for ``words`` split as bash splits them (``--opt``, ``=``, ``val``)."""
        prog = (f'source {script}\n'
                'COMP_WORDS=("$@"); COMP_CWORD=$(( $# - 1 ))\n'
                'COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}\n'
                '_vmctl\nprintf "%s\\n" "${COMPREPLY[@]}"\n')
        out = self._run(["bash", "--norc", "--noprofile", "-c", prog, "bash", *words])
        return [line for line in out.splitlines() if line]

    def bash_spec(self) -> str:
        return self._run(["bash", "--norc", "--noprofile", "-c",
                          f"source {COMPLETIONS / 'vmctl.bash'}; complete -p vmctl"]).strip()

    # -- fish: complete -C ---------------------------------------------------------------
    def fish(self, line: str) -> list[tuple[str, str]]:
        """``complete -C LINE``: ``(candidate, description)`` pairs."""
        funcs = self.tmp / "fish-completions"
        if not funcs.is_dir():
            funcs.mkdir()
            shutil.copy(COMPLETIONS / "vmctl.fish", funcs / "vmctl.fish")
        prog = f"set -p fish_complete_path {funcs}; complete -C $argv[1]"
        out = self._run(["fish", "--no-config", "-c", prog, line])
        return [tuple((row + "\t").split("\t")[:2]) for row in out.splitlines() if row]

    def _run(self, argv: list[str]) -> str:
        need(argv[0])
        proc = subprocess.run(argv, capture_output=True, text=True, env=self.env, cwd=self.cwd,
                              timeout=60)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout


def need(program: str) -> None:
    """Fail (never skip) when a shell the tests drive is missing."""
    if shutil.which(program) is None:
        pytest.fail(f"{program} is not installed: ./scripts/install-test-deps installs it")


class Tmux:
    """An interactive shell in a detached tmux session: type, press TAB, read the screen."""

    def __init__(self, shells: Shells, command: list[str], ready: str) -> None:
        self.name = f"vmctl-test-{os.getpid()}-{time.monotonic_ns()}"
        self.socket = shells.tmp / "tmux.sock"
        self.env = shells.env
        self._tmux("new-session", "-d", "-s", self.name, "-x", "160", "-y", "50",
                   "-c", str(shells.cwd), *command)
        self.wait_for(ready)

    def _tmux(self, *args: str) -> str:
        proc = subprocess.run(["tmux", "-S", str(self.socket), *args], capture_output=True,
                              text=True, env=self.env, timeout=30)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    def screen(self) -> str:
        return self._tmux("capture-pane", "-p", "-N", "-t", self.name)  # -N: keep trailing blanks

    def type(self, *keys: str) -> None:
        for key in keys:
            if key in ("Tab", "Enter", "C-c", "C-u"):
                self._tmux("send-keys", "-t", self.name, key)
            else:
                self._tmux("send-keys", "-t", self.name, "-l", "--", key)

    def wait_for(self, text: str, timeout: float = 15.0) -> str:
        deadline = time.monotonic() + timeout
        while True:
            screen = self.screen()
            if text in screen:
                return screen
            if time.monotonic() > deadline:
                raise AssertionError(f"{text!r} never appeared on the screen:\n{screen}")
            time.sleep(0.05)

    def close(self) -> None:
        subprocess.run(["tmux", "-S", str(self.socket), "kill-server"], capture_output=True,
                       env=self.env, timeout=30)


@pytest.fixture
def shells(tmp_path: Path) -> Shells:
    return Shells(tmp_path)


@pytest.fixture
def tmux(shells: Shells):
    """``tmux(command, ready)`` starts an interactive shell; all are closed afterwards."""
    need("tmux")
    sessions: list[Tmux] = []

    def start(command: list[str], ready: str) -> Tmux:
        need(command[0] if command[0] != "env" else command[2])
        sessions.append(Tmux(shells, command, ready))
        return sessions[-1]

    yield start
    for s in sessions:
        s.close()
