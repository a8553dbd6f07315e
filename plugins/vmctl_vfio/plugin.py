"""Entry point of the vfio plugin (entry-point group ``vmctl``).

Hook implementations stay thin and import their concern module lazily, so loading the
plugin for ``vmctl --help`` or TAB completion costs nothing.
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

    libvirt_xml(machine, domain)


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
    if not machine.devices_of("vfio-pci"):
        return []  # keep the simulator's start-up free of this plugin's model
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


@hookimpl
def vmctl_complete(kind, incomplete, sysfs):
    if kind != "pci-address":
        return None
    from .complete import complete

    return complete(kind, incomplete, sysfs)


@hookimpl
def vmctl_cli_commands():
    from .cli import cli_commands

    return cli_commands()
