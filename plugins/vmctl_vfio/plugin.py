"""Entry point of the vfio plugin (entry-point group ``vmctl``)."""

from vmctl import hookimpl
from vmctl_vfio.schema import VFIO_PCI


@hookimpl
def vmctl_device_kinds():
    return [VFIO_PCI]
