"""The hook implementations: vmctl finds this module through the entry point

    [project.entry-points.vmctl]
    i6300esb = "vmctl_i6300esb.plugin"

Each hook ``vmctl_NAME`` forwards to the function ``NAME`` of the module that owns the
concern (docs/plugins/layout.md), importing it on first use so that loading the plugin
(which every ``vmctl`` command does) stays cheap.  See ``docs/reference/hooks.md`` for when
each hook is called and what it returns.
"""

from __future__ import annotations

from vmctl import hookimpl


@hookimpl
def vmctl_device_kinds():
    from .schema import device_kinds

    return device_kinds()


@hookimpl
def vmctl_validate_machine(machine, ctx):
    from .validate import validate_machine

    return validate_machine(machine, ctx)


@hookimpl
def vmctl_predict(machine, ctx):
    from .predict import predict

    return predict(machine, ctx)


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

    return sim_devices(machine)


@hookimpl
def vmctl_live_probe(machine, backend):
    from .live import live_probe

    return live_probe(machine, backend)


@hookimpl
def vmctl_tui_panels(machine):
    from .live import tui_panels

    return tui_panels(machine)
