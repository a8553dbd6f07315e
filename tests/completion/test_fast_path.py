"""A TAB is cheap: no typer app, no Textual, no QMP stack, no entry-point scan once the
plugin cache is warm; and the cache follows installs and removals."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.completion.conftest import FIXTURES

PROBE = """
import json, sys
sys.argv = ["vmctl.complete", *{argv!r}]
import runpy
try:
    runpy.run_module("vmctl.complete", run_name="__main__")
except SystemExit:
    pass
heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("typer", "textual", "rich", "pluggy")
               or m.startswith(("qemu.qmp", "importlib.metadata", "asyncio")))
sys.stderr = sys.__stderr__
sys.stderr.write("\\nMODULES=" + json.dumps(heavy) + "\\n")
"""


def request(argv: list[str], env: dict[str, str]) -> tuple[str, list[str]]:
    proc = subprocess.run([sys.executable, "-P", "-c", PROBE.format(argv=argv)], capture_output=True,
                          text=True, env=env, timeout=60)
    line = [x for x in proc.stderr.splitlines() if x.startswith("MODULES=")][-1]
    return proc.stdout, json.loads(line.removeprefix("MODULES="))


def env_for(tmp_path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return {**env, "VMCTL_CACHE_DIR": str(tmp_path / "cache"), "VMCTL_STATE_DIR": str(tmp_path / "s"),
            **extra}


def test_warm_requests_import_nothing_heavy(tmp_path):
    env = env_for(tmp_path)
    request(["fish", "1", "vmctl", ""], env)  # first TAB: fills the plugin cache
    for argv in (["bash", "1", "vmctl", "va"], ["zsh", "2", "vmctl", "validate", "--"],
                 ["fish", "4", "vmctl", "export", "m.toml", "--format", ""],
                 ["bash", "2", "vmctl", "show", "m"], ["fish", "1", "vmctl", ""]):
        out, heavy = request(argv, env)
        assert out.startswith(("values", "files")), out
        assert heavy == [], f"{argv} imported {heavy}"


def test_installing_and_removing_a_plugin_refreshes_the_cache(tmp_path):
    plain = env_for(tmp_path)
    out, _ = request(["fish", "1", "vmctl", ""], plain)
    assert "demo\t" not in out
    with_plugin = env_for(tmp_path, PYTHONPATH=str(FIXTURES))
    out, heavy = request(["fish", "1", "vmctl", ""], with_plugin)
    assert "demo\thost resources at the prompt" in out
    assert "pluggy" in heavy  # the install changed: the cache was rebuilt once
    out, heavy = request(["fish", "1", "vmctl", ""], with_plugin)
    assert "demo\t" in out and heavy == []
    out, _ = request(["fish", "1", "vmctl", ""], plain)
    assert "demo\t" not in out


def test_completion_prints_nothing_on_stderr_even_with_a_broken_plugin(tmp_path):
    broken = tmp_path / "broken"
    (broken / "brk_dist-0.1.dist-info").mkdir(parents=True)
    (broken / "brk_dist-0.1.dist-info" / "METADATA").write_text("Metadata-Version: 2.1\nName: brk\nVersion: 0.1\n")
    (broken / "brk_dist-0.1.dist-info" / "entry_points.txt").write_text("[vmctl]\nbrk = brk_missing\n")
    env = env_for(tmp_path, PYTHONPATH=str(broken))
    proc = subprocess.run([sys.executable, "-P", "-m", "vmctl.complete", "bash", "1", "vmctl", ""],
                          capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 0 and proc.stderr == ""
    assert "validate" in proc.stdout.split()
    debug = subprocess.run([sys.executable, "-P", "-m", "vmctl.complete", "bash", "1", "vmctl", ""],
                           capture_output=True, text=True, timeout=60,
                           env={**env, "VMCTL_DEBUG": "1", "VMCTL_CACHE_DIR": str(tmp_path / "c2")})
    assert "brk" in debug.stderr  # VMCTL_DEBUG shows what completion swallows


def test_usage_error_exits_2():
    proc = subprocess.run([sys.executable, "-m", "vmctl.complete", "tcsh", "1", "vmctl"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "SHELL CWORD" in proc.stderr
