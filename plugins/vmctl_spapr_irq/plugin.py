"""Entry point of the spapr-irq plugin (entry-point group ``vmctl``)."""

from vmctl import hookimpl


@hookimpl
def vmctl_sections():
    from .schema import sections

    return sections()


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
    if machine.arch != "ppc64":
        return
    from .qemu import libvirt_xml

    libvirt_xml(machine, domain)


@hookimpl
def vmctl_sim_devices(machine):
    if machine.arch != "ppc64":
        return []  # keep the simulator's start-up free of this plugin's model
    from .sim import sim_devices

    return sim_devices(machine)


@hookimpl
def vmctl_live_probe(machine, backend):
    from .live import live_probe

    return live_probe(machine, backend)


@hookimpl
def vmctl_tui_panels(machine):
    """The interrupt controller panel for pseries machines (``vmctl monitor``/``top``)."""
    from .live import tui_panels

    return tui_panels(machine)
