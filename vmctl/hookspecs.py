"""The vmctl plugin contract.

A plugin is a module (or object) registered under the entry-point group ``vmctl`` whose
functions carry the ``@vmctl.hookimpl`` marker and the names below.  vmctl's own plugins
(``spapr-irq``, ``vfio``, ``async-pf``, ``vfio-ap``) come through the same door.

Hooks are grouped by lifecycle phase:

1. **Schema** — what a machine may contain: :func:`vmctl_sections`, :func:`vmctl_device_kinds`.
2. **Validation** — :func:`vmctl_validate_machine`, :func:`vmctl_validate_fleet`.
3. **Plan and export** — :func:`vmctl_predict`, :func:`vmctl_qemu_args`,
   :func:`vmctl_libvirt_xml`, :func:`vmctl_export_formats`.
4. **Host** — :func:`vmctl_host_check`, :func:`vmctl_host_steps`, :func:`vmctl_fake_kernel`.
5. **Runtime** — :func:`vmctl_sim_devices`, :func:`vmctl_live_probe`.
6. **Interfaces** — :func:`vmctl_tui_panels`, :func:`vmctl_cli_commands`, :func:`vmctl_complete`.

The host calls each implementation separately: a plugin that raises is named in one warning
on stderr and left out of the rest of the run, and every record it returns is tagged with
its name (the ``plugin`` field), which is how diagnostics and argv carry provenance.  Return
``None`` or an empty list from a hook that has nothing to say for a given machine.

A minimal plugin::

    # my_plugin/plugin.py, registered as  [project.entry-points.vmctl] rng = "my_plugin.plugin"
    from vmctl import hookimpl
    from vmctl.types import ArgFragment, DeviceKind, Option

    @hookimpl
    def vmctl_device_kinds():
        return [DeviceKind("virtio-rng", "entropy source", (Option("rate", "int", "bytes/s"),))]

    @hookimpl
    def vmctl_qemu_args(machine):
        return [ArgFragment(("-device", "virtio-rng-pci"), key=f"device[{i}]")
                for i, _ in machine.devices_of("virtio-rng")]
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
    from vmctl.types import (CliCommand, Completion, DeviceKind, Diagnostic, ExportFormat, FakeHost,
                             HostFact,
                             HostStep, LiveProbe, PanelSpec, QemuFragment, Section, SimDevice,
                             ValidationContext)

hookspec = pluggy.HookspecMarker("vmctl")


# ---------------------------------------------------------------------------------------
# 1. Schema
# ---------------------------------------------------------------------------------------
@hookspec
def vmctl_sections() -> Iterable[Section]:
    """Top-level TOML tables this plugin owns.

    Called once per run, before any machine is read.  A section name may be owned by one
    plugin only; ``machine``, ``boot``, ``sim`` and ``include`` belong to vmctl.  The
    options' types, choices, ranges and defaults are enforced by the host and drive
    ``vmctl show``, the TOML reference in ``docs/`` and shell completion.

    Example::

        return [Section("irq", "sPAPR interrupt controller", (
            Option("ic-mode", "str", "mode offered to the guest", default="dual",
                   choices=("xics", "xive", "dual")),), arches=("ppc64",))]
    """


@hookspec
def vmctl_device_kinds() -> Iterable[DeviceKind]:
    """Values of ``kind`` this plugin handles in ``[[device]]`` entries.

    Called once per run.  A kind may be owned by one plugin only.  Every device also has
    the host-owned keys ``kind`` and ``id`` (``id`` lets a file replace an included device).
    """


# ---------------------------------------------------------------------------------------
# 2. Validation
# ---------------------------------------------------------------------------------------
@hookspec
def vmctl_validate_machine(machine: Machine, ctx: ValidationContext) -> Iterable[Diagnostic]:
    """Check one machine against this plugin's semantics.

    Called for every machine that passed the schema checks (types, choices, ranges, unknown
    keys), so values are present and well-typed, defaults applied.  ``ctx.sysfs`` is set
    for host checks (``--host``), ``ctx.qemu`` with the probed QEMU (``--backend qemu``).
    Return diagnostics built with ``machine.diagnostic(...)``; an empty list means no
    finding.  Severity ``error`` makes the machine invalid (exit 1); ``note`` explains a
    quiet fallback (``ic-mode = "dual"`` on POWER8 gives XICS).
    """


@hookspec
def vmctl_validate_fleet(machines: Sequence[Machine], ctx: ValidationContext) -> Iterable[Diagnostic]:
    """Check rules across every machine given to ``vmctl validate`` (and live host state).

    Called once, after each machine was validated alone, with the machines that have no
    schema error.  Must run in time linear in the number of machines: index by the
    contended resource (an APQN, an IOMMU group) instead of comparing pairs.  A diagnostic
    about a conflict should name both machines (file and key) in its message.
    """


# ---------------------------------------------------------------------------------------
# 3. Plan and export
# ---------------------------------------------------------------------------------------
@hookspec
def vmctl_predict(machine: Machine, ctx: ValidationContext) -> dict[str, Any] | None:
    """What this plugin expects to happen when the machine runs, for ``vmctl plan``.

    Returned JSON-able dict is shown under ``predictions[<plugin>]``, e.g. for spapr-irq
    ``{"after_cas": "xive", "controller": "emulated", "reasons": [...]}``.  Return None
    when the machine does not use the plugin.
    """


@hookspec
def vmctl_qemu_args(machine: Machine) -> Iterable[QemuFragment]:
    """QEMU command-line fragments for this machine.

    Return :class:`~vmctl.types.ArgFragment` for whole options (``-device …``),
    :class:`~vmctl.types.MachineProp` for properties of the one ``-machine`` option,
    :class:`~vmctl.types.CpuProp` for ``-cpu`` properties and
    :class:`~vmctl.types.KernelArg` for the guest command line.  Set ``key`` to the TOML
    key path the fragment comes from; the host adds file, line and plugin for
    ``plan`` and ``export --format sh``.  Must be pure: no I/O, no process.
    """


@hookspec
def vmctl_libvirt_xml(machine: Machine, domain: Element) -> None:
    """Add this plugin's parts to the libvirt domain XML being built.

    ``domain`` is the ``<domain type=…>`` element with ``<name>``, ``<memory>``, ``<vcpu>``,
    ``<os>``, ``<cpu>``, ``<features>`` and ``<devices>`` children already made by the host.
    Mutate it in place (``domain.find("devices").append(hostdev)``); return nothing.
    """


@hookspec
def vmctl_export_formats() -> Iterable[ExportFormat]:
    """Extra formats for ``vmctl export --format`` (``mdevctl-json`` from vfio-ap).

    The host provides ``argv``, ``sh`` and ``libvirt-xml``.  A format name may be claimed by
    one plugin only.
    """


# ---------------------------------------------------------------------------------------
# 4. Host
# ---------------------------------------------------------------------------------------
@hookspec
def vmctl_host_check(sysfs: Sysfs) -> Iterable[HostFact]:
    """Host readiness lines for ``vmctl host check`` (IOMMU on, vfio_ap loaded, …).

    Read only, under ``sysfs.root``.  Report what is missing with a hint, not an error:
    the host may simply not be the one the machine is meant for.
    """


@hookspec
def vmctl_host_steps(machine: Machine, sysfs: Sysfs) -> Iterable[HostStep]:
    """The host changes this machine needs, in the order to apply them.

    Read the current state through ``sysfs`` and return only the steps still needed, each
    with the writes that undo it.  ``vmctl host apply`` shows them (dry run) or performs and
    journals them (``--apply``); ``vmctl host undo`` runs the undo writes in reverse.
    Raise :class:`vmctl.errors.VmctlError` when the host cannot be prepared (a mask change
    that would take a queue from a live mdev).
    """


@hookspec
def vmctl_fake_kernel() -> Iterable[FakeKernelHandler]:
    """Handlers emulating the kernel's side effects of sysfs writes on *fake* trees.

    Used only when the sysfs root holds the ``.vmctl-fake-sysfs`` marker (tests, demos).
    A handler for ``/sys/bus/pci/drivers/*/unbind`` moves the device's ``driver`` link,
    exactly as the kernel would; see :mod:`vmctl.host.sysfs`.
    """


@hookspec
def vmctl_fake_hosts() -> Iterable[FakeHost]:
    """Fake host trees this plugin can build: its hardware, shaped like the kernel's.

    Called by the ``vmctl.testing`` kit (``fake_sysfs.pci()``, ``fake_sysfs.ap()``,
    ``fake_sysfs.host(kind, scenario)``) when a test asks for a tree; the host itself knows
    no plugin's hardware.  No arguments.  Returns :class:`~vmctl.types.FakeHost` records;
    results of every plugin are collected, and the first plugin offering a ``kind`` builds
    it.  Import the builder inside the hook: it runs in tests only.

    Example::

        @hookimpl
        def vmctl_fake_hosts():
            from vmctl.api import FakeHost
            from my_plugin.fakesys import build, SCENARIOS
            return [FakeHost("watchdog", "a watchdog card", build, tuple(SCENARIOS))]
    """


# ---------------------------------------------------------------------------------------
# 5. Runtime
# ---------------------------------------------------------------------------------------
@hookspec
def vmctl_sim_devices(machine: Machine) -> Iterable[SimDevice]:
    """Device models to run inside the simulator for this machine.

    Called once in the simulator process when the instance starts.  Each
    :class:`~vmctl.types.SimDevice` gets ``attach(vm)``, lifecycle phases, clock ticks,
    and may serve vendor QMP commands (``__org.vmctl_…``) and ``info`` subcommands.
    """


@hookspec
def vmctl_live_probe(machine: Machine, backend: str) -> LiveProbe | None:
    """How to read this plugin's live state from a running instance over QMP.

    ``backend`` is ``"sim"`` or ``"qemu"``.  On the simulator, ``__org.vmctl_query-device``
    with ``{"plugin": NAME}`` returns the device's :meth:`~vmctl.types.SimDevice.state`; on
    QEMU use standard commands (``human-monitor-command`` ``info pic``, ``qom-get``).
    """


# ---------------------------------------------------------------------------------------
# 6. Interfaces
# ---------------------------------------------------------------------------------------
@hookspec
def vmctl_tui_panels(machine: Machine) -> Iterable[PanelSpec]:
    """Panels ``vmctl monitor`` shows for this machine (and the ``vmctl top`` headline).

    Return nothing for a machine that does not use the plugin.  The panel's module is
    imported only by the TUI.
    """


@hookspec
def vmctl_cli_commands() -> Iterable[CliCommand]:
    """Command groups this plugin adds (``vmctl ap …``); imported only when run."""


@hookspec
def vmctl_complete(kind: str, incomplete: str, sysfs: Sysfs) -> Iterable[Completion] | None:
    """Shell completion of host resources: :class:`~vmctl.types.Completion` records.

    Called on every TAB that completes a host resource, by the completion fast path, which
    imports the implementing module directly (no plugin manager): it must be fast and
    import nothing heavy.  Results of every plugin are collected.

    ``kind``
        the value being completed: ``"pci-address"`` (``host`` of vfio-pci), ``"apqn"``,
        ``"adapter"``, ``"domain"``.
    ``incomplete``
        what the user typed so far; return only candidates that start with it.
    ``sysfs``
        the host (:class:`~vmctl.host.sysfs.Sysfs`, under ``--sysfs-root`` when given).

    Returns the candidates, or None for a kind the plugin does not know.  ``(value, help)``
    tuples are still accepted, for one release.

    Example::

        @hookimpl
        def vmctl_complete(kind, incomplete, sysfs):
            if kind != "apqn":
                return None
            from vmctl.api import Completion
            return [Completion(q, "free") for q in free_apqns(sysfs) if q.startswith(incomplete)]
    """
