"""The hook implementations: vmctl finds this module through the entry point

    [project.entry-points.vmctl]
    i6300esb = "vmctl_i6300esb.plugin"

Each hook forwards to the module that does the work, importing it on first use so that
loading the plugin (which every ``vmctl`` command does) stays cheap.  See
``docs/reference/hooks.md`` for when each hook is called and what it returns.
"""

from __future__ import annotations

from vmctl import hookimpl

#: The name vmctl knows this plugin by: the entry point's name, used in QMP and status.
PLUGIN = "i6300esb"


@hookimpl
def vmctl_device_kinds():
    from .schema import DEVICE_KIND

    return [DEVICE_KIND]


@hookimpl
def vmctl_validate_machine(machine, ctx):
    from .validate import validate

    return validate(machine)


@hookimpl
def vmctl_predict(machine, ctx):
    from .validate import predict

    return predict(machine)


@hookimpl
def vmctl_qemu_args(machine):
    from .qemu import qemu_args

    return qemu_args(machine)


@hookimpl
def vmctl_libvirt_xml(machine, domain):
    from .qemu import libvirt_xml

    libvirt_xml(machine, domain)


@hookimpl
def vmctl_sim_devices(machine):
    from .sim import sim_devices

    return sim_devices(machine, PLUGIN)


@hookimpl
def vmctl_live_probe(machine, backend):
    from .live import live_probe

    return live_probe(machine, backend, PLUGIN)


@hookimpl
def vmctl_tui_panels(machine):
    from vmctl.api import PanelSpec

    from .live import headline
    from .schema import KIND

    if not machine.devices_of(KIND):
        return None
    return [PanelSpec("Watchdog (i6300esb)", "vmctl_i6300esb.panel:WatchdogPanel", headline=headline)]
