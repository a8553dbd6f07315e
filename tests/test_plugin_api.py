"""The plugin API is declared: plugins import vmctl only through ``vmctl`` and ``vmctl.api``.

Every Python file under ``plugins/`` (the built-ins and the example third-party plugin) is
read as a syntax tree; an import of any other ``vmctl.*`` module fails the test with the
file and line.  Test files of a plugin may also use ``vmctl.testing``, the test-side API.
"""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

import vmctl.api as api

ROOT = Path(__file__).resolve().parent.parent
PLUGIN_FILES = sorted((ROOT / "plugins").rglob("*.py"))


def _vmctl_imports(path: Path) -> list[tuple[int, str, list[str]]]:
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name, []) for a in node.names
                    if a.name == "vmctl" or a.name.startswith("vmctl.")]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module and (
                node.module == "vmctl" or node.module.startswith("vmctl.")):
            out.append((node.lineno, node.module, [a.name for a in node.names]))
    return out


def test_there_are_plugin_files_to_check():
    assert len(PLUGIN_FILES) > 50


@pytest.mark.parametrize("path", PLUGIN_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_plugins_import_vmctl_only_through_the_api(path: Path):
    in_tests = "tests" in path.relative_to(ROOT).parts
    allowed = {"vmctl.api"} | ({"vmctl.testing"} if in_tests else set())
    for line, module, names in _vmctl_imports(path):
        where = f"{path.relative_to(ROOT)}:{line}"
        if module == "vmctl":
            assert names and set(names) <= {"hookimpl"}, f"{where}: from vmctl import {names}"
        else:
            assert module in allowed, f"{where}: imports {module}; use vmctl.api"
        if module == "vmctl.api":
            assert set(names) <= set(api.__all__), f"{where}: {set(names) - set(api.__all__)}"


@pytest.mark.parametrize("name", api.__all__)
def test_every_api_name_resolves(name: str):
    value = getattr(api, name)
    assert value is not None
    where = api._WHERE[name]
    assert getattr(importlib.import_module(where), name) is value


def test_an_unknown_name_says_what_the_api_is():
    with pytest.raises(AttributeError, match="the plugin API is: .*VmctlError"):
        api.NoSuchThing  # noqa: B018


def test_records_do_not_pull_in_textual_or_typer():
    code = ("import sys; from vmctl.api import Option, Section, Machine, ModelError, Sysfs; "
            "bad = [m for m in ('textual', 'typer', 'qemu.qmp', 'asyncio') if m in sys.modules]; "
            "print(bad); sys.exit(1 if bad else 0)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_completion_records_and_legacy_tuples_both_complete():
    from vmctl.complete.sources import _item

    assert _item(api.Completion("05.0004", "free")) == ("05.0004", "free")
    assert _item(("0000:01:00.0", "group 1")) == ("0000:01:00.0", "group 1")


def test_fake_hosts_come_from_plugins(tmp_path, monkeypatch):
    from vmctl.plugins import get_plugin_manager
    from vmctl.testing import FakeSysfs

    fake = FakeSysfs(tmp_path / "a", get_plugin_manager()).pci("viable")
    assert (fake.root / "sys/bus/pci/devices/0000:01:00.0").exists()
    with pytest.raises(ValueError, match="unknown PCI scenario 'nope'"):
        FakeSysfs(tmp_path / "b", get_plugin_manager()).pci("nope")
    monkeypatch.setenv("VMCTL_DISABLE_PLUGINS", "vfio")
    with pytest.raises(RuntimeError, match="no installed plugin builds fake 'pci' hosts; offered: ap"):
        FakeSysfs(tmp_path / "c", get_plugin_manager()).pci("viable")


BUILT_IN_PACKAGES = ("vmctl_spapr_irq", "vmctl_vfio", "vmctl_vfio_ap", "vmctl_async_pf")


@pytest.mark.parametrize("path", sorted((ROOT / "vmctl").rglob("*.py")),
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_the_host_names_no_built_in_plugin_package(path: Path):
    """vmctl reaches its built-in plugins the way it reaches anyone's: through entry points."""
    text = path.read_text()
    for package in BUILT_IN_PACKAGES:
        assert package not in text, f"{path.relative_to(ROOT)} names {package}"


def test_the_completion_table_holds_vmctl_s_own_commands_only():
    """Plugin command groups (built-in ones too) complete from the plugin-facts cache."""
    from vmctl.complete.table import TABLE

    assert {"ap", "vfio"}.isdisjoint(TABLE["commands"])
    assert "'host:" not in repr(TABLE)  # host-resource kinds are the plugins' words


def _hookspecs():
    from vmctl import hookspecs

    return [fn for name, fn in vars(hookspecs).items() if name.startswith("vmctl_") and callable(fn)]


@pytest.mark.parametrize("spec", _hookspecs(), ids=lambda f: f.__name__)
def test_every_hook_is_documented_like_pytest_s(spec):
    """When it is called, every parameter by name, what it returns, collected or first
    result, and a paste-ready example that at least parses."""
    import inspect
    import textwrap

    doc = inspect.getdoc(spec) or ""
    assert "**Called**" in doc and "**Returns**" in doc, spec.__name__
    assert "**collected**" in doc or "firstresult" in doc or "results are ignored" in doc
    params = list(inspect.signature(spec).parameters)
    if params:
        for name in params:
            assert f"\n``{name}``\n" in doc, f"{spec.__name__}: parameter {name} undocumented"
    else:
        assert "**Parameters**: none." in doc
    assert "Example::" in doc, spec.__name__
    example = textwrap.dedent(doc.split("Example::", 1)[1].split("\n\n\n")[0]).strip("\n")
    compile(example, spec.__name__, "exec")
    assert f"def {spec.__name__}(" in example


def test_config_and_qemu_do_not_import_each_other():
    """The validation service (vmctl.validation) is the one module that joins them."""
    def imports(package: str) -> set[str]:
        out = set()
        for path in (ROOT / "vmctl" / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    out.add(node.module)
        return out

    assert not {m for m in imports("config") if m.startswith("vmctl.qemu")}
    assert not {m for m in imports("qemu") if m.startswith("vmctl.config.validate")}
