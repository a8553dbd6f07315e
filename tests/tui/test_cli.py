"""``vmctl monitor`` / ``vmctl top`` as commands: light imports, clear refusals."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.tui.conftest import ROOT

# Until vmctl.cli.main lists "tui" (and "run") itself, register them the way main.py will.
SHIM = ("import sys; from vmctl.cli import main as M; "
        "M.COMMAND_MODULES = tuple(dict.fromkeys(M.COMMAND_MODULES + ('run', 'tui'))); "
        "M.main(sys.argv[1:])")

PROBE = """
import json, sys
from vmctl.cli import main as M
M.COMMAND_MODULES = tuple(dict.fromkeys(M.COMMAND_MODULES + ('tui',)))
try:
    M.main({args!r})
except SystemExit:
    pass
heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('textual', 'rich', 'asyncio')
               or m.startswith('qemu.qmp'))
sys.stderr.write('\\nMODULES=' + json.dumps(heavy) + '\\n')
"""


def vmctl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", SHIM, *args], capture_output=True, text=True,
                          cwd=ROOT, env=dict(os.environ), timeout=60, stdin=subprocess.DEVNULL)


@pytest.mark.parametrize("args", [["--help"], ["monitor", "--help"], ["top", "--help"],
                                  ["monitor", "nope"]])
def test_the_tui_commands_import_neither_textual_nor_qmp_until_they_run(args):
    proc = subprocess.run([sys.executable, "-c", PROBE.format(args=args)], capture_output=True,
                          text=True, cwd=ROOT, timeout=60)
    line = [x for x in proc.stderr.splitlines() if x.startswith("MODULES=")][-1]
    assert json.loads(line.removeprefix("MODULES=")) == []


def test_help_lists_both_commands_and_their_keys():
    proc = vmctl("--help")
    assert proc.returncode == 0
    assert "monitor" in proc.stdout and "top" in proc.stdout
    mon = vmctl("monitor", "--help")
    assert "p pause/resume" in mon.stdout and "--interval" in mon.stdout


def test_monitor_of_an_unknown_instance_lists_the_running_ones(start):
    start("p9-dual.toml", name="alpha", paused=True)
    proc = vmctl("monitor", "beta")
    assert proc.returncode == 1
    assert "error: no instance named 'beta'" in proc.stderr
    assert "hint: instances: alpha" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_without_a_terminal_the_tui_refuses_and_points_at_the_json_commands(start):
    start("p9-dual.toml", name="alpha", paused=True)
    for args in (("monitor", "alpha"), ("top",)):
        proc = vmctl(*args)
        assert proc.returncode == 2, proc.stderr
        assert "needs an interactive terminal" in proc.stderr
        assert "--format json" in proc.stderr


@pytest.mark.parametrize("value", ["0", "120"])
def test_poll_interval_out_of_range_is_a_usage_error(value):
    proc = vmctl("top", "--interval", value)
    assert proc.returncode == 2
    assert "out of range" in proc.stderr and "0.05 to 60" in proc.stderr
