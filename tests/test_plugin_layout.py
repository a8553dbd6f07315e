"""Every plugin has the same layout (docs/plugins/layout.md), checked on the syntax tree.

* the top level of a plugin package holds only the concern modules (``plugin.py``,
  ``schema.py``, … ``complete.py``); the kernel-side state machine is ``model.py``, or a
  ``model/`` package when it has parts;
* ``plugin.py`` holds hook implementations only; ``vmctl_NAME`` delegates to a function
  called ``NAME`` in its concern module (cheap guards may read ``.schema``/``.settings``);
* imports inside a plugin are relative, and they form no cycle (lazy imports included).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

#: The concern modules, in the order the tutorial introduces them.
CONCERNS = ("plugin", "schema", "settings", "validate", "predict", "qemu", "host", "hostplan",
            "fakesys", "model", "sim", "live", "panel", "cli", "complete")

#: Hook → the concern module its implementation delegates to.
TARGETS = {
    "vmctl_sections": "schema", "vmctl_device_kinds": "schema",
    "vmctl_validate_machine": "validate", "vmctl_validate_fleet": "validate",
    "vmctl_predict": "predict",
    "vmctl_qemu_args": "qemu", "vmctl_libvirt_xml": "qemu", "vmctl_export_formats": "qemu",
    "vmctl_host_check": "host", "vmctl_host_steps": "hostplan",
    "vmctl_fake_kernel": "fakesys", "vmctl_fake_hosts": "fakesys",
    "vmctl_sim_devices": "sim",
    "vmctl_live_probe": "live", "vmctl_tui_panels": "live",
    "vmctl_cli_commands": "cli", "vmctl_complete": "complete",
}

#: Modules a hook implementation may read for a cheap guard before it delegates.
GUARDS = {"schema", "settings"}


def _packages() -> list[Path]:
    out = [p for p in sorted((ROOT / "plugins").iterdir()) if (p / "plugin.py").is_file()]
    out += [p for p in sorted((ROOT / "plugins").glob("*/src/*")) if (p / "plugin.py").is_file()]
    return out


PACKAGES = _packages()


def _id(p: Path) -> str:
    return p.name


def _modules(pkg: Path) -> dict[str, Path]:
    """Dotted names inside the package (``model.container``) → file."""
    out = {}
    for f in sorted(pkg.rglob("*.py")):
        rel = f.relative_to(pkg).with_suffix("")
        parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
        out[".".join(parts)] = f
    return out


def test_the_built_ins_and_the_example_are_checked():
    names = {p.name for p in PACKAGES}
    assert {"vmctl_spapr_irq", "vmctl_vfio", "vmctl_vfio_ap", "vmctl_async_pf",
            "vmctl_i6300esb"} <= names


@pytest.mark.parametrize("pkg", PACKAGES, ids=_id)
def test_top_level_holds_only_concern_modules(pkg: Path):
    extra = []
    for entry in sorted(pkg.iterdir()):
        if entry.name in ("__pycache__", "__init__.py") or entry.name.startswith("."):
            continue
        stem = entry.stem if entry.is_file() else entry.name
        if entry.is_file() and entry.suffix != ".py":
            continue
        if stem not in CONCERNS or (entry.is_dir() and stem != "model"):
            extra.append(entry.name)
    assert not extra, (f"{pkg.name}: {extra} are not concern modules "
                       f"({', '.join(CONCERNS)}); kernel-side parts go under model/")


@pytest.mark.parametrize("pkg", PACKAGES, ids=_id)
def test_plugin_py_holds_hookimpls_that_delegate_by_name(pkg: Path):
    path = pkg / "plugin.py"
    tree = ast.parse(path.read_text(), str(path))
    for node in tree.body:
        where = f"{pkg.name}/plugin.py:{node.lineno}"
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            continue  # the docstring
        if isinstance(node, ast.ImportFrom) and node.module in ("__future__", "vmctl"):
            continue
        assert isinstance(node, ast.FunctionDef), f"{where}: only hook implementations here"
        decorators = [ast.unparse(d) for d in node.decorator_list]
        assert decorators and decorators[0].startswith("hookimpl"), \
            f"{where}: {node.name} is not a hook implementation"
        target = TARGETS.get(node.name)
        assert target, f"{where}: {node.name} is not a vmctl hook"
        wanted = node.name.removeprefix("vmctl_")
        for imp in ast.walk(node):
            if not isinstance(imp, ast.ImportFrom):
                continue
            if imp.module == "vmctl.api":
                continue  # records (PanelSpec, CliCommand, …)
            assert imp.level == 1, f"{where}: import {imp.module} relatively"
            names = [a.name for a in imp.names]
            if imp.module in GUARDS and imp.module != target:
                continue
            assert imp.module == target and names == [wanted], \
                f"{where}: {node.name} must delegate to .{target}.{wanted}, not .{imp.module}.{names}"


def _edges(pkg: Path) -> dict[str, set[str]]:
    modules = _modules(pkg)
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        is_pkg = path.name == "__init__.py"
        here = name.split(".") if name else []
        package = here if is_pkg else here[:-1]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(node, ast.ImportFrom):
                continue
            if node.level:
                base = package[: len(package) - (node.level - 1)] if node.level > 1 else package
                mod = base + (node.module.split(".") if node.module else [])
            elif node.module and node.module.split(".")[0] == pkg.name:
                mod = node.module.split(".")[1:]
            else:
                continue
            for alias in node.names:
                sub = ".".join(mod + [alias.name])
                target = sub if sub in modules else ".".join(mod)
                if target in modules and target != name:
                    graph[name].add(target)
    return graph


@pytest.mark.parametrize("pkg", PACKAGES, ids=_id)
def test_imports_inside_a_plugin_are_relative(pkg: Path):
    for name, path in _modules(pkg).items():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                assert node.module.split(".")[0] != pkg.name, \
                    f"{path.relative_to(ROOT)}:{node.lineno}: import {node.module} relatively"
            if isinstance(node, ast.Import):
                for alias in node.names:
                    assert alias.name.split(".")[0] != pkg.name, \
                        f"{path.relative_to(ROOT)}:{node.lineno}: import {alias.name} relatively"


@pytest.mark.parametrize("pkg", PACKAGES, ids=_id)
def test_no_import_cycle_inside_a_plugin(pkg: Path):
    graph = _edges(pkg)
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycle = stack[stack.index(nxt):] + [nxt]
                pytest.fail(f"{pkg.name}: import cycle {' → '.join(cycle)}")
            if nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
