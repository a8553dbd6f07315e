"""Every key `--format json` prints is documented in docs/reference/json.md."""

from __future__ import annotations

import json
import re

import pytest

from tests.conftest import MACHINES, ROOT, run_vmctl

PAGE = (ROOT / "docs" / "reference" / "json.md").read_text()


def documented(command: str) -> set[str]:
    """Backquoted words in the section of ``vmctl COMMAND``."""
    match = re.search(rf"^## `vmctl {command}[^`]*`\n(.*?)(?=^## |\Z)", PAGE, re.S | re.M)
    assert match, f"docs/reference/json.md has no section for vmctl {command}"
    return set(re.findall(r"`([\w-]+)`", match.group(1)))


def keys(obj, depth: int = 1) -> set[str]:
    """Keys of an object (or of the objects in a list), ``depth`` levels down."""
    items = obj if isinstance(obj, list) else [obj]
    out: set[str] = set()
    for item in items:
        if isinstance(item, dict):
            out |= set(item)
            if depth > 1:
                for value in item.values():
                    if isinstance(value, list) and value and isinstance(value[0], dict):
                        out |= keys(value, depth - 1)
    return out


def run_json(*args: str):
    proc = run_vmctl(*args, "--format", "json")
    assert proc.stdout, proc.stderr
    return json.loads(proc.stdout)


@pytest.mark.parametrize("command, args, depth", [
    ("validate", [str(MACHINES / "p8-dual.toml")], 2),
    ("show", [str(MACHINES / "p9-dual.toml")], 1),
    ("plan", [str(MACHINES / "x86-passthrough.toml")], 2),
    ("plugins", [], 2),
])
def test_machine_commands(command, args, depth):
    out = run_json(command, *args)
    assert keys(out, depth) - documented(command) == set()


def test_host_check(fake_sysfs):
    fake_sysfs.pci("host")
    out = run_json("host", "check", "--sysfs-root", str(fake_sysfs.root))
    assert out and keys(out) - documented("host check") == set()


def test_running_instance_commands():
    started = run_json("run", str(MACHINES / "p9-dual.toml"), "--name", "json-keys")
    try:
        assert keys(started) - documented("run") == set()
        assert keys(run_json("ps")) - documented("ps") == set()
        status = run_json("status", "json-keys")
        assert keys(status) - documented("status") - documented("ps") == set()
    finally:
        run_vmctl("stop", "json-keys")
