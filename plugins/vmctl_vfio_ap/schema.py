"""The ``vfio-ap`` device kind (semantics.md §4.1, §4.8)."""

from vmctl.api import DeviceKind, Option

VFIO_AP = DeviceKind("vfio-ap", "AP crypto queues passed through a vfio_ap matrix mdev (-device vfio-ap)", (
    Option("adapters", "list[int]", "adapter ids (APID 0-255), hex allowed: [5, 0x06]", required=True,
           minimum=0, maximum=255),
    Option("domains", "list[int]", "usage domain ids (APQI 0-255); the guest gets adapters × domains",
           required=True, minimum=0, maximum=255),
    Option("control-domains", "list[int]", "control-only domains (0-255), may be shared between machines",
           default=[], minimum=0, maximum=255),
    Option("uuid", "str", "mdev UUID; derived stably from the machine name when absent",
           pattern=r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"),
), arches=("s390x",), max_per_machine=1)


def device_kinds() -> list[DeviceKind]:
    """``vmctl_device_kinds``: the ``vfio-ap`` kind."""
    return [VFIO_AP]
