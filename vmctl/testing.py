"""``vmctl.testing``: a pytest plugin for vmctl's own tests and for plugin authors.

Loaded automatically (entry point ``pytest11``) wherever vmctl is installed; it defines
fixtures only, nothing autouse, so it never changes a project's tests by being present.
A plugin author tests a device kind without hardware, QEMU or vmctl's source::

    def test_my_kind_lowers(machine_from_toml, vmctl_pm):
        m = machine_from_toml(MY_TOML)
        assert "-device" in build_argv(m, vmctl_pm).args

    def test_my_device_in_the_simulator(sim_instance):
        vm = sim_instance(MY_TOML)                    # a detached simulator, like `vmctl run`
        vm.qmp.execute("__org.vmctl_my-command", value=3)
        assert vm.qmp.wait_event("__org.vmctl_MY_EVENT")["data"] == {...}

Fixtures
--------
``vmctl_isolated``
    Points ``VMCTL_STATE_DIR``, ``VMCTL_CACHE_DIR`` and ``XDG_RUNTIME_DIR`` at ``tmp_path``.
``vmctl_pm``
    A fresh plugin manager with every installed plugin.
``vmctl_cli``
    ``vmctl_cli("validate", path)`` runs the real CLI in a subprocess (a CompletedProcess).
``plugin_from_source``
    ``plugin_from_source(project_dir)`` makes a plugin's checkout look pip-installed (a
    ``.dist-info`` with its entry points on the path), for this test and its subprocesses.
``machine_from_toml``
    ``machine_from_toml(text, name="machine.toml", files={"base/x.toml": "…"})`` writes
    the TOML (and any extra files, e.g. includes) under ``tmp_path`` and returns the loaded
    :class:`~vmctl.config.machine.Machine`.
``fake_sysfs``
    A :class:`FakeSysfs` under ``tmp_path/sysfs``: PCI functions with IOMMU groups
    (``.pci("viable")``), the s390 AP bus and matrix (``.ap("shared-apqn")``), or your own
    attributes (``.write(...)``), in the kernel's layout, with the plugins' fake-kernel
    side effects on writes (``.sysfs``).
``sim_instance``
    ``sim_instance(toml_or_path, name=None, paused=False)`` starts the machine on the
    embedded simulator (state in ``tmp_path``) and returns a :class:`SimInstance` with a
    connected QMP client (``.qmp``); every instance is stopped after the test.
``golden``
    ``golden(name, text)`` compares ``text`` with ``golden/NAME`` beside the test file;
    ``VMCTL_UPDATE_GOLDEN=1`` (or ``--update-golden``) rewrites the file instead.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("vmctl")
    group.addoption("--update-golden", action="store_true", default=False,
                    help="rewrite golden files instead of comparing with them")


@pytest.fixture
def vmctl_isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    state = tmp_path / "state"
    monkeypatch.setenv("VMCTL_STATE_DIR", str(state))
    monkeypatch.setenv("VMCTL_CACHE_DIR", str(tmp_path / "cache"))
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
def vmctl_cli(vmctl_isolated: Path) -> Callable[..., Any]:
    """``vmctl_cli(*args, cwd=None)``: run the real ``vmctl`` in a subprocess, as a user would.

    Returns the ``subprocess.CompletedProcess`` (text); state and caches are in ``tmp_path``.
    """
    import subprocess
    import sys

    def run(*args: str, cwd: Path | None = None, timeout: float = 60) -> Any:
        return subprocess.run([sys.executable, "-m", "vmctl", *map(str, args)], capture_output=True,
                              text=True, cwd=cwd, timeout=timeout, env=dict(os.environ))

    return run


# -- a plugin under development, as if installed ------------------------------------------
def _dist_info(project: Path, into: Path) -> list[Path]:
    """Write ``NAME-VERSION.dist-info`` for ``project``'s pyproject; the paths to import from."""
    import tomllib

    meta = tomllib.loads((project / "pyproject.toml").read_text())
    proj = meta["project"]
    name, version = proj["name"], proj.get("version", "0")
    info = into / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True, exist_ok=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    groups = proj.get("entry-points", {})
    (info / "entry_points.txt").write_text("".join(
        f"[{group}]\n" + "".join(f"{k} = {v}\n" for k, v in eps.items()) + "\n"
        for group, eps in groups.items()))
    where = meta.get("tool", {}).get("setuptools", {}).get("packages", {}).get("find", {}).get("where")
    return [into, *(project / w for w in (where or ["."]))]


