"""The vmctl plugin contract: every hook, when vmctl calls it, and what it expects back.

A plugin is a module (or object) registered under the entry-point group ``vmctl`` whose
functions carry the ``@vmctl.hookimpl`` marker and the names below.  vmctl's own plugins
come through the same door, and a plugin imports vmctl only through ``vmctl`` (for
``hookimpl``) and :mod:`vmctl.api`.

Hooks are grouped by lifecycle phase:

1. **Schema** — what a machine may contain: :func:`vmctl_sections`, :func:`vmctl_device_kinds`.
2. **Validation** — :func:`vmctl_validate_machine`, :func:`vmctl_validate_fleet`.
3. **Plan and export** — :func:`vmctl_predict`, :func:`vmctl_qemu_args`,
   :func:`vmctl_libvirt_xml`, :func:`vmctl_export_formats`.
4. **Host** — :func:`vmctl_host_check`, :func:`vmctl_host_steps`, :func:`vmctl_fake_kernel`,
   :func:`vmctl_fake_hosts`.
5. **Runtime** — :func:`vmctl_sim_devices`, :func:`vmctl_live_probe`.
6. **Interfaces** — :func:`vmctl_tui_panels`, :func:`vmctl_cli_commands`, :func:`vmctl_complete`.

How every hook is called
------------------------

* Through pluggy: all implementations are called and their results **collected**, the last
  registered plugin first; no hook is ``firstresult``.  ``tryfirst``/``trylast`` and hook
  wrappers mean what pluggy says.
* An implementation may accept fewer arguments than the spec lists (pluggy passes only the
  names it asks for), so a new argument never breaks an existing plugin.
* Returning ``None`` or ``[]`` means "nothing to say about this machine".
* Every record returned is tagged with the plugin's name (its ``plugin`` field), which is
  how diagnostics, argv fragments and host steps carry provenance.
* A :class:`~vmctl.errors.VmctlError` raised from a hook is a deliberate refusal, shown as
  ``error:``/``hint:``; any other exception is a bug: the plugin is named in one warning
  on stderr and left out of the rest of the run, and the other plugins go on.

A minimal plugin::

    # my_plugin/plugin.py, registered as  [project.entry-points.vmctl] rng = "my_plugin.plugin"
    from vmctl import hookimpl
    from vmctl.api import ArgFragment, DeviceKind, Option

    @hookimpl
    def vmctl_device_kinds():
        return [DeviceKind("virtio-rng", "entropy source", (Option("rate", "int", "bytes/s"),))]

    @hookimpl
    def vmctl_qemu_args(machine):
        return [ArgFragment(("-device", "virtio-rng-pci"), key=f"device[{i}]")
                for i, _ in machine.devices_of("virtio-rng")]

``docs/plugins/layout.md`` says where each hook's code lives in a plugin package.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:  # pragma: no cover
    from xml.etree.ElementTree import Element

    import typer  # noqa: F401

    from vmctl.config.machine import Machine
    from vmctl.host.sysfs import FakeKernelHandler, Sysfs
    from vmctl.types import (CliCommand, Completion, DeviceKind, Diagnostic, ExportFormat,
                             FakeHost, HostFact, HostStep, LiveProbe, PanelSpec, QemuFragment,
                             Section, SimDevice, ValidationContext)

hookspec = pluggy.HookspecMarker("vmctl")


# ---------------------------------------------------------------------------------------
# 1. Schema
# ---------------------------------------------------------------------------------------
@hookspec
def vmctl_sections() -> Iterable[Section]:
    """Top-level TOML tables this plugin owns.

    **Called** once per run, before any machine is read (every command that reads a
    machine, ``vmctl plugins``, the docs generator and completion's cache).

    **Parameters**: none.

    **Returns** :class:`~vmctl.types.Section` records; **collected** from every plugin.  A
    section name may be owned by one plugin only (a second owner is a load error);
    ``machine``, ``boot``, ``sim`` and ``include`` belong to vmctl.  The host enforces the
    options' types, choices, ranges and defaults, and they drive ``vmctl show``, the TOML
    reference and shell completion.

    Example::

        @hookimpl
        def vmctl_sections():
            return [Section("rng", "Entropy for the guest.", (
                Option("rate", "int", "bytes per second", default=1024, minimum=1),
                Option("source", "str", "host source", default="urandom",
                       choices=("urandom", "hwrng")),), arches=("x86_64", "ppc64"))]
    """


@hookspec
def vmctl_device_kinds() -> Iterable[DeviceKind]:
    """Values of ``kind`` this plugin handles in ``[[device]]`` entries.

    **Called** once per run, with :func:`vmctl_sections`.

    **Parameters**: none.

    **Returns** :class:`~vmctl.types.DeviceKind` records; **collected**.  A kind may be
    owned by one plugin only.  Every device also has the host-owned keys ``kind`` and
    ``id`` (``id`` lets a file replace an included device); ``max_per_machine`` is
    enforced by the host.

    Example::

        @hookimpl
        def vmctl_device_kinds():
            return [DeviceKind("virtio-rng", "virtio entropy device (-device virtio-rng-pci)",
                               (Option("rate", "int", "bytes/s", minimum=1),),
                               max_per_machine=1)]
    """


# ---------------------------------------------------------------------------------------
# 2. Validation
# ---------------------------------------------------------------------------------------
@hookspec
def vmctl_validate_machine(machine: Machine, ctx: ValidationContext) -> Iterable[Diagnostic]:
    """Check one machine against this plugin's semantics.

    **Called** by ``validate``, ``plan``, ``export``, ``run`` and ``host apply`` for every
    machine that passed the schema checks (types, choices, ranges, unknown keys), so values
    are present, well-typed and defaulted.

    **Parameters**

    ``machine``
        the resolved :class:`~vmctl.config.machine.Machine` (read it; never write to it).
    ``ctx``
        the :class:`~vmctl.types.ValidationContext`: ``ctx.sysfs`` is set when the host is
        checked too (``--host``), ``ctx.qemu`` with the probed QEMU (``--backend qemu``),
        ``ctx.memo(key, fn)`` shares an expensive read between hooks.

    **Returns** :class:`~vmctl.types.Diagnostic` records, built with
    ``machine.error/warning/note(code, key, message, hint=...)`` so they carry file and
    line; **collected**.  ``error`` makes the machine invalid (exit 1); ``note`` explains a
    quiet fallback (``ic-mode = "dual"`` on POWER8 gives XICS).  Codes are stable.

    Example::

        @hookimpl
        def vmctl_validate_machine(machine, ctx):
            out = []
            for i, dev in machine.devices_of("virtio-rng"):
                if dev["rate"] > 1 << 20:
                    out.append(machine.warning("rate-high", f"device[{i}].rate",
                                               "the guest will drain the host pool",
                                               hint="use at most 1048576"))
            return out
    """


@hookspec
def vmctl_validate_fleet(machines: Sequence[Machine], ctx: ValidationContext) -> Iterable[Diagnostic]:
    """Check rules across every machine given to ``vmctl validate`` (and live host state).

    **Called** once per ``vmctl validate``, after each machine was validated alone.

    **Parameters**

    ``machines``
        the machines without a schema error, in the order given on the command line.
    ``ctx``
        as for :func:`vmctl_validate_machine`.

    **Returns** diagnostics; **collected**.  Must run in time linear in the number of
    machines: index by the contended resource (an APQN, an IOMMU group) instead of
    comparing pairs.  A conflict names both machines (file and key) in its message.

    Example::

        @hookimpl
        def vmctl_validate_fleet(machines, ctx):
            owner = {}
            out = []
            for m in machines:
                for i, dev in m.devices_of("virtio-rng"):
                    if dev.get("source") == "hwrng" and "hwrng" in owner:
                        out.append(m.error("hwrng-shared", f"device[{i}].source",
                                           f"/dev/hwrng is already given to {owner['hwrng']}"))
                    owner.setdefault(dev.get("source"), m.name)
            return out
    """


# ---------------------------------------------------------------------------------------
# 3. Plan and export
# ---------------------------------------------------------------------------------------
@hookspec
def vmctl_predict(machine: Machine, ctx: ValidationContext) -> dict[str, Any] | None:
    """What this plugin expects to happen when the machine runs, for ``vmctl plan``.

    **Called** by ``vmctl plan`` for a valid machine, after validation.

    **Parameters**

    ``machine``
        the resolved machine.
    ``ctx``
        as for :func:`vmctl_validate_machine` (``ctx.sysfs`` is the host being planned for).

    **Returns** a JSON-able dict shown under ``predictions[<plugin>]`` (give it a
    ``reasons`` list of sentences), or None when the machine does not use the plugin;
    **collected**, one entry per plugin.

    Example::

        @hookimpl
        def vmctl_predict(machine, ctx):
            if not machine.devices_of("virtio-rng"):
                return None
            return {"guest_entropy": "virtio", "reasons": ["hw_random picks virtio-rng"]}
    """


@hookspec
def vmctl_qemu_args(machine: Machine) -> Iterable[QemuFragment]:
    """QEMU command-line fragments for this machine.

    **Called** by ``plan``, ``export`` (``argv``, ``sh``) and ``run --backend qemu``, for a
    valid machine.

    **Parameters**

    ``machine``
        the resolved machine.

    **Returns** fragments; **collected**, then merged by the host into one command line:
    :class:`~vmctl.types.ArgFragment` for whole options (``-device …``),
    :class:`~vmctl.types.MachineProp` for properties of the one ``-machine`` option,
    :class:`~vmctl.types.CpuProp` for ``-cpu`` properties and
    :class:`~vmctl.types.KernelArg` for the guest command line.  Set ``key`` to the TOML
    key the fragment comes from; the host adds file, line and plugin for ``plan`` and
    ``export --format sh``.  Must be pure: no I/O, no process.

    Example::

        @hookimpl
        def vmctl_qemu_args(machine):
            return [ArgFragment(("-device", f"virtio-rng-pci,max-bytes={dev['rate']}"),
                                key=f"device[{i}]")
                    for i, dev in machine.devices_of("virtio-rng")]
    """


@hookspec
def vmctl_libvirt_xml(machine: Machine, domain: Element) -> None:
    """Add this plugin's parts to the libvirt domain XML being built.

    **Called** by ``vmctl export --format libvirt-xml`` for a valid machine, after the host
    built the domain's skeleton.

    **Parameters**

    ``machine``
        the resolved machine.
    ``domain``
        the ``<domain type=…>`` :class:`xml.etree.ElementTree.Element` with ``<name>``,
        ``<memory>``, ``<vcpu>``, ``<os>``, ``<cpu>``, ``<features>`` and ``<devices>``
        children already made.  Mutate it in place; text and attributes are escaped by
        the serializer.

    **Returns** nothing (results are ignored).  Raise :class:`~vmctl.errors.VmctlError`
    for a machine libvirt cannot express.

    Example::

        @hookimpl
        def vmctl_libvirt_xml(machine, domain):
            for _, dev in machine.devices_of("virtio-rng"):
                rng = ET.SubElement(domain.find("devices"), "rng", model="virtio")
                ET.SubElement(rng, "backend", model="random").text = "/dev/urandom"
    """


@hookspec
def vmctl_export_formats() -> Iterable[ExportFormat]:
    """Extra formats for ``vmctl export --format``.

    **Called** when ``export`` resolves a format name it does not provide itself, and for
    ``vmctl plugins`` and completion.

    **Parameters**: none.

    **Returns** :class:`~vmctl.types.ExportFormat` records (name, help, and the import
    string of a ``render(machine) -> str`` function, imported only when the format is
    asked for); **collected**.  The host provides ``argv``,
    ``sh`` and ``libvirt-xml``; a format name may be claimed by one plugin only.

    Example::

        @hookimpl
        def vmctl_export_formats():
            return [ExportFormat("rngd-conf", "rngd configuration for the host",
                                 "my_plugin.qemu:rngd_conf")]
    """


# ---------------------------------------------------------------------------------------
# 4. Host
# ---------------------------------------------------------------------------------------
@hookspec
def vmctl_host_check(sysfs: Sysfs) -> Iterable[HostFact]:
    """Host readiness lines for ``vmctl host check`` (IOMMU on, vfio_ap loaded, …).

    **Called** by ``vmctl host check``.

    **Parameters**

    ``sysfs``
        the host to read (:class:`~vmctl.host.sysfs.Sysfs`; under ``--sysfs-root`` in
        tests and demos).  Read only.

    **Returns** :class:`~vmctl.types.HostFact` records (name, ok, detail, hint);
    **collected**.  Report what is missing with a hint, not an error: the host may simply
    not be the one the machine is meant for.

    Example::

        @hookimpl
        def vmctl_host_check(sysfs):
            ok = sysfs.exists("/dev/hwrng")
            return [HostFact("hwrng", ok, "/dev/hwrng present" if ok else "no /dev/hwrng",
                             hint="" if ok else "modprobe your board's rng driver")]
    """


@hookspec
def vmctl_host_steps(machine: Machine, sysfs: Sysfs) -> Iterable[HostStep]:
    """The host changes this machine needs, in the order to apply them.

    **Called** by ``vmctl plan`` and ``vmctl host apply`` (dry run, or ``--apply``).

    **Parameters**

    ``machine``
        the resolved, valid machine.
    ``sysfs``
        the host as it is now; read it to return only the steps still needed.

    **Returns** :class:`~vmctl.types.HostStep` records, each with its write and the
    writes that undo it; **collected**, in plugin order.  ``host apply --apply`` journals
    every write before it happens and ``host undo`` runs the undo writes in reverse.
    Raise :class:`~vmctl.errors.VmctlError` when the host cannot be prepared (a mask
    change that would take a queue from a live mdev).

    Example::

        @hookimpl
        def vmctl_host_steps(machine, sysfs):
            path = "/sys/module/rng_core/parameters/default_quality"
            before = sysfs.read(path, "")
            if not machine.devices_of("virtio-rng") or before == "1000":
                return []
            return [HostStep("trust the hardware RNG fully", HostWrite(path, "1000"),
                             (HostWrite(path, before),), key="device[0]")]
    """


@hookspec
def vmctl_fake_kernel() -> Iterable[FakeKernelHandler]:
    """Handlers emulating the kernel's side effects of sysfs writes on *fake* trees.

    **Called** when a :class:`~vmctl.host.sysfs.Sysfs` writes under a root that holds the
    ``.vmctl-fake-sysfs`` marker (tests, demos); never for the real ``/``.

    **Parameters**: none.

    **Returns** :class:`~vmctl.host.sysfs.FakeKernelHandler` records (an fnmatch
    ``pattern`` over kernel paths, ``write(sysfs, path, value)`` doing the side effects
    through ``sysfs.raw_*``, and whether the value is ``store``-d); **collected**.  A handler for
    ``/sys/bus/pci/drivers/*/unbind`` moves the device's ``driver`` link, exactly as the
    kernel would, or raises the kernel's errno.

    Example::

        @hookimpl
        def vmctl_fake_kernel():
            def quality(sysfs, path, value):
                if not 0 <= int(value) <= 1024:
                    raise OSError(errno.EINVAL, "default_quality is 0..1024")
            return [FakeKernelHandler("/sys/module/rng_core/parameters/default_quality",
                                      quality, store=True)]
    """


@hookspec
def vmctl_fake_hosts() -> Iterable[FakeHost]:
    """Fake host trees this plugin can build: its hardware, shaped like the kernel's.

    **Called** by the ``vmctl.testing`` kit (``fake_sysfs.pci()``, ``fake_sysfs.ap()``,
    ``fake_sysfs.host(kind, scenario)``) when a test asks for a tree; the host itself
    knows no plugin's hardware.

    **Parameters**: none.

    **Returns** :class:`~vmctl.types.FakeHost` records; **collected**, and the first
    plugin offering a ``kind`` builds it.  Import the builder inside the hook: it runs in
    tests only.

    Example::

        @hookimpl
        def vmctl_fake_hosts():
            from vmctl.api import FakeHost
            from .fakesys import SCENARIOS, build
            return [FakeHost("rng", "a hardware RNG", build, tuple(SCENARIOS))]
    """


# ---------------------------------------------------------------------------------------
# 5. Runtime
# ---------------------------------------------------------------------------------------
@hookspec
def vmctl_sim_devices(machine: Machine) -> Iterable[SimDevice]:
    """Device models to run inside the simulator for this machine.

    **Called** once, in the simulator process, when an instance starts
    (``vmctl run --backend sim``), and by :func:`vmctl.api.build_simulation` users.

    **Parameters**

    ``machine``
        the resolved, valid machine.

    **Returns** :class:`~vmctl.types.SimDevice` objects; **collected**.  Each gets
    ``attach(vm)``, lifecycle phases and clock ticks, and may serve vendor QMP commands
    (``__org.vmctl_…``), ``info`` subcommands and ``state()``.  Return ``[]`` early for a
    machine that does not use the plugin, so the simulator never imports the model.

    Example::

        @hookimpl
        def vmctl_sim_devices(machine):
            if not machine.devices_of("virtio-rng"):
                return []
            from .sim import RngDevice
            return [RngDevice(dev) for _, dev in machine.devices_of("virtio-rng")]
    """


@hookspec
def vmctl_live_probe(machine: Machine, backend: str) -> LiveProbe | None:
    """How to read this plugin's live state from a running instance over QMP.

    **Called** by ``vmctl status`` and the TUI (``monitor``, ``top``) once per instance
    they open; the probe then runs at every poll.

    **Parameters**

    ``machine``
        the machine the instance runs (as saved at ``run``).
    ``backend``
        ``"sim"`` or ``"qemu"``: what answers the commands.

    **Returns** a :class:`~vmctl.types.LiveProbe` (QMP commands and a pure ``parse``), or
    None: on the simulator the default probe asks ``__org.vmctl_query-device
    {"plugin": NAME}`` for the device's ``state()``; on QEMU, None means no live state.
    Results are **collected**, one per plugin.  The host tags the parsed dict as a
    :class:`~vmctl.types.LiveState` (backend, failed) for the panel and the headline.

    Example::

        @hookimpl
        def vmctl_live_probe(machine, backend):
            if backend != "qemu" or not machine.devices_of("virtio-rng"):
                return None
            return LiveProbe((("qom-get", {"path": "/machine/peripheral/rng0",
                                           "property": "max-bytes"}),),
                             lambda results: {"max_bytes": results[0]})
    """


# ---------------------------------------------------------------------------------------
# 6. Interfaces
# ---------------------------------------------------------------------------------------
@hookspec
def vmctl_tui_panels(machine: Machine) -> Iterable[PanelSpec]:
    """Panels ``vmctl monitor`` shows for this machine, and ``vmctl top``'s headline.

    **Called** by the TUI when it opens an instance.

    **Parameters**

    ``machine``
        the machine the instance runs.

    **Returns** :class:`~vmctl.types.PanelSpec` records (title, import string of the
    panel class, headline function), or None for a machine that does not use the plugin;
    **collected**.  The panel's module is imported only by the TUI, so name it by string
    and keep Textual out of the module that answers this hook.

    Example::

        @hookimpl
        def vmctl_tui_panels(machine):
            if not machine.devices_of("virtio-rng"):
                return None
            return [PanelSpec("Entropy", "my_plugin.panel:RngPanel",
                              headline=lambda state: f"{state.get('bytes', 0)} B")]
    """


@hookspec
def vmctl_cli_commands() -> Iterable[CliCommand]:
    """Command groups this plugin adds to the CLI (``vmctl ap …``).

    **Called** when the CLI is built (its answer is cached by install state, so
    ``vmctl --help`` does not import plugins), and by the docs generator and completion's
    cache.

    **Parameters**: none.

    **Returns** :class:`~vmctl.types.CliCommand` records (name, help, and an import string
    for a ``typer.Typer``, imported only when the command runs); **collected**.  A name
    vmctl or an earlier plugin already uses is skipped with a warning.  An argument whose
    metavar names a host resource (``[APQN]...``) completes through
    :func:`vmctl_complete` with that kind (``apqn``).

    Example::

        @hookimpl
        def vmctl_cli_commands():
            return [CliCommand("rng", "Entropy sources of the host", "my_plugin.cli:app")]
    """


@hookspec
def vmctl_complete(kind: str, incomplete: str, sysfs: Sysfs) -> Iterable[Completion] | None:
    """Shell completion of host resources: :class:`~vmctl.types.Completion` records.

    **Called** on every TAB that completes a host resource, by the completion fast path,
    which imports the implementing module directly (no plugin manager): it must be fast
    and import nothing heavy.

    **Parameters**

    ``kind``
        the resource being completed: the metavar of a plugin command's argument, lower
        case with dashes (``PCI_ADDRESS`` → ``"pci-address"``, ``[APQN]...`` →
        ``"apqn"``).  The kinds are the plugins' own words; vmctl knows none of them.
    ``incomplete``
        what the user typed so far; return only candidates that start with it.
    ``sysfs``
        the host (:class:`~vmctl.host.sysfs.Sysfs`, under ``--sysfs-root`` when given).

    **Returns** the candidates, or None for a kind the plugin does not know; **collected**
    from every plugin.  ``(value, help)`` tuples are still accepted, for one release.

    Example::

        @hookimpl
        def vmctl_complete(kind, incomplete, sysfs):
            if kind != "apqn":
                return None
            from vmctl.api import Completion
            return [Completion(q, "free") for q in free_apqns(sysfs) if q.startswith(incomplete)]
    """
