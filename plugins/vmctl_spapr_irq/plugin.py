"""Entry point of the spapr-irq plugin (entry-point group ``vmctl``)."""

from vmctl import hookimpl
from vmctl_spapr_irq.schema import IRQ, PSERIES


@hookimpl
def vmctl_sections():
    return [IRQ, PSERIES]