@pytest.fixture
def plugin_from_source(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[Path], bool]:
    """``plugin_from_source(project_dir)``: make a plugin's checkout look pip-installed.

    Reads ``project_dir/pyproject.toml`` and puts a ``.dist-info`` with its entry points,
    and its package folder, on ``sys.path`` and ``PYTHONPATH`` (so ``vmctl`` subprocesses
    and the simulator see it too).  Does nothing (returns False) when the distribution is
    really installed.  Undone after the test.
    """
    from importlib import metadata

    def install(project: Path) -> bool:
        import tomllib

        name = tomllib.loads((project / "pyproject.toml").read_text())["project"]["name"]
        try:
            metadata.distribution(name)
            return False
        except metadata.PackageNotFoundError:
            pass
        paths = _dist_info(project.resolve(), tmp_path / "site")
        for p in reversed(paths):
            monkeypatch.syspath_prepend(str(p))
        old = os.environ.get("PYTHONPATH", "")
        monkeypatch.setenv("PYTHONPATH", os.pathsep.join([*map(str, paths), *filter(None, [old])]))
        return True

    return install


# -- fake sysfs ---------------------------------------------------------------------------

class FakeSysfs:
    """A fake host tree at :attr:`root`, shaped like the kernel's ``/sys``, ``/dev``, ``/proc``.

    Build it with one or more of:

    ``pci(scenario="viable")``
        PCI functions, drivers and IOMMU groups (scenarios ``host``, ``viable``,
        ``non-viable``, ``no-iommu``, ``iommufd``: a GPU and its audio function sharing
        group 1 behind a root port, a NIC alone in group 8); or ``pci(devices=[...])`` with
        the device records of the plugin that offers ``pci`` (vfio's ``FakeDevice``).
    ``ap(scenario=None, **options)``
        the s390 AP bus, masks and matrix mdevs (scenarios such as ``shared-apqn``; or
        ``adapters=``, ``domains=``, ``mdevs=`` … as the vfio-ap plugin's fake host takes).
    ``host(kind, scenario=None, **options)``
        any fake host an installed plugin offers through ``vmctl_fake_hosts`` (``pci`` and
        ``ap`` above are two of them; the host itself builds none).
    ``write(kpath, value)``, ``symlink(kpath, target)``, ``mkdir(kpath)``
        your own device's attributes (links stored relative, as sysfs does).

    :attr:`sysfs` reads and writes the tree through vmctl's :class:`~vmctl.host.sysfs.Sysfs`
    with every installed plugin's fake-kernel handlers, so a write to ``unbind`` moves a
    device off its driver as the kernel would; pass ``str(fake.root)`` as ``--sysfs-root``
    to the CLI.
    """

    def __init__(self, root: Path, pm: Any) -> None:
        self.root = root
        self._pm = pm

    @property
    def sysfs(self) -> Any:
        from vmctl.host.sysfs import Sysfs
        from vmctl.plugins import call_flat

        return Sysfs(self.root, call_flat(self._pm, "vmctl_fake_kernel"))

    def host(self, kind: str, scenario: str | None = None, **options: Any) -> FakeSysfs:
        """Build the fake host ``kind`` that an installed plugin offers (``vmctl_fake_hosts``)."""
        from vmctl.plugins import call_flat

        offered = {}
        for fake in call_flat(self._pm, "vmctl_fake_hosts"):
            offered.setdefault(fake.kind, fake)
        if kind not in offered:
            raise RuntimeError(f"no installed plugin builds fake {kind!r} hosts; offered: "
                               f"{', '.join(sorted(offered)) or 'none'}")
        offered[kind].build(self.root, scenario, **options)
        return self

    def pci(self, scenario: str = "viable", devices: list[Any] | None = None,
            **options: Any) -> FakeSysfs:
        return self.host("pci", scenario, devices=devices, **options)

    def ap(self, scenario: str | None = None, **options: Any) -> FakeSysfs:
        return self.host("ap", scenario, **options)

    def _raw(self) -> Any:
        from vmctl.host.sysfs import Sysfs, mark_fake

        if not (self.root / ".vmctl-fake-sysfs").is_file():
            mark_fake(self.root, "vmctl.testing fake tree")
        return Sysfs(self.root)

    def write(self, kpath: str, value: str) -> FakeSysfs:
        self._raw().raw_write(kpath, value)
        return self

    def symlink(self, kpath: str, target: str) -> FakeSysfs:
        self._raw().raw_symlink(kpath, target)
        return self

    def mkdir(self, kpath: str) -> FakeSysfs:
        self._raw().raw_mkdir(kpath)
        return self

    def snapshot(self) -> dict[str, str]:
        """Every entry: file text, ``-> target`` for links, ``<dir>``; for exact comparisons."""
        from vmctl.host.sysfs import tree_snapshot

        return tree_snapshot(self.root)


@pytest.fixture
def fake_sysfs(tmp_path: Path, vmctl_pm) -> FakeSysfs:
    return FakeSysfs(tmp_path / "sysfs", vmctl_pm)


