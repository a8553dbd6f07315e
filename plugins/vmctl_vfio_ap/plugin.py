"""Entry point of the vfio-ap plugin (entry-point group ``vmctl``)."""

from vmctl import hookimpl
from vmctl_vfio_ap.schema import VFIO_AP


@hookimpl
def vmctl_device_kinds():
    return [VFIO_AP]
