"""Entry point of the vfio-ap plugin (entry-point group ``vmctl``).

Hook implementations stay thin and import their module lazily, so loading the plugin for
``vmctl --help`` or TAB completion costs nothing.
"""

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
def vmctl_validate_fleet(machines, ctx):
    from .validate import validate_fleet

    return validate_fleet(machines, ctx)


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

    return libvirt_xml(machine, domain)


@hookimpl
def vmctl_export_formats():
    from .qemu import export_formats

    return export_formats()


@hookimpl
def vmctl_host_check(sysfs):
    from .host import host_check

    return host_check(sysfs)


@hookimpl
def vmctl_host_steps(machine, sysfs):
    from .hostplan import host_steps

    return host_steps(machine, sysfs)


@hookimpl
def vmctl_fake_kernel():
    from .fakesys import fake_kernel

    return fake_kernel()


@hookimpl
def vmctl_fake_hosts():
    from .fakesys import fake_hosts

    return fake_hosts()


@hookimpl
def vmctl_sim_devices(machine):
    if not machine.devices_of("vfio-ap"):
        return []  # keep the simulator's start-up free of this plugin's model
    from .sim import sim_devices

    return sim_devices(machine)


@hookimpl
def vmctl_live_probe(machine, backend):
    from .live import live_probe

    return live_probe(machine, backend)


@hookimpl
def vmctl_tui_panels(machine):
    """The AP passthrough panel for machines with a vfio-ap device (``vmctl monitor``/``top``)."""
    from .live import tui_panels

    return tui_panels(machine)


@hookimpl
def vmctl_cli_commands():
    from .cli import cli_commands

    return cli_commands()


@hookimpl
def vmctl_complete(kind, incomplete, sysfs):
    if kind not in ("apqn", "adapter", "domain"):
        return None  # every TAB of another kind stays free of this plugin's modules
    from vmctl.api import Completion

    from .complete import complete

    found = complete(kind, incomplete, sysfs)
    return None if found is None else [Completion(value, text) for value, text in found]
