"""The example plugin's tests use only vmctl's public test kit (``vmctl.testing``).

When the plugin is not pip-installed — vmctl's own CI runs these tests from a checkout —
``plugin_from_source`` makes it look installed for each test (a ``.dist-info`` with its
entry point on ``sys.path`` and ``PYTHONPATH``), and the test modules import the package
from ``src/``.  After ``pip install .`` neither is needed, and neither happens.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parent.parent

if importlib.util.find_spec("vmctl_i6300esb") is None:  # a checkout: let test modules import it
    sys.path.insert(0, str(PROJECT / "src"))

X86 = """[machine]
name = "wdt-guest"
arch = "x86_64"
type = "q35"
cpu = "max"
accel = "tcg"

[[device]]
kind = "i6300esb"
"""


@pytest.fixture(autouse=True)
def _installed(plugin_from_source, vmctl_isolated):
    plugin_from_source(PROJECT)


@pytest.fixture
def x86() -> str:
    """A minimal x86 machine with one watchdog (add device keys after it)."""
    return X86


@pytest.fixture
def project() -> Path:
    """This plugin's project folder (the one with pyproject.toml)."""
    return PROJECT


@pytest.fixture
def machine_file(tmp_path):
    """``machine_file(extra_device_keys="", text=X86)``: write a machine, return its path."""
    def write(device: str = "", text: str = X86, name: str = "wdt.toml") -> Path:
        path = tmp_path / name
        path.write_text(text + device)
        return path

    return write
