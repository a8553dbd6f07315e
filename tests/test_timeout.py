"""The suite's per-test timeout: a hung test fails alone, with its stack, and the rest run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_a_hanging_test_fails_alone_with_a_stack(tmp_path: Path):
    (tmp_path / "test_hang.py").write_text(
        "import time\n"
        "def test_hangs():\n    time.sleep(600)\n"
        "def test_after():\n    assert True\n")
    (tmp_path / "pytest.ini").write_text("[pytest]\ntimeout = 2\n")
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           str(tmp_path)], capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert proc.returncode == 1
    assert "1 failed, 1 passed" in proc.stdout
    assert "Timeout" in proc.stdout and "time.sleep(600)" in proc.stdout


def test_the_suite_configures_a_timeout():
    import tomllib

    conf = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]
    assert 0 < conf["timeout"] <= 300
