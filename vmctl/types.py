"""Typed records that plugins contribute and the host consumes.

Hooks return these frozen dataclasses rather than tuples or dicts, so a plugin author gets
named fields, defaults and a type checker's help.  See :mod:`vmctl.hookspecs` for when each
is asked for.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from vmctl.sim.vm import SimVM

ARCHES = ("ppc64", "aarch64", "x86_64", "s390x")

#: Option value types the schema understands.
#: ``size`` is a memory size string (``"512M"``, ``"2G"``); ``path`` a file path relative
#: to the TOML file that sets it; ``list[int]`` accepts TOML integers (hex ``0xab`` too).
OPTION_TYPES = ("str", "int", "bool", "size", "path", "list[int]", "list[str]")


@dataclass(frozen=True)
class Option:
    """One key of a section or device kind.

    Example::

        Option("ic-mode", "str", "interrupt controller mode offered to the guest",
               default="dual", choices=("xics", "xive", "dual"))

    ``deprecated`` says what replaces a key that still works for now: a machine that
    writes it gets a ``deprecated`` note (file, line, the replacement), nothing else
    changes.
    """

    name: str
    type: str
    help: str
    default: Any = None
    required: bool = False
    choices: tuple[Any, ...] = ()
    minimum: int | None = None
    maximum: int | None = None
    pattern: str | None = None
    arches: tuple[str, ...] = ()
    deprecated: str = ""

    def __post_init__(self) -> None:
        if self.type not in OPTION_TYPES:
            raise ValueError(f"option {self.name!r}: unknown type {self.type!r}")


@dataclass(frozen=True)
class Section:
    """A top-level TOML table owned by a plugin, e.g. ``[irq]``.

    ``arches`` limits the machines that may use it (empty: every arch).  ``plugin`` is filled
    in by the host with the owning plugin's name.
    """

    name: str
    help: str
    options: tuple[Option, ...]
    arches: tuple[str, ...] = ()
    plugin: str = ""


@dataclass(frozen=True)
class DeviceKind:
    """A value of ``kind`` in ``[[device]]``, e.g. ``vfio-pci``.

    ``max_per_machine`` is enforced by the host (``vfio-ap``: 1).  ``kind`` and ``id`` are
    host-owned keys every device has; list only the kind's own options here.
    """

    name: str
    help: str
    options: tuple[Option, ...]
    arches: tuple[str, ...] = ()
    max_per_machine: int | None = None
    plugin: str = ""


class Severity(str, enum.Enum):
    ERROR = "error"
    WARNING = "warning"
    NOTE = "note"


@dataclass(frozen=True)
class Diagnostic:
    """One finding about a machine, printed like a compiler's message.

    ``key`` is the key path as the user wrote it (``"irq.ic-mode"``, ``"device[1].adapters"``);
    ``code`` is stable and documented (``"xive-needs-power9"``).  Plugins normally build
    diagnostics with :meth:`vmctl.config.machine.Machine.diagnostic`, which fills ``file``
    and ``line`` from the key's provenance; the host fills ``plugin``.
    """

    severity: Severity
    code: str
    message: str
    key: str = ""
    hint: str = ""
    file: str = ""
    line: int = 0
    plugin: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"severity": self.severity.value, "code": self.code, "message": self.message,
                "key": self.key, "hint": self.hint, "file": self.file, "line": self.line,
                "plugin": self.plugin}


# -- QEMU lowering ----------------------------------------------------------------------
@dataclass(frozen=True)
class ArgFragment:
    """Whole QEMU arguments, e.g. ``("-device", "vfio-pci,host=0000:03:00.0")``."""

    args: tuple[str, ...]
    key: str = ""
    plugin: str = ""


@dataclass(frozen=True)
class MachineProp:
    """A property of the single ``-machine TYPE,…`` option, e.g. ``ic-mode=dual``."""

    name: str
    value: str
    key: str = ""
    plugin: str = ""


@dataclass(frozen=True)
class CpuProp:
    """A property of the ``-cpu MODEL,…`` option, e.g. ``kvm-asyncpf=on``."""

    name: str
    value: str
    key: str = ""
    plugin: str = ""


@dataclass(frozen=True)
class KernelArg:
    """Text appended to the guest kernel command line (``-append``), e.g. ``no-kvmapf``."""

    text: str
    key: str = ""
    plugin: str = ""


QemuFragment = ArgFragment | MachineProp | CpuProp | KernelArg


@dataclass(frozen=True)
class ExportFormat:
    """An extra ``vmctl export --format NAME``.

    ``render`` is an import string ``"package.module:function"``; the function takes the
    resolved :class:`~vmctl.config.machine.Machine` and returns the text to print.  It is
    imported only when the format is asked for.
    """

    name: str
    help: str
    render: str
    plugin: str = ""


# -- host -------------------------------------------------------------------------------
@dataclass(frozen=True)
class HostWrite:
    """``echo VALUE > PATH`` on a kernel path (resolved under the sysfs root)."""

    path: str
    value: str


@dataclass(frozen=True)
class HostStep:
    """One host change, with the writes that undo it.

    ``write`` is performed by ``vmctl host apply --apply``; ``undo`` (performed in order)
    must bring the host back to the state before the step, computed by the plugin from the
    state it read when planning (e.g. re-binding the original driver, restoring the old
    mask).  Steps are applied in the order returned and undone in reverse.
    """

    description: str
    write: HostWrite
    undo: tuple[HostWrite, ...]
    key: str = ""
    plugin: str = ""


@dataclass(frozen=True)
class HostFact:
    """A line of ``vmctl host check``: a host capability and whether it is usable."""

    name: str
    ok: bool
    detail: str
    hint: str = ""
    plugin: str = ""


# -- runtime ----------------------------------------------------------------------------
@dataclass(frozen=True)
class LiveProbe:
    """How to read a plugin's live state from a running machine over QMP.

    ``commands`` are sent in order (one in flight at a time); ``parse`` receives their
    ``return`` values in the same order and gives a JSON-able dict, shown by
    ``vmctl status`` under the plugin's name and handed to its TUI panel.  Keep ``parse``
    pure: it is called from the CLI and from the TUI.

    ``console`` > 0 asks the host to append one more element to those values: the last
    ``console`` lines of the machine's console log (a list of str), for what QEMU does not
    expose over QMP but the guest prints (the kernel's first line tells that the firmware
    handed over, for instance).
    """

    commands: tuple[tuple[str, Mapping[str, Any]], ...]
    parse: Callable[[list[Any]], dict[str, Any]]
    plugin: str = ""
    console: int = 0


class LiveState(dict[str, Any]):
    """A plugin's live state, as the host read it, tagged with where it came from.

    The mapping is what the plugin's :class:`LiveProbe` ``parse`` returned (on the simulator
    without a probe: its ``SimDevice.state()``), unchanged, so ``vmctl status`` prints the
    same keys.  The host adds:

    * ``plugin`` — whose state it is;
    * ``backend`` — ``"sim"`` or ``"qemu"``: what answered, so a panel or a headline never
      has to guess it from the keys (some state exists only on one backend);
    * ``error`` — why the read failed (a QMP error, a parser exception), ``""`` when it
      worked; :attr:`failed` says the same as a bool, and the mapping is then empty.

    A panel receives it through :meth:`vmctl.api.Panel.set`, ``vmctl top``'s headline
    function as its argument::

        def headline(state: LiveState) -> str:
            if state.backend == "qemu":
                return "on" if state.get("present") else "-"
            return f"{state.get('served', 0)} B"
    """

    __slots__ = ("plugin", "backend", "error")

    def __init__(self, data: Mapping[str, Any] | None = None, *, plugin: str = "",
                 backend: str = "", error: str = "") -> None:
        super().__init__(data or {})
        self.plugin = plugin
        self.backend = backend
        self.error = error

    @property
    def failed(self) -> bool:
        """True when the host could not read the state (:attr:`error` says why)."""
        return bool(self.error)

    @property
    def state(self) -> dict[str, Any] | None:
        """The mapping as a plain dict, or None when the read failed (the spelling of
        vmctl 0.1's ``PluginState.state``, kept for one release)."""
        return None if self.failed else dict(self)

    def __repr__(self) -> str:
        tags = f"plugin={self.plugin!r}, backend={self.backend!r}"
        return f"LiveState({dict.__repr__(self)}, {tags}" + (
            f", error={self.error!r})" if self.error else ")")


class SimDevice:
    """Base class for a plugin's device model inside the simulator.

    The simulator creates the devices from the ``vmctl_sim_devices`` hook, calls
    :meth:`attach` once, then drives them: :meth:`on_phase` at lifecycle changes and
    :meth:`tick` on the simulated clock while the machine runs.  Devices answer vendor QMP
    commands (names must start with ``__org.vmctl_``), HMP ``info`` subcommands, and report
    :meth:`state` for ``vmctl status``.  Raise :class:`vmctl.sim.qmp.QMPError` from a
    command handler to answer with a QMP error class.
    """

    plugin: str = ""

    def attach(self, vm: SimVM) -> None:
        """Called once when the machine is built; keep ``vm`` to emit events."""
        self.vm = vm

    def on_phase(self, phase: str) -> None:
        """Lifecycle phases, in boot order: ``reset`` (power-on and every system_reset),
        ``firmware``, ``kernel`` (guest kernel entered), ``running`` (userspace up); and
        ``stop``, ``cont``, ``powerdown``, ``shutdown`` as they happen."""

    def tick(self, now: float, dt: float) -> None:
        """Advance the model by ``dt`` simulated seconds (``now`` since power-on)."""

    def qmp_commands(self) -> dict[str, Callable[[dict[str, Any]], Any]]:
        """Vendor QMP commands: name → handler(arguments) → return value."""
        return {}

    def hmp_info(self) -> dict[str, Callable[[], str]]:
        """``info`` subcommands for ``human-monitor-command``: ``{"pic": fn}``."""
        return {}

    def state(self) -> dict[str, Any]:
        """The live state, JSON-able; also the answer to ``__org.vmctl_query-device``."""
        return {}

    def firmware(self) -> tuple[str, float] | None:
        """The firmware this device stands for — its name for the console, and the virtual
        seconds it runs before the kernel — or None to leave the host's default for the
        machine type.  Asked once, before the machine powers on (spapr-irq answers for
        pseries: SLOF or VOF)."""
        return None


# -- user interface ---------------------------------------------------------------------
@dataclass(frozen=True)
class PanelSpec:
    """A TUI panel for a running machine.

    ``factory`` is an import string (``"my_plugin.panel:RngPanel"``) for a Textual
    widget class with ``update_state(state: dict) -> None``; it is imported only by the
    TUI.  ``headline`` turns the plugin's live state into the short text ``vmctl top``
    shows in its column (``"xive 1.2k/s"``).
    """

    title: str
    factory: str
    headline: Callable[[dict[str, Any]], str] | None = None
    plugin: str = ""


@dataclass(frozen=True)
class CliCommand:
    """A ``vmctl NAME …`` command group from a plugin (``vmctl ap show``).

    ``factory`` is an import string for a ``typer.Typer``; it is imported only when the
    command runs, so ``vmctl --help`` stays fast.
    """

    name: str
    help: str
    factory: str
    plugin: str = ""


@dataclass(frozen=True)
class FakeHost:
    """A fake host tree a plugin can build for tests and demos (``vmctl_fake_hosts``).

    ``kind`` names it in the test kit (``fake_sysfs.host("pci", "viable")``; ``pci`` and
    ``ap`` also have their own methods); ``build(root, scenario, **options)`` builds it
    under ``root`` (``scenario`` None: the plugin's default or ``options`` alone) and
    raises ``ValueError`` naming the known scenarios for an unknown one; ``scenarios``
    lists them.

    Example::

        FakeHost("pci", "PCI functions, drivers, IOMMU groups", build_fake_host,
                 scenarios=("host", "viable", "non-viable"))
    """

    kind: str
    help: str
    build: Callable[..., None]
    scenarios: tuple[str, ...] = ()
    plugin: str = ""


@dataclass(frozen=True)
class Completion:
    """One candidate for a host resource at the shell prompt (``vmctl_complete``).

    ``value`` is what is inserted (``0000:01:00.0``, ``05.0004``); ``help`` is shown beside
    it where the shell can (``[10de:1e87] VGA, group 1, on nouveau``).

    Example::

        Completion("05.0004", "adapter 5, domain 4: free")
    """

    value: str
    help: str = ""
    plugin: str = ""


@dataclass
class ValidationContext:
    """What validation may look at beyond the machine itself.

    ``sysfs`` is set with ``vmctl validate --host`` (a :class:`vmctl.host.sysfs.Sysfs`);
    ``qemu`` with ``--backend qemu``: the probed capabilities of the installed QEMU per
    arch (use :meth:`qemu_caps`); ``backend`` is ``"sim"`` or ``"qemu"``;
    ``qemu_wanted`` says the probe was asked for and is still to be made (the host sets
    ``qemu`` once it knows the machines' arches).  A plugin that reads the host once per
    run keeps the reading with :meth:`memo`.
    """

    backend: str = "sim"
    sysfs: Any = None
    qemu: dict[str, Any] | None = None
    qemu_wanted: bool = False
    _memo: dict[str, tuple[Any, Any]] = field(default_factory=dict, repr=False)

    def qemu_caps(self, arch: str) -> Any:
        """The probed QEMU for ``arch`` (a :class:`vmctl.qemu.caps.QemuCaps`), or None."""
        return (self.qemu or {}).get(arch)

    def memo(self, key: str, compute: Callable[[], Any]) -> Any:
        """``compute()`` once per run and per ``sysfs``, under ``key`` (start it with your
        plugin's name: ``"vfio.host"``); later calls return the same value."""
        hit = self._memo.get(key)
        if hit is None or hit[0] is not self.sysfs:
            hit = self._memo[key] = (self.sysfs, compute())
        return hit[1]
