"""Entry point of the async-pf plugin (entry-point group ``vmctl``)."""

from vmctl import hookimpl
from vmctl_async_pf.schema import ASYNC_PF


@hookimpl
def vmctl_sections():
    return [ASYNC_PF]


@hookimpl
def vmctl_validate_machine(machine, ctx):
    from vmctl_async_pf.validate import validate

    return validate(machine, ctx)


@hookimpl
def vmctl_predict(machine, ctx):
    from vmctl_async_pf.prediction import machine_prediction

    return machine_prediction(machine, ctx)


@hookimpl
def vmctl_qemu_args(machine):
    from vmctl_async_pf.qemu import qemu_fragments

    return qemu_fragments(machine)
