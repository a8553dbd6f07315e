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
