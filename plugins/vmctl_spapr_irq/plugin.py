"""Entry point of the spapr-irq plugin (entry-point group ``vmctl``)."""

from vmctl import hookimpl
from vmctl_spapr_irq.schema import IRQ, PSERIES


@hookimpl
def vmctl_sections():
    return [IRQ, PSERIES]


@hookimpl
def vmctl_validate_machine(machine, ctx):
    from vmctl_spapr_irq.validate import validate

    return validate(machine, ctx)


@hookimpl
def vmctl_predict(machine, ctx):
    from vmctl_spapr_irq.prediction import machine_prediction

    return machine_prediction(machine, ctx)


@hookimpl
def vmctl_qemu_args(machine):
    from vmctl_spapr_irq.qemu import machine_props

    return machine_props(machine)


@hookimpl
def vmctl_libvirt_xml(machine, domain):
    if machine.arch != "ppc64":
        return
    from vmctl_spapr_irq.qemu import libvirt_xml

    libvirt_xml(machine, domain)


@hookimpl
def vmctl_sim_devices(machine):
    if machine.arch != "ppc64":
        return []  # keep the simulator's start-up free of this plugin's model
    from vmctl_spapr_irq.sim import sim_devices

    return sim_devices(machine)


@hookimpl
def vmctl_live_probe(machine, backend):
    from vmctl_spapr_irq.live import live_probe

    return live_probe(machine, backend)


@hookimpl
def vmctl_tui_panels(machine):
    """The interrupt controller panel for pseries machines (``vmctl monitor``/``top``)."""
    from vmctl.api import PanelSpec
    from vmctl_spapr_irq.settings import read

    if not read(machine).pseries:
        return None
    return [PanelSpec("Interrupt controller", "vmctl_spapr_irq.panel:IrqPanel",
                      headline=_irq_headline)]


def _irq_headline(state):
    """``vmctl top``'s column (the panel module, and Textual with it, loads only here)."""
    from vmctl_spapr_irq.panel import headline

    return headline(state)
