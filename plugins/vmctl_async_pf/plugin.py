"""Entry point of the async-pf plugin (entry-point group ``vmctl``)."""

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
def vmctl_sim_devices(machine):
    from .settings import read

    s = read(machine)
    if not s.written or not (s.x86 or s.aarch64):
        return []
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