# -- simulator instances ------------------------------------------------------------------
class QmpSession:
    """A synchronous QMP client (``qemu.qmp``'s legacy API), capabilities negotiated.

    ``execute(command, **arguments)`` returns the ``return`` value or raises
    ``qemu.qmp.ExecuteError`` (``.error_class``, ``.error.error.desc``);
    ``wait_event(name, timeout)`` returns the next event of that name (others are kept
    in :attr:`seen`).
    """

    def __init__(self, socket: str, timeout: float = 10.0) -> None:
        from qemu.qmp.legacy import QEMUMonitorProtocol

        self._qmp = QEMUMonitorProtocol(socket)
        self.greeting = self._qmp.connect(negotiate=True)
        self._qmp.settimeout(timeout)
        self.seen: list[dict[str, Any]] = []

    def execute(self, command: str, **arguments: Any) -> Any:
        return self._qmp.cmd(command, **arguments)

    def wait_event(self, name: str, timeout: float = 10.0) -> dict[str, Any]:
        for i, event in enumerate(self.seen):
            if event.get("event") == name:
                return self.seen.pop(i)
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                event = self._qmp.pull_event(wait=left)
            except TimeoutError:
                break
            if event is None:
                continue
            if event.get("event") == name:
                return event
            self.seen.append(event)
        names = [e.get("event") for e in self.seen]
        raise AssertionError(f"no {name} event within {timeout} s (saw {names})")

    def close(self) -> None:
        try:
            self._qmp.close()
        except Exception:  # noqa: BLE001 - the instance may already be gone (after quit)
            pass


class SimInstance:
    """A machine running on the simulator: ``name``, ``socket``, ``dir`` and ``qmp``."""

    def __init__(self, started: Any, pm: Any) -> None:
        self.name: str = started.name
        self.socket: str = started.socket
        self.dir = Path(started.dir)
        self.pid: int | None = started.pid
        self._pm = pm
        self.qmp = QmpSession(self.socket)

    def status(self) -> dict[str, Any]:
        """What ``vmctl status NAME --format json`` prints (plugins' live state included)."""
        from vmctl.runtime.control import status

        return status(self.name, self._pm)

    def target(self) -> Any:
        """What ``vmctl monitor NAME`` shows: the machine, its plugins' panels and live probes."""
        from vmctl.runtime.instance import Instance
        from vmctl.tui.target import load_target

        return load_target(Instance(self.dir.parent, self.name), self._pm)

    def monitor_app(self, interval: float = 0.1, retry: float = 0.1) -> Any:
        """``vmctl monitor NAME`` as a Textual app, for ``app.run_test()`` with a pilot."""
        from vmctl.tui.feed import InstanceFeed
        from vmctl.tui.monitor import MonitorApp

        return MonitorApp(InstanceFeed(self.target(), interval=interval, retry=retry))

    def log(self) -> str:
        """The instance log: the guest console and the simulator's own lines."""
        path = self.dir / "log"
        return path.read_text() if path.exists() else ""

    def stop(self) -> None:
        """``vmctl stop NAME``: quit, then signals; the folder is removed.  Idempotent."""
        from vmctl.runtime.control import stop

        self.qmp.close()
        if self.dir.exists():
            stop(self.name, force=False)


def _wait_recorded(inst: Any, timeout: float = 10.0) -> None:
    """Until the supervisor has recorded the backend (``vmctl ps`` says running, not starting)."""
    from vmctl.runtime.inspect import State, inspect

    deadline = time.monotonic() + timeout
    while inspect(inst).state is State.STARTING and time.monotonic() < deadline:
        time.sleep(0.01)


@pytest.fixture
def sim_instance(vmctl_isolated: Path, tmp_path: Path, vmctl_pm) -> Iterator[Callable[..., SimInstance]]:
    from vmctl.config import load_machine
    from vmctl.config.validate import check_machine
    from vmctl.diagnostics import render
    from vmctl.runtime.instance import Instance
    from vmctl.runtime.launch import Launch
    from vmctl.types import Severity

    started: list[SimInstance] = []

    def start(machine: str | Path, name: str | None = None, paused: bool = False) -> SimInstance:
        path = Path(machine) if isinstance(machine, Path) else tmp_path / f"sim-{len(started)}.toml"
        if not isinstance(machine, Path):
            path.write_text(machine)
        loaded = load_machine(path, vmctl_pm)
        errors = [d for d in check_machine(loaded, vmctl_pm) if d.severity is Severity.ERROR]
        if errors:  # `vmctl run` refuses an invalid machine; so does the kit
            pytest.fail(f"{path} is not a valid machine:\n{render(errors)}")
        launch = Launch(loaded, vmctl_pm, backend="sim", name=name, paused=paused)
        inst = SimInstance(launch.start(), vmctl_pm)
        _wait_recorded(Instance(vmctl_isolated, inst.name))
        started.append(inst)
        return inst

    yield start
    for inst in reversed(started):
        inst.stop()


# -- golden files -------------------------------------------------------------------------
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
