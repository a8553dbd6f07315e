"""Entry point of the vfio plugin (entry-point group ``vmctl``).

Hook implementations stay thin and import their module lazily, so loading the plugin for
``vmctl --help`` or TAB completion costs nothing.
"""

from vmctl import hookimpl
from vmctl_vfio.schema import VFIO_PCI


@hookimpl
def vmctl_device_kinds():
    return [VFIO_PCI]


@hookimpl
def vmctl_validate_machine(machine, ctx):
    from vmctl_vfio.validate import validate

    return validate(machine, ctx)


@hookimpl
def vmctl_validate_fleet(machines, ctx):
    from vmctl_vfio.validate import validate_fleet

    return validate_fleet(machines, ctx)


@hookimpl
def vmctl_predict(machine, ctx):
    from vmctl_vfio.predict import predict

    return predict(machine)


@hookimpl
def vmctl_qemu_args(machine):
    from vmctl_vfio.qemu import qemu_args

    return qemu_args(machine)


@hookimpl
def vmctl_libvirt_xml(machine, domain):
    from vmctl_vfio.qemu import libvirt_hostdevs

    libvirt_hostdevs(machine, domain)


@hookimpl
def vmctl_host_check(sysfs):
    from vmctl_vfio.hostcheck import host_facts

    return host_facts(sysfs)


@hookimpl
def vmctl_host_steps(machine, sysfs):
    from vmctl_vfio.hostplan import plan_steps

    return plan_steps(machine, sysfs)


@hookimpl
def vmctl_fake_kernel():
    from vmctl_vfio.fakekernel import handlers

    return list(handlers())


@hookimpl
def vmctl_fake_hosts():
    from vmctl.api import FakeHost
    from vmctl_vfio.fakesys import SCENARIOS, fake_host

    return [FakeHost("pci", "PCI functions, drivers and IOMMU groups", fake_host,
                     tuple(sorted(SCENARIOS)))]


@hookimpl
def vmctl_sim_devices(machine):
    if not machine.devices_of("vfio-pci"):
        return []  # keep the simulator's start-up free of this plugin's model
    from vmctl_vfio.sim import sim_devices

    return sim_devices(machine)


@hookimpl
def vmctl_live_probe(machine, backend):
    from vmctl_vfio.probe import live_probe

    return live_probe(machine, backend)


def _headline(state):
    from vmctl_vfio.panel import headline

    return headline(state)


@hookimpl
def vmctl_tui_panels(machine):
    from vmctl_vfio.devices import vfio_devices

    if not any(d.address for d in vfio_devices(machine)):
        return None
    from vmctl.api import PanelSpec

    return [PanelSpec("VFIO passthrough", "vmctl_vfio.panel:VfioPanel", headline=_headline)]


@hookimpl
def vmctl_complete(kind, incomplete, sysfs):
    if kind != "pci-address":
        return None
    from vmctl.api import Completion
    from vmctl_vfio.hostcheck import complete_pci

    return [Completion(value, text) for value, text in complete_pci(incomplete, sysfs)]


@hookimpl
def vmctl_cli_commands():
    from vmctl.api import CliCommand

    return [CliCommand("vfio", "VFIO passthrough: IOMMU groups, their devices and drivers, viability",
                       "vmctl_vfio.cli:vfio_app")]
