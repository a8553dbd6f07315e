"""Entry point of the vfio-ap plugin (entry-point group ``vmctl``).

Hook implementations stay thin and import their module lazily, so loading the plugin for
``vmctl --help`` or TAB completion costs nothing.
"""

from vmctl import hookimpl
from vmctl.api import CliCommand, ExportFormat

from vmctl_vfio_ap.schema import VFIO_AP


@hookimpl
def vmctl_device_kinds():
    return [VFIO_AP]


@hookimpl
def vmctl_validate_machine(machine, ctx):
    from vmctl_vfio_ap.validate import validate

    return validate(machine, ctx)


@hookimpl
def vmctl_validate_fleet(machines, ctx):
    from vmctl_vfio_ap.validate import validate_fleet

    return validate_fleet(machines, ctx)


@hookimpl
def vmctl_predict(machine, ctx):
    from vmctl_vfio_ap.hostplan import predict

    return predict(machine, ctx)


@hookimpl
def vmctl_qemu_args(machine):
    from vmctl_vfio_ap.qemu import qemu_args

    return qemu_args(machine)


@hookimpl
def vmctl_libvirt_xml(machine, domain):
    from vmctl_vfio_ap.qemu import libvirt_hostdev

    libvirt_hostdev(machine, domain)


@hookimpl
def vmctl_export_formats():
    return [ExportFormat("mdevctl-json", "the vfio-ap mdev for `mdevctl define -u UUID -p matrix --jsonfile`",
                         "vmctl_vfio_ap.qemu:mdevctl_json")]


@hookimpl
def vmctl_host_check(sysfs):
    from vmctl_vfio_ap.hostplan import host_facts

    return host_facts(sysfs)


@hookimpl
def vmctl_host_steps(machine, sysfs):
    from vmctl_vfio_ap.hostplan import plan_steps

    return plan_steps(machine, sysfs)


@hookimpl
def vmctl_fake_kernel():
    from vmctl_vfio_ap.fakesys import fake_kernel_handlers

    return fake_kernel_handlers()


@hookimpl
def vmctl_fake_hosts():
    from vmctl.api import FakeHost
    from vmctl_vfio_ap.fakesys import SCENARIOS, fake_host

    return [FakeHost("ap", "the s390 AP bus, masks and matrix mdevs", fake_host, tuple(SCENARIOS))]


@hookimpl
def vmctl_sim_devices(machine):
    if not machine.devices_of("vfio-ap"):
        return []  # keep the simulator's start-up free of this plugin's model
    from vmctl_vfio_ap.sim import sim_devices

    return sim_devices(machine)


@hookimpl
def vmctl_live_probe(machine, backend):
    from vmctl_vfio_ap.live import live_probe

    return live_probe(machine, backend)


@hookimpl
def vmctl_tui_panels(machine):
    """The AP passthrough panel for machines with a vfio-ap device (``vmctl monitor``/``top``)."""
    if not machine.devices_of("vfio-ap"):
        return None
    from vmctl.api import PanelSpec

    return [PanelSpec("AP crypto passthrough", "vmctl_vfio_ap.panel:ApPanel", headline=_headline)]


def _headline(state):
    from vmctl_vfio_ap.panel import headline

    return headline(state)


@hookimpl
def vmctl_cli_commands():
    return [CliCommand("ap", "s390 AP crypto passthrough: host AP masks, queues and vfio_ap mdevs",
                       "vmctl_vfio_ap.cli:ap_app")]


@hookimpl
def vmctl_complete(kind, incomplete, sysfs):
    if kind not in ("apqn", "adapter", "domain"):
        return None
    from vmctl.api import Completion
    from vmctl_vfio_ap.complete import complete

    found = complete(kind, incomplete, sysfs)
    return None if found is None else [Completion(value, text) for value, text in found]
