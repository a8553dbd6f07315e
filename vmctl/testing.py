"""``vmctl.testing``: a pytest plugin for vmctl's own tests and for plugin authors.

Loaded automatically (entry point ``pytest11``) wherever vmctl is installed; it defines
fixtures only, nothing autouse, so it never changes a project's tests by being present.

Fixtures
--------
``vmctl_isolated``
    Points ``VMCTL_STATE_DIR`` and ``XDG_RUNTIME_DIR`` at ``tmp_path``.
``vmctl_pm``
    A fresh plugin manager with every installed plugin.
``machine_from_toml``
    ``machine_from_toml(text, name="machine.toml", files={"base/x.toml": "…"})`` writes
    the TOML (and any extra files, e.g. includes) under ``tmp_path`` and returns the loaded
    :class:`~vmctl.config.machine.Machine`.
``golden``
    ``golden(name, text)`` compares ``text`` with ``tests/golden/NAME`` beside the test
    file; ``VMCTL_UPDATE_GOLDEN=1`` (or ``--update-golden``) rewrites the file instead.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("vmctl")
    group.addoption("--update-golden", action="store_true", default=False,
                    help="rewrite golden files instead of comparing with them")


@pytest.fixture
def vmctl_isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    state = tmp_path / "state"
    monkeypatch.setenv("VMCTL_STATE_DIR", str(state))
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "run"))
    return state


@pytest.fixture
def vmctl_pm():
    from vmctl.plugins import get_plugin_manager

    return get_plugin_manager()


@pytest.fixture
def machine_from_toml(tmp_path: Path, vmctl_pm) -> Callable[..., object]:
    from vmctl.config import load_machine

    def make(text: str, name: str = "machine.toml", files: dict[str, str] | None = None):
        for rel, content in (files or {}).items():
            p = tmp_path / rel
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(content)
        path = tmp_path / name
        path.write_text(text)
        return load_machine(path, vmctl_pm)

    return make


@pytest.fixture
def golden(request: pytest.FixtureRequest) -> Callable[[str, str], None]:
    update = request.config.getoption("--update-golden") or os.environ.get("VMCTL_UPDATE_GOLDEN") == "1"
    base = Path(request.node.fspath).parent / "golden"

    def check(name: str, text: str) -> None:
        path = base / name
        if update:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            return
        if not path.exists():
            pytest.fail(f"golden file {path} is missing; run pytest with --update-golden to create it")
        assert text == path.read_text(), f"output differs from {path}; --update-golden rewrites it"

    return check
